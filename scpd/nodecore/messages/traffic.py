"""Consensus traffic: SCP envelopes, quorum sets, tx sets and transactions, and the requests for them.

Flooded kinds (``FLOODED_TYPES``) go to every peer once; requests
(``ANSWERED_TYPES``) are answered from the asker's byte budget; DONT_HAVE
sends an asker elsewhere at once.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar, Self

from scpd.base.types import HASH_SIZE, SCPEnvelope, SCPQuorumSet
from scpd.base.xdr import Packer, Reader, XdrError, pack_fixed_opaque
from scpd.nodecore.messages.union import CATCHUP_RANGE, MAX_OPAQUE, MessageType, OverlayMessage, register_message

__all__ = [
    "ANSWERED_TYPES",
    "FLOODED_TYPES",
    "DontHave",
    "GetQuorumSet",
    "GetScpState",
    "GetTxSet",
    "QuorumSetMessage",
    "ScpMessage",
    "Transaction",
    "TransactionBatch",
    "TxSetMessage",
    "encode_transaction_entries",
    "encode_transactions_message",
]

_U32 = struct.Struct(">I")
_PADDING = {1: bytes(3), 2: bytes(2), 3: bytes(1)}


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
    """An SCP envelope, with its encoding kept beside it once known.

    Strict decoding admits one encoding per envelope, so the bytes an envelope
    was decoded from are its encoding: the intake keys the signature cache on
    them and verifies the signature over their statement prefix, and a relay
    sends them on, none of which encodes the envelope again. The bytes cannot
    be passed in (``init=False``): only :meth:`unpack` (the received bytes) or
    the first :attr:`envelope_xdr` (``envelope.to_xdr()``) sets them, so they
    always equal the envelope's encoding. They take no part in equality.
    """

    TYPE: ClassVar[int] = MessageType.SCP_MESSAGE

    envelope: SCPEnvelope
    _xdr: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def envelope_xdr(self) -> bytes:
        """The envelope's encoding: the bytes it was decoded from, else encoded once."""
        if self._xdr is None:
            object.__setattr__(self, "_xdr", self.envelope.to_xdr())
        assert self._xdr is not None
        return self._xdr

    @property
    def statement_xdr(self) -> bytes:
        """The statement's encoding, the bytes its signature covers."""
        return self.envelope.statement_xdr_in(self.envelope_xdr)

    def pack(self, p: Packer) -> None:
        data = self.envelope_xdr
        p.pack_fopaque(len(data), data)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        start = r.position
        message = cls(SCPEnvelope.unpack(r))
        object.__setattr__(message, "_xdr", r.consumed_since(start))
        return message


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


# Messages relayed to every other peer once; everything else is point to point.
FLOODED_TYPES = frozenset({int(MessageType.SCP_MESSAGE), int(MessageType.TRANSACTION)})
_TRANSACTIONS_HEADER = struct.pack(">i", MessageType.TRANSACTIONS)
