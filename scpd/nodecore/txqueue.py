"""The transaction queue: transactions waiting for a ledger.

Theory of operation
-------------------
The overlay and the HTTP API hand every transaction to :meth:`TxQueue.add`,
which says at once what became of it: queued, already known (queued before,
or already in a ledger according to the ``is_included`` callback), or refused
with a reason (empty, too large, queue full). That answer is the queue's whole
promise: *nothing accepted is silently dropped*. A queued transaction leaves
the queue only through :meth:`TxQueue.remove_included`, after a ledger that
carries it is recorded, so at any moment each accepted transaction is either
in a ledger or still queued.

:meth:`TxQueue.take_for_slot` does not remove anything: it proposes the oldest
transactions that fit the per-set limits (FIFO by arrival), and they stay
queued until a ledger actually includes them, because the slot may well
externalize another node's tx set instead.

Memory is bounded by the queue limits (count and bytes), and the limits are
shared out so that nobody can fill the queue for everyone: transactions that
came from peers (``origin`` set) may use at most ``1 - client_reserve`` of
it, the rest is kept for the node's own clients (the HTTP API), and one peer
may own at most ``peer_share`` of it. A transaction belongs to the peer that
brought it first; it counts against that peer until a ledger carries it.

The per-transaction
size limit must not exceed the per-set byte limit the herder uses, or a
transaction could be queued that no tx set can carry (the config checks this;
:meth:`TxQueue.take_for_slot` refuses such limits loudly).

Pure and synchronous: no clock, no I/O, no asyncio; the herder owns it on the
event loop.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from enum import Enum

from scpd.nodecore.values import MAX_TX_SIZE, tx_id

__all__ = ["AddResult", "BatchSummary", "Outcome", "QueueLimits", "Refusal", "TxQueue"]


class Outcome(Enum):
    QUEUED = "queued"
    ALREADY_KNOWN = "already-known"
    REFUSED = "refused"


class Refusal(Enum):
    """Why a transaction was refused; the value is the machine-readable reason."""

    EMPTY = "empty"
    TOO_LARGE = "too-large"
    QUEUE_FULL = "queue-full"


@dataclass(frozen=True, slots=True)
class AddResult:
    """What :meth:`TxQueue.add` did with a transaction."""

    outcome: Outcome
    tx_id: bytes
    refusal: Refusal | None = None
    detail: str = ""

    @property
    def accepted(self) -> bool:
        """True when the transaction is (or already was) on its way to a ledger."""
        return self.outcome is not Outcome.REFUSED


@dataclass(slots=True)
class BatchSummary:
    """What :meth:`TxQueue.add_batch` did: the newly queued transactions (in order) and the refusals.

    Every other transaction of the batch was already known.
    """

    queued: list[bytes] = field(default_factory=list)
    refused: dict[Refusal, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueueLimits:
    """Size of one transaction, the queue's capacity in transactions and bytes, and how it is shared."""

    max_tx_bytes: int = 64 * 1024
    max_txs: int = 100_000
    max_bytes: int = 64 * 1024 * 1024
    peer_share: float = 0.5  # of the whole queue, for one peer
    client_reserve: float = 0.25  # of the whole queue, never given to peers

    def __post_init__(self) -> None:
        if not 1 <= self.max_tx_bytes <= MAX_TX_SIZE:
            raise ValueError(f"max_tx_bytes must be in 1..{MAX_TX_SIZE}")
        if self.max_txs < 1 or self.max_bytes < self.max_tx_bytes:
            raise ValueError("the queue must hold at least one transaction of the maximum size")
        if not 0 < self.peer_share <= 1 or not 0 <= self.client_reserve < 1:
            raise ValueError("peer_share must be in (0, 1] and client_reserve in [0, 1)")

    def peer_cap(self, share: float) -> tuple[int, int]:
        """(transactions, bytes) for a ``share`` of the queue."""
        return int(self.max_txs * share), int(self.max_bytes * share)


class _Usage:
    """Transactions and bytes one owner has in the queue."""

    __slots__ = ("count", "size")

    def __init__(self) -> None:
        self.count = 0
        self.size = 0

    def fits(self, n: int, cap: tuple[int, int]) -> bool:
        return self.count + 1 <= cap[0] and self.size + n <= cap[1]

    def change(self, n: int, sign: int) -> None:
        self.count += sign
        self.size += sign * n


