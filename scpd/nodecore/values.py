"""What the network agrees on: consensus values, transaction sets, ledger entries.

Theory of operation
-------------------
SCP agrees on opaque byte strings; this module gives them meaning for scpd.
A slot's value is the XDR of a :class:`ConsensusValue`, a close time and the
hash of a :class:`TxSet`. The tx set itself travels separately (peers fetch it
by hash) and names the ledger it builds on, so a value can only be valid on
top of one chain. Once a slot externalizes, the node records a
:class:`LedgerEntry`, and the ledger hash chains the entries together::

    ledger_hash(slot) = SHA-256(ledger_hash(slot - 1) || XDR(LedgerEntry))

Genesis convention: slot 0 is the implicit genesis ledger. It is never stored;
its hash is 32 zero bytes (:data:`GENESIS_HASH`) and its close time is 0. The
first real ledger is slot 1, and its tx set's previous ledger hash is zeros.

The XDR (same conventions as ``Stellar-SCP.x``; ``Hash`` is ``opaque[32]``)::

    typedef opaque Transaction<MAX_TX_SIZE>;      // 1..MAX_TX_SIZE bytes
    struct ConsensusValue {
        uint64 closeTime;                         // seconds since the Unix epoch
        Hash txSetHash;                           // SHA-256(XDR(TxSet))
        union switch (int v) { case 0: void; } ext;   // room for upgrades
    };
    struct TxSet {
        Hash previousLedgerHash;
        Transaction txs<>;                        // sorted by SHA-256(tx), no duplicates
    };
    struct LedgerEntry {
        uint64 slot;
        opaque value<MAX_VALUE_SIZE>;             // the externalized XDR(ConsensusValue)
        uint64 closeTime;                         // equal to value.closeTime
        Hash txSetHash;                           // equal to value.txSetHash
    };

Everything here is pure: no clock (the caller passes ``now``), no I/O.
Decoding is strict (the shared :class:`~scpd.base.xdr.Reader`). Validation
helpers return the reason a value is unacceptable, or None, because a hostile
value is an expected event for the herder, not an exceptional one.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import itertools
import struct
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Self

from scpd.base.types import HASH_SIZE, SCPEnvelope, XdrType
from scpd.base.xdr import Packer, Reader, XdrError, pack_fixed_opaque

__all__ = [
    "GENESIS_CLOSE_TIME",
    "GENESIS_HASH",
    "MAX_TX_SIZE",
    "MAX_VALUE_SIZE",
    "ChainTip",
    "ConsensusValue",
    "LedgerEntry",
    "LedgerRecord",
    "TxSet",
    "TxSetLimits",
    "check_close_time",
    "check_tx_set",
    "check_value",
    "combine_candidates",
    "decode_value",
    "ledger_hash",
    "max_tx_set_xdr_size",
    "next_close_time",
    "tx_id",
]

GENESIS_HASH = bytes(HASH_SIZE)
GENESIS_CLOSE_TIME = 0

# Protocol ceilings, independent of configuration: they bound what a decoder
# accepts from the network. Configured limits must lie below them.
MAX_TX_SIZE = 1 << 20
MAX_VALUE_SIZE = 1024

_UINT64_MAX = (1 << 64) - 1
_U32 = struct.Struct(">I")
_PADDING = {1: bytes(3), 2: bytes(2), 3: bytes(1)}
_EXT_V0 = frozenset({0})
# Distinct values remembered decoded: a slot sees a handful (one per nominated tx set and their
# composites), each named by hundreds of statements; a hostile flood of distinct values only evicts.
VALUE_MEMORY = 4096


def tx_id(tx: bytes) -> bytes:
    """A transaction's identity: SHA-256 of its bytes."""
    return hashlib.sha256(tx).digest()


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise XdrError(f"{what}: expected {HASH_SIZE} bytes, got {len(value)}")


def _check_uint64(value: int, what: str) -> None:
    if not 0 <= value <= _UINT64_MAX:
        raise XdrError(f"{what}: {value} is not a uint64")


@dataclass(frozen=True, slots=True)
class ConsensusValue(XdrType):
    """The value of one slot: when the ledger closes and which tx set it applies."""

    close_time: int
    tx_set_hash: bytes

    def __post_init__(self) -> None:
        _check_uint64(self.close_time, "ConsensusValue.closeTime")
        _check_hash(self.tx_set_hash, "ConsensusValue.txSetHash")

    def pack(self, p: Packer) -> None:
        p.pack_uhyper(self.close_time)
        pack_fixed_opaque(p, HASH_SIZE, self.tx_set_hash, "ConsensusValue.txSetHash")
        p.pack_int(0)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        close_time = r.uint64("ConsensusValue.closeTime")
        tx_set_hash = r.fixed_opaque(HASH_SIZE, "ConsensusValue.txSetHash")
        r.enum("ConsensusValue.ext", _EXT_V0)
        return cls(close_time, tx_set_hash)


