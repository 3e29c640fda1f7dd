"""The overlay message union: what peers say to each other, in XDR.

Theory of operation: every message is a small frozen dataclass with a
``TYPE`` discriminant, ``pack`` and ``unpack``; on the wire a message is
``int32 type`` followed by its body (an XDR union). ``decode_message`` looks the
discriminant up in a registry, so later work (ledger catch-up) adds message
kinds with ``register_message`` instead of editing this union; an unknown
discriminant is an ``XdrError`` like any other malformed input.

Decoding is strict and bounded: every array and string has a maximum, checked
before anything is allocated, and trailing bytes are refused. The numbering of
the types shared with Stellar's overlay follows ``Stellar-overlay.x``; PING and
PONG (keep-alive), TRANSACTIONS (a batch) and NEIGHBORS (relay hints) are ours, and ``CATCHUP_RANGE`` is
left for catch-up.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Self, TypeVar

from scpd.base.types import HASH_SIZE, PublicKey, SCPEnvelope, SCPQuorumSet, XdrType
from scpd.base.xdr import Packer, Reader, XdrError, pack_fixed_opaque

__all__ = [
    "ANSWERED_TYPES",
    "CATCHUP_RANGE",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "FLOODED_TYPES",
    "MAX_ERROR_TEXT",
    "MAX_HOST_LENGTH",
    "MAX_NEIGHBORS",
    "MAX_OPAQUE",
    "MAX_PEER_ADDRESSES",
    "Auth",
    "DontHave",
    "ErrorCode",
    "ErrorMessage",
    "GetQuorumSet",
    "GetScpState",
    "GetTxSet",
    "Hello",
    "MessageType",
    "Neighbors",
    "OverlayMessage",
    "PeerAddress",
    "Peers",
    "Ping",
    "Pong",
    "QuorumSetMessage",
    "ScpMessage",
    "Transaction",
    "TransactionBatch",
    "TxSetMessage",
    "decode_message",
    "encode_message",
    "encode_transaction_entries",
    "encode_transactions_message",
    "message_hash",
    "register_message",
]

NONCE_SIZE = 32
X25519_KEY_SIZE = 32
SIGNATURE_SIZE = 64
MAX_ERROR_TEXT = 256
MAX_HOST_LENGTH = 253
MAX_PEER_ADDRESSES = 100
MAX_NEIGHBORS = 1000
# Opaque payloads (transactions, tx sets) are bounded again by the frame size;
# this is the absolute ceiling the decoder enforces on its own. It equals the
# largest frame a configuration may allow (overlay.max_message_size), so any
# tx set the configuration check lets through also decodes.
MAX_OPAQUE = 256 * 1024 * 1024
# The default of overlay.max_message_size: the largest frame a node reads or writes.
DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024
# Discriminants reserved for ledger catch-up messages (GET_LEDGER, LEDGER, ...).
CATCHUP_RANGE = range(40, 64)
_U32 = struct.Struct(">I")
_PADDING = {1: bytes(3), 2: bytes(2), 3: bytes(1)}


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


def unpack_message(r: Reader) -> OverlayMessage:
    kind = r.int32("OverlayMessage.type")
    cls = _REGISTRY.get(kind)
    if cls is None:
        raise XdrError(f"OverlayMessage.type: unknown discriminant {kind}")
    return cls.unpack(r)


def decode_message(data: bytes | bytearray | memoryview) -> OverlayMessage:
    """Decode exactly one message; trailing bytes are an error."""
    r = Reader(data)
    message = unpack_message(r)
    r.done("OverlayMessage")
    return message


def message_hash(encoded: bytes) -> bytes:
    """Identity of a message for flooding: SHA-256 of its union encoding."""
    return hashlib.sha256(encoded).digest()


def _pack_string(p: Packer, text: str, max_len: int, field: str) -> None:
    data = text.encode("utf-8")
    if len(data) > max_len:
        raise XdrError(f"{field}: longer than {max_len} bytes")
    p.pack_opaque(data)


def _unpack_string(r: Reader, max_len: int, field: str) -> str:
    data = r.var_opaque(field, max_len)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise XdrError(f"{field}: not valid UTF-8") from None


@register_message
@dataclass(frozen=True, slots=True)
class ErrorMessage(OverlayMessage):
    """Sent just before closing, so the other side can log why."""

    TYPE: ClassVar[int] = MessageType.ERROR

    code: ErrorCode
    text: str

    def pack(self, p: Packer) -> None:
        p.pack_int(int(self.code))
        _pack_string(p, self.text[:MAX_ERROR_TEXT], MAX_ERROR_TEXT, "Error.msg")

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        code = ErrorCode(r.enum("Error.code", _ERROR_CODES))
        return cls(code, _unpack_string(r, MAX_ERROR_TEXT, "Error.msg"))


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


@register_message
@dataclass(frozen=True, slots=True)
class DontHave(OverlayMessage):
    """Answer to a GET_* request for something this node does not hold."""

    TYPE: ClassVar[int] = MessageType.DONT_HAVE

    request_type: int
    item_hash: bytes

    def pack(self, p: Packer) -> None:
        p.pack_int(self.request_type)
        pack_fixed_opaque(p, HASH_SIZE, self.item_hash, "DontHave.reqHash")

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        kind = r.enum("DontHave.type", _REQUEST_TYPES)
        return cls(kind, r.fixed_opaque(HASH_SIZE, "DontHave.reqHash"))


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
        _pack_string(p, self.host, MAX_HOST_LENGTH, "PeerAddress.host")
        p.pack_uint(self.port)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        host = _unpack_string(r, MAX_HOST_LENGTH, "PeerAddress.host")
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
class _HashRequest(OverlayMessage):
    item_hash: bytes

    def pack(self, p: Packer) -> None:
        pack_fixed_opaque(p, HASH_SIZE, self.item_hash, f"{type(self).__name__}.hash")

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        return cls(r.fixed_opaque(HASH_SIZE, f"{cls.__name__}.hash"))


@register_message
@dataclass(frozen=True, slots=True)
class GetTxSet(_HashRequest):
    TYPE: ClassVar[int] = MessageType.GET_TX_SET


@register_message
@dataclass(frozen=True, slots=True)
class GetQuorumSet(_HashRequest):
    TYPE: ClassVar[int] = MessageType.GET_SCP_QUORUMSET


_REQUEST_TYPES = frozenset({int(MessageType.GET_TX_SET), int(MessageType.GET_SCP_QUORUMSET)})
# Requests whose answers the overlay pays from the asker's byte budget (the
# first catchup type is catchup's request, GET_LEDGERS).
ANSWERED_TYPES = frozenset(
    {
        int(MessageType.GET_TX_SET),
        int(MessageType.GET_SCP_QUORUMSET),
        int(MessageType.GET_SCP_STATE),
        CATCHUP_RANGE.start,
    }
)


@register_message
@dataclass(frozen=True, slots=True)
class TxSetMessage(OverlayMessage):
    """A transaction set: its hash and its opaque payload (defined by the herder)."""

    TYPE: ClassVar[int] = MessageType.TX_SET

    item_hash: bytes
    payload: bytes

    def pack(self, p: Packer) -> None:
        pack_fixed_opaque(p, HASH_SIZE, self.item_hash, "TxSet.hash")
        p.pack_opaque(self.payload)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        return cls(r.fixed_opaque(HASH_SIZE, "TxSet.hash"), r.var_opaque("TxSet.payload", MAX_OPAQUE))


@register_message
@dataclass(frozen=True, slots=True)
class Transaction(OverlayMessage):
    """One opaque transaction, flooded like an envelope."""

    TYPE: ClassVar[int] = MessageType.TRANSACTION

    payload: bytes

    def pack(self, p: Packer) -> None:
        p.pack_opaque(self.payload)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        return cls(r.var_opaque("Transaction.payload", MAX_OPAQUE))


@register_message
@dataclass(frozen=True, slots=True)
class TransactionBatch(OverlayMessage):
    """Many opaque transactions in one message (``TRANSACTIONS``).

    Sent point to point, not through the floodgate: one message per
    transaction costs a frame, a MAC and a queue slot each, which at
    thousands of transactions per second overflows the peers' send queues.
    The herder relays the transactions that were new to it in its own
    batches, so each transaction is still flooded; duplicates are recognised
    per transaction by its id.
    """

    TYPE: ClassVar[int] = MessageType.TRANSACTIONS

    payloads: tuple[bytes, ...]

    def pack(self, p: Packer) -> None:
        # Built in one join and written at once: batches of thousands are the common case.
        data = _U32.pack(len(self.payloads)) + encode_transaction_entries(self.payloads)
        p.pack_fopaque(len(data), data)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        # Each transaction takes at least 8 bytes (length plus padded payload).
        n = r.array_length("Transactions.txs", 8)
        txs = tuple(r.var_opaque("Transactions.txs[]", MAX_OPAQUE) for _ in range(n))
        if not all(txs):
            raise XdrError("Transactions.txs[]: an empty transaction")
        return cls(txs)


def encode_transaction_entries(txs: Iterable[bytes]) -> bytes:
    """The array elements of a TRANSACTIONS message (each length, bytes, padding), without the count.

    A node relays the same transactions to several peers in differently
    composed batches; it encodes each group once and joins groups per peer
    with :func:`encode_transactions_message`.
    """
    parts: list[bytes] = []
    for tx in txs:
        n = len(tx)
        if not n:
            raise XdrError("Transactions.txs[]: an empty transaction")
        parts.append(_U32.pack(n))
        parts.append(tx)
        if n % 4:
            parts.append(_PADDING[n % 4])
    return b"".join(parts)


def encode_transactions_message(count: int, entries: Iterable[bytes]) -> bytes:
    """A whole TRANSACTIONS message from ``count`` transactions already encoded as entries."""
    return _TRANSACTIONS_HEADER + _U32.pack(count) + b"".join(entries)


@register_message
@dataclass(frozen=True, slots=True)
class QuorumSetMessage(OverlayMessage):
    TYPE: ClassVar[int] = MessageType.SCP_QUORUMSET

    quorum_set: SCPQuorumSet

    def pack(self, p: Packer) -> None:
        self.quorum_set.pack(p)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        return cls(SCPQuorumSet.unpack(r))


@register_message
@dataclass(frozen=True, slots=True)
class ScpMessage(OverlayMessage):
    TYPE: ClassVar[int] = MessageType.SCP_MESSAGE

    envelope: SCPEnvelope

    def pack(self, p: Packer) -> None:
        self.envelope.pack(p)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        return cls(SCPEnvelope.unpack(r))


@register_message
@dataclass(frozen=True, slots=True)
class GetScpState(OverlayMessage):
    """Ask for the latest envelopes of slots from ``slot_index`` on."""

    TYPE: ClassVar[int] = MessageType.GET_SCP_STATE

    slot_index: int

    def pack(self, p: Packer) -> None:
        p.pack_uhyper(self.slot_index)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        return cls(r.uint64("GetScpState.ledgerSeq"))


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


# Messages relayed to every other peer once; everything else is point to point.
FLOODED_TYPES = frozenset({int(MessageType.SCP_MESSAGE), int(MessageType.TRANSACTION)})
_TRANSACTIONS_HEADER = struct.pack(">i", MessageType.TRANSACTIONS)
