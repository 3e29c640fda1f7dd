"""Transactions in: the queue's intake, and batched flooding of the new ones.

Transactions from our API and from peers go through the queue
(``scpd.nodecore.txqueue``), which refuses what is too large or over the
origin's share and recognises what it has seen. Only the new ones are
flooded, gathered for ``tx_flood_delay`` into TRANSACTIONS messages of at
most half a frame of transactions (room for the per-transaction framing):
each origin's transactions are encoded once, and every peer gets all groups
but those that came from it. Outcomes are counted per batch, not per
transaction (an increment costs more than queueing one).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from scpd.base.types import NodeID
from scpd.nodecore.actions import ArmTimer, SendEncoded, TimerKey, TimerKind
from scpd.nodecore.messages import encode_transaction_entries, encode_transactions_message
from scpd.nodecore.txqueue import AddResult, Outcome

if TYPE_CHECKING:
    from scpd.nodecore.core import NodeCore

__all__ = ["TxFlood"]

# The smallest batch budget, whatever the frame limit.
MIN_BATCH_BYTES = 1 << 16


class TxFlood:
    def __init__(self, core: NodeCore) -> None:
        self._core = core
        # Transactions new to us, waiting to be flooded, by the peer they came from (None: our API).
        self._out: dict[NodeID | None, list[bytes]] = {}
        self._armed = False

    def submit(self, txs: Sequence[bytes], source: str, origin: NodeID | None) -> list[AddResult]:
        """Queue transactions (from our API, or from peer ``origin``) and flood the ones new to us."""
        results = self._core.txqueue.add_many(txs)
        queued = [tx for tx, r in zip(txs, results, strict=True) if r.outcome is Outcome.QUEUED]
        refused = Counter(r.refusal for r in results if r.refusal is not None)
        self._core.observer.transactions_received(source, len(results), len(queued), refused)
        self._gather(origin, queued)
        return results

    def from_peer(self, peer: NodeID, txs: Sequence[bytes]) -> None:
        """A batch from a peer: queue the new ones and relay them; duplicates cost a hash each."""
        summary = self._core.txqueue.add_batch(txs, origin=peer)
        self._core.observer.transactions_received("peer", len(txs), len(summary.queued), summary.refused)
        self._gather(peer, summary.queued)

    def _gather(self, origin: NodeID | None, txs: list[bytes]) -> None:
        if not txs:
            return
        self._out.setdefault(origin, []).extend(txs)
        self.arm()

    def arm(self) -> None:
        """Arm the flood timer for what is gathered (once the node runs: before, nothing carries timers out)."""
        if self._out and not self._armed and self._core.running:
            self._armed = True
            self._core.emit(ArmTimer(TimerKey(TimerKind.TX_FLOOD), self._core.settings.tx_flood_delay))

    def flush(self) -> None:
        """Send the gathered transactions to every peer but the one each came from, in batches."""
        self._armed = False
        pending, self._out = self._out, {}
        budget = max(MIN_BATCH_BYTES, self._core.settings.max_message_size // 2)
        groups = {origin: _encode_groups(txs, budget) for origin, txs in pending.items()}
        shared: list[bytes] | None = None
        for peer in self._core.peers:
            if peer in groups:
                encoded = _join_groups([g for o, gs in groups.items() if o != peer for g in gs], budget)
            else:
                if shared is None:
                    shared = _join_groups([g for gs in groups.values() for g in gs], budget)
                encoded = shared
            if encoded:
                self._core.emit(SendEncoded(peer, tuple(encoded)))


def _encode_groups(txs: list[bytes], budget: int) -> list[tuple[int, bytes]]:
    """``txs`` as encoded TRANSACTIONS entries, in groups of at most ``budget`` bytes (at least one each)."""
    out: list[tuple[int, bytes]] = []
    chunk: list[bytes] = []
    size = 0
    for tx in txs:
        if chunk and size + len(tx) > budget:
            out.append((len(chunk), encode_transaction_entries(chunk)))
            chunk, size = [], 0
        chunk.append(tx)
        size += len(tx)
    if chunk:
        out.append((len(chunk), encode_transaction_entries(chunk)))
    return out


def _join_groups(groups: list[tuple[int, bytes]], budget: int) -> list[bytes]:
    """Whole TRANSACTIONS messages from encoded groups, each message at most ``budget`` bytes of entries."""
    out: list[bytes] = []
    parts: list[bytes] = []
    count, size = 0, 0
    for n, entries in groups:
        if parts and size + len(entries) > budget:
            out.append(encode_transactions_message(count, parts))
            count, size, parts = 0, 0, []
        count, size = count + n, size + len(entries)
        parts.append(entries)
    if parts:
        out.append(encode_transactions_message(count, parts))
    return out