@functools.lru_cache(maxsize=VALUE_MEMORY)
def decode_value(data: bytes) -> ConsensusValue:
    """``ConsensusValue.from_xdr``, decoded once per distinct value while remembered.

    The same value bytes come in every statement that names them, and each
    statement asks several times (the tx sets it names, validation,
    combining). Decoding is a pure function of immutable bytes and a value is
    immutable, so sharing one decoded value changes no result; a malformed
    value raises ``XdrError`` every time (failures are not remembered).
    """
    return ConsensusValue.from_xdr(data)


@dataclass(frozen=True, slots=True)
class TxSet(XdrType):
    """An ordered list of opaque transactions on top of one previous ledger.

    Build one with :meth:`canonical`; a decoded set may be non-canonical (a
    peer's mistake or malice) and is refused by :func:`check_tx_set`, which
    is where the reason gets reported. Ids, hash and XDR are computed once
    and cached, since the herder asks for them repeatedly (a set is hashed,
    saved, served to each peer that asks and written to the ledger).
    """

    previous_ledger_hash: bytes
    txs: tuple[bytes, ...] = ()
    _ids: tuple[bytes, ...] | None = field(default=None, init=False, repr=False, compare=False)
    _hash: bytes | None = field(default=None, init=False, repr=False, compare=False)
    _xdr: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_hash(self.previous_ledger_hash, "TxSet.previousLedgerHash")
        for tx in self.txs:
            if not 1 <= len(tx) <= MAX_TX_SIZE:
                raise XdrError(f"TxSet.txs: a transaction of {len(tx)} bytes is outside 1..{MAX_TX_SIZE}")

    @classmethod
    def canonical(cls, previous_ledger_hash: bytes, txs: Iterable[bytes]) -> Self:
        """The canonical set of ``txs``: sorted by tx id, duplicates removed."""
        by_id = {tx_id(tx): tx for tx in txs}
        ordered = sorted(by_id)
        tx_set = cls(previous_ledger_hash, tuple(by_id[i] for i in ordered))
        object.__setattr__(tx_set, "_ids", tuple(ordered))
        return tx_set

    @classmethod
    def canonical_from_ids(cls, previous_ledger_hash: bytes, items: Iterable[tuple[bytes, bytes]]) -> Self:
        """:meth:`canonical` from (tx id, tx) pairs whose ids the caller already computed (the queue's keys)."""
        by_id = dict(items)
        ordered = sorted(by_id)
        tx_set = cls(previous_ledger_hash, tuple(by_id[i] for i in ordered))
        object.__setattr__(tx_set, "_ids", tuple(ordered))
        return tx_set

    def pack(self, p: Packer) -> None:
        pack_fixed_opaque(p, HASH_SIZE, self.previous_ledger_hash, "TxSet.previousLedgerHash")
        p.pack_uint(len(self.txs))
        for tx in self.txs:
            p.pack_opaque(tx)

    def to_xdr(self) -> bytes:
        """Same bytes as :meth:`pack`, built in one join (sets of 10^4 transactions are common) and kept."""
        if self._xdr is not None:
            return self._xdr
        parts = [self.previous_ledger_hash, _U32.pack(len(self.txs))]
        for tx in self.txs:
            parts.append(_U32.pack(len(tx)))
            parts.append(tx)
            if len(tx) % 4:
                parts.append(_PADDING[len(tx) % 4])
        data = b"".join(parts)
        object.__setattr__(self, "_xdr", data)
        return data

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        previous = r.fixed_opaque(HASH_SIZE, "TxSet.previousLedgerHash")
        # Each transaction takes at least 8 bytes (length plus padded payload).
        n = r.array_length("TxSet.txs", 8)
        txs = tuple(r.var_opaque("TxSet.txs[]", MAX_TX_SIZE) for _ in range(n))
        return cls(previous, txs)

    @classmethod
    def from_xdr_hashed(cls, data: bytes) -> Self:
        """Decode a set received as bytes, taking its hash from those bytes.

        Strict decoding admits exactly one encoding per set, so SHA-256 of the
        bytes is the set's hash, without encoding it again.
        """
        tx_set = cls.from_xdr(data)
        object.__setattr__(tx_set, "_hash", hashlib.sha256(data).digest())
        object.__setattr__(tx_set, "_xdr", bytes(data))
        return tx_set

    @property
    def tx_ids(self) -> tuple[bytes, ...]:
        """The id of each transaction, in set order."""
        if self._ids is None:
            object.__setattr__(self, "_ids", tuple(tx_id(tx) for tx in self.txs))
        assert self._ids is not None
        return self._ids

    def hash(self) -> bytes:
        """SHA-256 of the set's XDR: what a ConsensusValue names."""
        if self._hash is None:
            object.__setattr__(self, "_hash", hashlib.sha256(self.to_xdr()).digest())
        assert self._hash is not None
        return self._hash

    @property
    def total_bytes(self) -> int:
        """Sum of the transactions' sizes (what the per-set byte limit counts)."""
        return sum(len(tx) for tx in self.txs)

    def is_canonical(self) -> bool:
        ids = self.tx_ids
        return all(a < b for a, b in itertools.pairwise(ids))


