"""The overlay message union: discriminants, the registry of message kinds, and the codec.

On the wire a message is ``int32 type`` followed by its body (an XDR union).
``decode_message`` looks the discriminant up in the registry that
``register_message`` fills, so each kind is declared once, in the module of
its concept, and later work (ledger catch-up) adds kinds without editing
this one; an unknown discriminant is an ``XdrError`` like any other
malformed input.
"""

from __future__ import annotations

import hashlib
from enum import IntEnum
from typing import ClassVar, TypeVar

from scpd.base.types import XdrType
from scpd.base.xdr import Packer, Reader, XdrError

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "CATCHUP_RANGE",
    "MAX_OPAQUE",
    "MessageType",
    "OverlayMessage",
    "decode_message",
    "encode_message",
    "message_hash",
    "pack_string",
    "register_message",
    "unpack_string",
]

# Opaque payloads (transactions, tx sets) are bounded again by the frame size;
# this is the absolute ceiling the decoder enforces on its own. It equals the
# largest frame a configuration may allow (overlay.max_message_size), so any
# tx set the configuration check lets through also decodes.
MAX_OPAQUE = 256 * 1024 * 1024
# The default of overlay.max_message_size: the largest frame a node reads or writes.
DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024
# Discriminants reserved for ledger catch-up messages (GET_LEDGER, LEDGER, ...).
CATCHUP_RANGE = range(40, 64)


class MessageType(IntEnum):
    ERROR = 0
    AUTH = 2
    DONT_HAVE = 3
    PEERS = 5
    GET_TX_SET = 6
    TX_SET = 7
    TRANSACTION = 8
    GET_SCP_QUORUMSET = 9
    SCP_QUORUMSET = 10
    SCP_MESSAGE = 11
    GET_SCP_STATE = 12
    HELLO = 13
    PING = 32
    PONG = 33
    TRANSACTIONS = 34
    NEIGHBORS = 35


class OverlayMessage(XdrType):
    """Base of every overlay message; ``TYPE`` is its union discriminant."""

    __slots__ = ()
    TYPE: ClassVar[int]


_REGISTRY: dict[int, type[OverlayMessage]] = {}
_M = TypeVar("_M", bound=type[OverlayMessage])


def register_message(cls: _M) -> _M:
    """Add a message kind to the union (a class decorator); each TYPE once."""
    kind = int(cls.TYPE)
    if kind in _REGISTRY and _REGISTRY[kind] is not cls:
        raise ValueError(f"overlay message type {kind} is already {_REGISTRY[kind].__name__}")
    _REGISTRY[kind] = cls
    return cls


def encode_message(message: OverlayMessage) -> bytes:
    """The union encoding: discriminant, then body."""
    p = Packer()
    p.pack_int(int(message.TYPE))
    message.pack(p)
    return bytes(p.get_buffer())


def _unpack_message(r: Reader) -> OverlayMessage:
    kind = r.int32("OverlayMessage.type")
    cls = _REGISTRY.get(kind)
    if cls is None:
        raise XdrError(f"OverlayMessage.type: unknown discriminant {kind}")
    return cls.unpack(r)


def decode_message(data: bytes | bytearray | memoryview) -> OverlayMessage:
    """Decode exactly one message; trailing bytes are an error."""
    r = Reader(data)
    message = _unpack_message(r)
    r.done("OverlayMessage")
    return message


def message_hash(encoded: bytes) -> bytes:
    """Identity of a message for flooding: SHA-256 of its union encoding."""
    return hashlib.sha256(encoded).digest()


def pack_string(p: Packer, text: str, max_len: int, field: str) -> None:
    data = text.encode("utf-8")
    if len(data) > max_len:
        raise XdrError(f"{field}: longer than {max_len} bytes")
    p.pack_opaque(data)


def unpack_string(r: Reader, max_len: int, field: str) -> str:
    data = r.var_opaque(field, max_len)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise XdrError(f"{field}: not valid UTF-8") from None