class TxQueue:
    """A bounded FIFO of pending transactions, keyed by tx id."""

    def __init__(
        self,
        limits: QueueLimits,
        is_included: Callable[[bytes], bool] | None = None,
        included_among: Callable[[list[bytes]], set[bytes]] | None = None,
    ) -> None:
        self.limits = limits
        self._is_included = is_included
        # The batch form of ``is_included`` (one database query for many ids), used by add_many.
        self._included_among = included_among
        self._txs: OrderedDict[bytes, bytes] = OrderedDict()
        self._bytes = 0
        self._owner: dict[bytes, Hashable] = {}  # tx id -> the peer that brought it (clients' are absent)
        self._peers_usage: dict[Hashable, _Usage] = {}
        self._all_peers = _Usage()
        self._peers_cap = limits.peer_cap(1 - limits.client_reserve)
        self._peer_cap = limits.peer_cap(min(limits.peer_share, 1 - limits.client_reserve))

    def __len__(self) -> int:
        return len(self._txs)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._txs

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def get(self, tx_id: bytes) -> bytes | None:
        return self._txs.get(tx_id)

    def peer_usage(self, origin: Hashable) -> tuple[int, int]:
        """(transactions, bytes) queued on behalf of peer ``origin``."""
        usage = self._peers_usage.get(origin)
        return (usage.count, usage.size) if usage is not None else (0, 0)

    def add(self, tx: bytes, origin: Hashable | None = None) -> AddResult:
        """Queue ``tx`` (from a client, or from peer ``origin``) unless it is known or breaks a limit; say which."""
        i = tx_id(tx)
        if not tx:
            return AddResult(Outcome.REFUSED, i, Refusal.EMPTY, "empty transaction")
        included = i not in self._txs and self._is_included is not None and self._is_included(i)
        return self._add(tx, i, included, origin)

    def add_many(self, txs: Iterable[bytes], origin: Hashable | None = None) -> list[AddResult]:
        """``add`` for each of ``txs`` in order, asking about earlier ledgers once for the whole batch."""
        items = [(tx, tx_id(tx)) for tx in txs]
        unknown = [i for tx, i in items if tx and i not in self._txs]
        if self._included_among is not None:
            included = self._included_among(unknown) if unknown else set()
        elif self._is_included is not None:
            included = {i for i in unknown if self._is_included(i)}
        else:
            included = set()
        results: list[AddResult] = []
        for tx, i in items:
            if not tx:
                results.append(AddResult(Outcome.REFUSED, i, Refusal.EMPTY, "empty transaction"))
            else:
                results.append(self._add(tx, i, i in included, origin))
        return results

    def add_batch(self, txs: Iterable[bytes], origin: Hashable | None = None) -> BatchSummary:
        """``add_many`` for a batch from a peer, where only the totals and the new ones matter.

        Under load most of a peer's batch is already queued (every transaction
        reaches a node from several peers), so duplicates cost a hash and a
        lookup here, with no per-transaction result.
        """
        queue = self._txs
        sha256 = hashlib.sha256
        fresh = [(tx, i) for tx in txs if (i := sha256(tx).digest()) not in queue]
        summary = BatchSummary()
        if not fresh:
            return summary
        results = self.add_many((tx for tx, _ in fresh), origin)
        for tx, result in zip((tx for tx, _ in fresh), results, strict=True):
            if result.outcome is Outcome.QUEUED:
                summary.queued.append(tx)
            elif result.refusal is not None:
                summary.refused[result.refusal] = summary.refused.get(result.refusal, 0) + 1
        return summary

    def _add(self, tx: bytes, i: bytes, included: bool, origin: Hashable | None) -> AddResult:
        if included or i in self._txs:
            return AddResult(Outcome.ALREADY_KNOWN, i)
        limits = self.limits
        if len(tx) > limits.max_tx_bytes:
            detail = f"{len(tx)} bytes, more than the limit of {limits.max_tx_bytes}"
            return AddResult(Outcome.REFUSED, i, Refusal.TOO_LARGE, detail)
        if len(self._txs) >= limits.max_txs or self._bytes + len(tx) > limits.max_bytes:
            detail = f"queue holds {len(self._txs)} transactions, {self._bytes} bytes"
            return AddResult(Outcome.REFUSED, i, Refusal.QUEUE_FULL, detail)
        if origin is not None:
            refusal = self._peer_refusal(len(tx), origin)
            if refusal:
                return AddResult(Outcome.REFUSED, i, Refusal.QUEUE_FULL, refusal)
            self._owner[i] = origin
            self._peers_usage.setdefault(origin, _Usage()).change(len(tx), 1)
            self._all_peers.change(len(tx), 1)
        self._txs[i] = bytes(tx)
        self._bytes += len(tx)
        return AddResult(Outcome.QUEUED, i)

    def _peer_refusal(self, n: int, origin: Hashable) -> str:
        if not self._all_peers.fits(n, self._peers_cap):
            return "the part of the queue open to peers is full (the rest is kept for clients)"
        usage = self._peers_usage.get(origin) or _Usage()
        if not usage.fits(n, self._peer_cap):
            return f"this peer's share is full ({usage.count} transactions, {usage.size} bytes)"
        return ""

    def take_for_slot(self, max_txs: int, max_bytes: int) -> list[bytes]:
        """The oldest queued transactions that fit the limits, in arrival order.

        Stops at the first transaction that does not fit instead of skipping
        it, so a large transaction cannot be starved by a stream of small
        ones: it goes first in the next slot. Nothing is removed.
        """
        return [tx for _, tx in self.take_items_for_slot(max_txs, max_bytes)]

    def take_items_for_slot(self, max_txs: int, max_bytes: int) -> list[tuple[bytes, bytes]]:
        """:meth:`take_for_slot` as (tx id, tx) pairs, so a tx set is built without hashing again."""
        if max_bytes < self.limits.max_tx_bytes:
            raise ValueError(
                f"a tx set byte limit of {max_bytes} cannot carry a transaction of {self.limits.max_tx_bytes} bytes"
            )
        taken: list[tuple[bytes, bytes]] = []
        size = 0
        for item in self._txs.items():
            n = len(item[1])
            if len(taken) >= max_txs or size + n > max_bytes:
                break
            taken.append(item)
            size += n
        return taken

    def remove_included(self, tx_ids: Iterable[bytes]) -> int:
        """Forget the transactions a recorded ledger carries; returns how many were queued."""
        removed = 0
        for i in tx_ids:
            tx = self._txs.pop(i, None)
            if tx is not None:
                self._bytes -= len(tx)
                removed += 1
                origin = self._owner.pop(i, None)
                if origin is not None:
                    self._release(origin, len(tx))
        return removed

    def _release(self, origin: Hashable, n: int) -> None:
        self._all_peers.change(n, -1)
        usage = self._peers_usage[origin]
        usage.change(n, -1)
        if not usage.count:
            del self._peers_usage[origin]