@dataclass(frozen=True, slots=True)
class LedgerEntry(XdrType):
    """One externalized slot, as hashed into the chain (see the module docstring).

    The close time and tx set hash repeat what the value says, so a reader of
    the chain can check them without decoding the value; construction refuses
    an entry where they disagree.
    """

    slot: int
    value: ConsensusValue

    @property
    def close_time(self) -> int:
        return self.value.close_time

    @property
    def tx_set_hash(self) -> bytes:
        return self.value.tx_set_hash

    def __post_init__(self) -> None:
        _check_uint64(self.slot, "LedgerEntry.slot")

    def pack(self, p: Packer) -> None:
        p.pack_uhyper(self.slot)
        p.pack_opaque(self.value.to_xdr())
        p.pack_uhyper(self.value.close_time)
        pack_fixed_opaque(p, HASH_SIZE, self.value.tx_set_hash, "LedgerEntry.txSetHash")

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        slot = r.uint64("LedgerEntry.slot")
        value = ConsensusValue.from_xdr(r.var_opaque("LedgerEntry.value", MAX_VALUE_SIZE))
        close_time = r.uint64("LedgerEntry.closeTime")
        tx_set_hash = r.fixed_opaque(HASH_SIZE, "LedgerEntry.txSetHash")
        if close_time != value.close_time or tx_set_hash != value.tx_set_hash:
            raise XdrError("LedgerEntry: closeTime or txSetHash disagrees with the value")
        return cls(slot, value)


@dataclass(frozen=True, slots=True)
class ChainTip:
    """Where the chain ends: the genesis (slot 0, zero hash) for an empty store."""

    slot: int
    hash: bytes
    close_time: int


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """One stored ledger: its entry, its tx set and its place in the chain."""

    entry: LedgerEntry
    tx_set: TxSet
    previous_hash: bytes
    hash: bytes

    @property
    def slot(self) -> int:
        return self.entry.slot

    @property
    def value(self) -> ConsensusValue:
        return self.entry.value

    @property
    def close_time(self) -> int:
        return self.entry.close_time

    @property
    def tx_set_hash(self) -> bytes:
        return self.entry.tx_set_hash

    def describe(self, proofs: Iterable[SCPEnvelope] = (), bodies: bool = False) -> dict[str, object]:
        """A JSON-ready summary (hashes in hex), shared by the CLI and the HTTP API.

        Transactions are listed by id and size in tx set order; ``bodies`` adds
        each transaction's bytes in base64.
        """
        txs: list[dict[str, object]] = []
        for i, tx in zip(self.tx_set.tx_ids, self.tx_set.txs, strict=True):
            item: dict[str, object] = {"id": i.hex(), "size": len(tx)}
            if bodies:
                item["base64"] = base64.b64encode(tx).decode("ascii")
            txs.append(item)
        return {
            "slot": self.slot,
            "hash": self.hash.hex(),
            "previous_hash": self.previous_hash.hex(),
            "close_time": self.close_time,
            "tx_set_hash": self.tx_set_hash.hex(),
            "value": self.value.to_xdr().hex(),
            "tx_count": len(self.tx_set.txs),
            "tx_bytes": self.tx_set.total_bytes,
            "transactions": txs,
            "proofs": [{"node": str(env.statement.node_id), "signature": env.signature.hex()} for env in proofs],
        }


def ledger_hash(previous_hash: bytes, entry: LedgerEntry) -> bytes:
    """The chain link: SHA-256(previous ledger hash || XDR(entry))."""
    _check_hash(previous_hash, "previous ledger hash")
    return hashlib.sha256(previous_hash + entry.to_xdr()).digest()


# -- validation --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TxSetLimits:
    """Per-set limits: how many transactions, and how many bytes of them in all."""

    max_txs: int
    max_bytes: int

    def __post_init__(self) -> None:
        if self.max_txs < 0 or self.max_bytes < 0:
            raise ValueError("tx set limits must not be negative")


