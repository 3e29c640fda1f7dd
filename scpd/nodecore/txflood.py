"""Transactions in: the queue's intake, and batched flooding of the new ones.

Transactions from our API and from peers go through the queue
(``scpd.nodecore.txqueue``), which refuses what is too large or over the
origin's share and recognises what it has seen. Only the new ones are
flooded, gathered for ``tx_flood_delay`` into TRANSACTIONS messages of at
most half a frame of transactions (room for the per-transaction framing):
each origin's transactions are encoded once, and every peer gets the groups
it does not have and will not hear first hand (``scpd.nodecore.txrelay``:
not its own, nor those of an origin both say they are connected to).
Outcomes are counted per batch, not per transaction (an increment costs
more than queueing one).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from scpd.base.types import NodeID
from scpd.nodecore.actions import ArmTimer, SendEncoded, TimerKey, TimerKind
from scpd.nodecore.messages import encode_transaction_entries, encode_transactions_message
from scpd.nodecore.txqueue import AddResult, Outcome
from scpd.nodecore.txrelay import batch_recipients

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
        # What each peer last said (NEIGHBORS) it is connected to: the relay hint, see ``txrelay``.
        self._neighbors: dict[NodeID, frozenset[NodeID]] = {}

    def neighbors_heard(self, peer: NodeID, nodes: Sequence[NodeID]) -> None:
        self._neighbors[peer] = frozenset(nodes)

    def peer_gone(self, peer: NodeID) -> None:
        self._neighbors.pop(peer, None)

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
        """Send the gathered transactions, in batches, to the peers that neither have them nor hear them first hand."""
        self._armed = False
        pending, self._out = self._out, {}
        budget = max(MIN_BATCH_BYTES, self._core.settings.max_message_size // 2)
        groups: dict[NodeID | None, list[tuple[int, bytes]]] = {}
        batches: dict[tuple[NodeID | None, ...], tuple[bytes, ...]] = {}
        for peer, origins in batch_recipients(pending, self._core.peers, self._neighbors).items():
            encoded = batches.get(origins)
            if encoded is None:
                for o in origins:
                    if o not in groups:
                        groups[o] = _encode_groups(pending[o], budget)
                encoded = batches[origins] = tuple(_join_groups([g for o in origins for g in groups[o]], budget))
            self._core.emit(SendEncoded(peer, encoded))


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
