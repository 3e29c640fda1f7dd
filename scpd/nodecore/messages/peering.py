"""Handshake and peer-management messages: who a peer is, why it leaves, who else it knows.

HELLO and AUTH make the handshake (see ``scpd.node.overlay.handshake``),
ERROR says why a connection closes, PEERS and NEIGHBORS tell addresses and
connections, PING and PONG keep a quiet connection alive.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Self

from scpd.base.types import HASH_SIZE, PublicKey, XdrType
from scpd.base.xdr import Packer, Reader, XdrError, pack_fixed_opaque
from scpd.nodecore.messages.union import MessageType, OverlayMessage, pack_string, register_message, unpack_string

__all__ = [
    "MAX_ERROR_TEXT",
    "MAX_HOST_LENGTH",
    "MAX_NEIGHBORS",
    "MAX_PEER_ADDRESSES",
    "NONCE_SIZE",
    "Auth",
    "ErrorCode",
    "ErrorMessage",
    "Hello",
    "Neighbors",
    "PeerAddress",
    "Peers",
    "Ping",
    "Pong",
]

NONCE_SIZE = 32
X25519_KEY_SIZE = 32
SIGNATURE_SIZE = 64
MAX_ERROR_TEXT = 256
MAX_HOST_LENGTH = 253
MAX_PEER_ADDRESSES = 100
MAX_NEIGHBORS = 1000


class ErrorCode(IntEnum):
    """Why a peer is refusing or closing the connection."""

    MISC = 0
    DATA = 1
    CONF = 2
    AUTH = 3
    LOAD = 4
    WRONG_NETWORK = 5
    VERSION = 6
    SELF = 7
    BANNED = 8
    DUPLICATE = 9


_ERROR_CODES = frozenset(int(c) for c in ErrorCode)


@register_message
@dataclass(frozen=True, slots=True)
class ErrorMessage(OverlayMessage):
    """Sent just before closing, so the other side can log why."""

    TYPE: ClassVar[int] = MessageType.ERROR

    code: ErrorCode
    text: str

    def pack(self, p: Packer) -> None:
        p.pack_int(int(self.code))
        pack_string(p, self.text[:MAX_ERROR_TEXT], MAX_ERROR_TEXT, "Error.msg")

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        code = ErrorCode(r.enum("Error.code", _ERROR_CODES))
        return cls(code, unpack_string(r, MAX_ERROR_TEXT, "Error.msg"))


@register_message
@dataclass(frozen=True, slots=True)
class Hello(OverlayMessage):
    """The first message each side sends; see ``handshake`` for its use."""

    TYPE: ClassVar[int] = MessageType.HELLO

    version: int
    network_id: bytes
    node_id: PublicKey
    ephemeral_key: bytes
    nonce: bytes
    listening_port: int

    def pack(self, p: Packer) -> None:
        p.pack_uint(self.version)
        pack_fixed_opaque(p, HASH_SIZE, self.network_id, "Hello.networkID")
        self.node_id.pack(p)
        pack_fixed_opaque(p, X25519_KEY_SIZE, self.ephemeral_key, "Hello.ephemeralKey")
        pack_fixed_opaque(p, NONCE_SIZE, self.nonce, "Hello.nonce")
        p.pack_uint(self.listening_port)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        version = r.uint32("Hello.version")
        network = r.fixed_opaque(HASH_SIZE, "Hello.networkID")
        node_id = PublicKey.unpack(r)
        ephemeral = r.fixed_opaque(X25519_KEY_SIZE, "Hello.ephemeralKey")
        nonce = r.fixed_opaque(NONCE_SIZE, "Hello.nonce")
        port = r.uint32("Hello.listeningPort")
        if port > 65535:
            raise XdrError(f"Hello.listeningPort: {port} is not a TCP port")
        return cls(version, network, node_id, ephemeral, nonce, port)


@register_message
@dataclass(frozen=True, slots=True)
class Auth(OverlayMessage):
    """Proof of the node key: an Ed25519 signature over the handshake transcript."""

    TYPE: ClassVar[int] = MessageType.AUTH

    signature: bytes

    def pack(self, p: Packer) -> None:
        pack_fixed_opaque(p, SIGNATURE_SIZE, self.signature, "Auth.signature")

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        return cls(r.fixed_opaque(SIGNATURE_SIZE, "Auth.signature"))


@dataclass(frozen=True, slots=True, order=True)
class PeerAddress(XdrType):
    """Where a peer listens: a host name or IP literal and a TCP port."""

    host: str
    port: int

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise XdrError(f"PeerAddress.port: {self.port} is not a TCP port")
        if not self.host or not self.host.isascii() or not self.host.isprintable() or " " in self.host:
            raise XdrError(f"PeerAddress.host: {self.host!r} is not a host name or address")
        if len(self.host) > MAX_HOST_LENGTH:
            raise XdrError(f"PeerAddress.host: longer than {MAX_HOST_LENGTH} bytes")

    def pack(self, p: Packer) -> None:
        pack_string(p, self.host, MAX_HOST_LENGTH, "PeerAddress.host")
        p.pack_uint(self.port)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        host = unpack_string(r, MAX_HOST_LENGTH, "PeerAddress.host")
        return cls(host, r.uint32("PeerAddress.port"))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@register_message
@dataclass(frozen=True, slots=True)
class Peers(OverlayMessage):
    """Addresses of other peers, so a node can find more than it was told."""

    TYPE: ClassVar[int] = MessageType.PEERS

    addresses: tuple[PeerAddress, ...]

    def pack(self, p: Packer) -> None:
        if len(self.addresses) > MAX_PEER_ADDRESSES:
            raise XdrError(f"Peers.peers: more than {MAX_PEER_ADDRESSES} addresses")
        p.pack_uint(len(self.addresses))
        for a in self.addresses:
            a.pack(p)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        n = r.array_length("Peers.peers", 12, MAX_PEER_ADDRESSES)
        return cls(tuple(PeerAddress.unpack(r) for _ in range(n)))


@register_message
@dataclass(frozen=True, slots=True)
class Neighbors(OverlayMessage):
    """The nodes the sender is connected to now: they hear its own envelopes from it first hand."""

    TYPE: ClassVar[int] = MessageType.NEIGHBORS

    nodes: tuple[PublicKey, ...]

    def pack(self, p: Packer) -> None:
        if len(self.nodes) > MAX_NEIGHBORS:
            raise XdrError(f"Neighbors.nodes: more than {MAX_NEIGHBORS} nodes")
        p.pack_uint(len(self.nodes))
        for node in self.nodes:
            node.pack(p)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        n = r.array_length("Neighbors.nodes", 36, MAX_NEIGHBORS)
        return cls(tuple(PublicKey.unpack(r) for _ in range(n)))


@dataclass(frozen=True, slots=True)
class _KeepAlive(OverlayMessage):
    nonce: int

    def pack(self, p: Packer) -> None:
        p.pack_uhyper(self.nonce)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        return cls(r.uint64(f"{cls.__name__}.nonce"))


@register_message
@dataclass(frozen=True, slots=True)
class Ping(_KeepAlive):
    TYPE: ClassVar[int] = MessageType.PING


@register_message
@dataclass(frozen=True, slots=True)
class Pong(_KeepAlive):
    TYPE: ClassVar[int] = MessageType.PONG