def max_tx_set_xdr_size(limits: TxSetLimits) -> int:
    """The largest XDR a tx set within ``limits`` can take (hash, count, and per tx a length and padding).

    The byte limit counts transaction bytes only; a message carrying the set
    needs room for this much.
    """
    return HASH_SIZE + 4 + limits.max_bytes + 7 * limits.max_txs


def next_close_time(now: float, last_close_time: int) -> int:
    """The close time to propose: the clock in whole seconds, but never behind the last ledger."""
    return max(int(now), last_close_time)


def check_close_time(close_time: int, last_close_time: int, now: float, max_future: float) -> str | None:
    """Why ``close_time`` is unacceptable, or None.

    Equal to the last close time is allowed: with second resolution and short
    slot intervals two ledgers may close within the same second. A close time
    up to ``max_future`` seconds ahead of ``now`` is tolerated for clock skew.
    """
    if close_time < last_close_time:
        return f"close time {close_time} is before the last ledger's {last_close_time}"
    if close_time > now + max_future:
        return f"close time {close_time} is more than {max_future} s after now ({now})"
    return None


def check_tx_set(
    tx_set: TxSet,
    last_ledger_hash: bytes,
    limits: TxSetLimits,
    is_included: Callable[[bytes], bool] | None = None,
    included_among: Callable[[Sequence[bytes]], Collection[bytes]] | None = None,
) -> str | None:
    """Why ``tx_set`` cannot be the next ledger's set, or None.

    ``is_included`` (tx id -> bool) lets the herder refuse transactions that an
    earlier ledger already carries, so each transaction lands exactly once.
    ``included_among`` (tx ids -> those already included) is the same check
    asked once for the whole set, which a database answers far faster than
    thousands of single questions.
    """
    if tx_set.previous_ledger_hash != last_ledger_hash:
        return (
            f"tx set builds on ledger {tx_set.previous_ledger_hash.hex()[:16]}, "
            f"not the last ledger {last_ledger_hash.hex()[:16]}"
        )
    if len(tx_set.txs) > limits.max_txs:
        return f"tx set has {len(tx_set.txs)} transactions, more than the limit of {limits.max_txs}"
    if tx_set.total_bytes > limits.max_bytes:
        return f"tx set has {tx_set.total_bytes} bytes of transactions, more than the limit of {limits.max_bytes}"
    if not tx_set.is_canonical():
        return "tx set is not canonical (sorted by tx id, without duplicates)"
    if included_among is not None:
        found = included_among(tx_set.tx_ids)
        if found:
            first = next(i for i in tx_set.tx_ids if i in found)
            return f"transaction {first.hex()} is already in an earlier ledger"
    if is_included is not None:
        for i in tx_set.tx_ids:
            if is_included(i):
                return f"transaction {i.hex()} is already in an earlier ledger"
    return None


def check_value(
    value: ConsensusValue,
    tx_set: TxSet,
    *,
    last_ledger_hash: bytes,
    last_close_time: int,
    now: float,
    max_future: float,
    limits: TxSetLimits,
    is_included: Callable[[bytes], bool] | None = None,
    included_among: Callable[[Sequence[bytes]], Collection[bytes]] | None = None,
) -> str | None:
    """Why ``value`` (whose tx set the caller has fetched) is invalid, or None."""
    if tx_set.hash() != value.tx_set_hash:
        return "tx set does not match the value's tx set hash"
    return check_close_time(value.close_time, last_close_time, now, max_future) or check_tx_set(
        tx_set, last_ledger_hash, limits, is_included, included_among
    )


def combine_candidates(values: Iterable[ConsensusValue], tx_sets: Mapping[bytes, TxSet]) -> ConsensusValue | None:
    """The composite of the confirmed candidates.

    The tx set is the largest one among the candidates' (most transactions,
    then most bytes, then the greatest hash), and the close time is the
    highest among the candidates. Every node computes the same composite from
    the same candidates; to keep that true this returns None (no composite
    yet) rather than guess when a candidate's tx set is not in ``tx_sets``
    (the herder only confirms values whose tx set it has, so it should not
    happen) or when there are no candidates.
    """
    best: tuple[int, int, bytes] | None = None
    close_time = -1
    for value in values:
        tx_set = tx_sets.get(value.tx_set_hash)
        if tx_set is None:
            return None
        key = (len(tx_set.txs), tx_set.total_bytes, value.tx_set_hash)
        if best is None or key > best:
            best = key
        close_time = max(close_time, value.close_time)
    if best is None:
        return None
    return ConsensusValue(close_time, best[2])
