"""Length-prefixed frames on a TCP stream.

A frame is ``uint32 length`` (big-endian) followed by ``length`` bytes. The
length is checked against the configured maximum *before* the body is read,
so a hostile peer cannot make us buffer more than one maximum-size message; an
empty frame is refused too, since no message encodes to zero bytes.
"""

from __future__ import annotations

import asyncio
import struct

from scpd.errors import OverlayError

__all__ = ["DEFAULT_MAX_FRAME", "FrameError", "encode_frame", "read_frame"]

DEFAULT_MAX_FRAME = 1024 * 1024
_LENGTH = struct.Struct(">I")


class FrameError(OverlayError):
    """A frame that is empty, too large, or cut short by the peer closing."""


def encode_frame(body: bytes, max_size: int = DEFAULT_MAX_FRAME) -> bytes:
    if not 0 < len(body) <= max_size:
        raise FrameError(f"frame of {len(body)} bytes is outside 1..{max_size}")
    return _LENGTH.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader, max_size: int = DEFAULT_MAX_FRAME) -> bytes:
    """Read one frame body; raise ``FrameError`` on a bad length or EOF mid-frame."""
    try:
        header = await reader.readexactly(_LENGTH.size)
    except asyncio.IncompleteReadError as exc:
        raise FrameError(
            "connection closed" if not exc.partial else "connection closed inside a frame header"
        ) from None
    (length,) = _LENGTH.unpack(header)
    if length == 0 or length > max_size:
        raise FrameError(f"frame length {length} is outside 1..{max_size}")
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise FrameError(f"connection closed inside a {length}-byte frame") from None
