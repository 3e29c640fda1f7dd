"""Length-prefixed frames on a TCP stream.

A frame is ``uint32 length`` (big-endian) followed by ``length`` bytes. The
length is checked against the configured maximum
(``overlay.max_message_size``) *before* the body is read, so a hostile peer
cannot make us buffer more than one maximum-size message; an empty frame is
refused too, since no message encodes to zero bytes.

``read_frame`` reads one frame with two awaits (the handshake, a few frames);
a live connection reads large chunks and cuts them with a ``Deframer``, so a
burst of small frames costs one read, not two awaits each.
"""

from __future__ import annotations

import asyncio
import struct

from scpd.errors import OverlayError
from scpd.nodecore.messages import DEFAULT_MAX_MESSAGE_SIZE

__all__ = ["Deframer", "FrameError", "encode_frame", "read_frame"]

_LENGTH = struct.Struct(">I")


class FrameError(OverlayError):
    """A frame that is empty, too large, or cut short by the peer closing."""


def encode_frame(body: bytes, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> bytes:
    if not 0 < len(body) <= max_size:
        raise FrameError(f"frame of {len(body)} bytes is outside 1..{max_size}")
    return _LENGTH.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> bytes:
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


class Deframer:
    """Frames cut out of a byte stream read in large chunks: one read for many frames.

    Each length is checked as soon as its 4 bytes are here, before any of the
    body is kept, so the buffer never holds more than one maximum-size frame
    plus one chunk, whatever the peer claims.
    """

    __slots__ = ("_buffer", "_max_size")

    def __init__(self, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self._max_size = max_size
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes read from the stream; return the frame bodies completed (raise ``FrameError`` on a bad length)."""
        buffer = self._buffer
        buffer += data
        frames: list[bytes] = []
        start, end = 0, len(buffer)
        while end - start >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(buffer, start)
            if length == 0 or length > self._max_size:
                raise FrameError(f"frame length {length} is outside 1..{self._max_size}")
            stop = start + _LENGTH.size + length
            if stop > end:
                break
            frames.append(bytes(buffer[start + _LENGTH.size : stop]))
            start = stop
        if start:
            del buffer[:start]
        return frames

    def end_of_stream(self) -> FrameError:
        """The error for the peer closing now: cleanly between frames or inside one."""
        if not self._buffer:
            return FrameError("connection closed")
        if len(self._buffer) < _LENGTH.size:
            return FrameError("connection closed inside a frame header")
        (length,) = _LENGTH.unpack_from(self._buffer)
        return FrameError(f"connection closed inside a {length}-byte frame")
