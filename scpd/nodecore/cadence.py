"""When each slot is nominated, and the tick that keeps a stuck slot moving.

Slot ``i + 1`` is nominated ``slot_interval`` after slot ``i`` was, or as soon
as slot ``i``'s ledger is written if that takes longer (docs/configuration.md). A
slot we never nominated ourselves (learned by catch-up, or decided before a
restart) counts as started when its ledger is written. Nothing is nominated
before the ledger before it is written, so a disk that fails starts no slot.

The tick (every ``rebroadcast_interval``, at most every half second) retries
catch-up, and when a slot we are working on has made no progress for
``rebroadcast_interval`` it re-floods our latest statements and asks two peers
for theirs (stellar-core's getMoreSCPState asks two random peers): one answer
for a decided slot already carries the statements of every node that decided
it, and asking every peer would make N answers of N statements each. Waiting
for our own cadence to start the next slot is not a stall.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scpd.nodecore.actions import ArmTimer, Send, TimerKey, TimerKind
from scpd.nodecore.messages import GetScpState
from scpd.nodecore.values import ConsensusValue, TxSet, next_close_time

if TYPE_CHECKING:
    from scpd.base.types import NodeID
    from scpd.nodecore.core import NodeCore

__all__ = ["Cadence"]

# The tick's period never exceeds this, so catch-up retries stay prompt.
MAX_TICK = 0.5
# Peers asked for their statements per stalled tick, in turn (trusted ones first).
STATE_PEERS = 2


class Cadence:
    def __init__(self, core: NodeCore) -> None:
        self._core = core
        # When we started nominating each slot in memory.
        self._nominated_at: dict[int, float] = {}
        self.last_progress = 0.0
        self._last_rebroadcast = 0.0
        # Where the next stalled tick starts in the peer list, so that every peer is asked in turn.
        self._ask_cursor = 0

    def start(self) -> None:
        core = self._core
        self.last_progress = self._last_rebroadcast = core.now
        core.emit(ArmTimer(TimerKey(TimerKind.TICK), self._tick_period()))
        core.defer(self.nominate_current)

    def progress(self) -> None:
        """A slot externalized: the network is moving, no rebroadcast is due."""
        self.last_progress = self._core.now

    def nominate_current(self) -> None:
        """Start nominating the current slot (once), with a tx set from the queue."""
        core = self._core
        slot = core.current_slot
        if not core.running or slot in self._nominated_at:
            return
        tip = core.tip
        limits = core.settings.tx_set_limits
        items = core.txqueue.take_items_for_slot(limits.max_txs, limits.max_bytes)
        tx_set = TxSet.canonical_from_ids(tip.hash, items)
        core.sets.remember(tx_set)
        value = ConsensusValue(next_close_time(int(core.now), tip.close_time), tx_set.hash())
        self._nominated_at[slot] = core.now
        self.last_progress = core.now
        if core.is_validator:
            core.scp.nominate(slot, value.to_xdr(), core.tip_value)

    def written(self, slot: int) -> float | None:
        """Ledger ``slot`` was written: when we started nominating it (None: we never did)."""
        return self._nominated_at.pop(slot, None)

    def schedule(self, previous_started: float | None) -> None:
        """Nominate the current slot ``slot_interval`` after its predecessor started (``previous_started``)."""
        core = self._core
        started = core.now if previous_started is None else previous_started
        delay = max(0.0, started + core.settings.slot_interval - core.now)
        core.emit(ArmTimer(TimerKey(TimerKind.CADENCE), delay))

    def tick(self) -> None:
        core = self._core
        interval = core.settings.rebroadcast_interval
        now = core.now
        if self._stalled() and now - self._last_rebroadcast >= interval:
            self._last_rebroadcast = now
            slot = core.current_slot
            core.outbox.rebroadcast(slot)
            for peer in self._peers_to_ask():
                core.emit(Send(peer, GetScpState(max(slot - 1, 0))))
        core.catching.maybe_catch_up()
        core.emit(ArmTimer(TimerKey(TimerKind.TICK), self._tick_period()))

    def _stalled(self) -> bool:
        """No progress for an interval on the slot we nominated (before its nomination we are waiting, not stuck)."""
        core = self._core
        return (
            core.current_slot in self._nominated_at
            and core.now - self.last_progress >= core.settings.rebroadcast_interval
        )

    def _peers_to_ask(self) -> list[NodeID]:
        """The next STATE_PEERS peers in turn, from those we trust when any is connected."""
        core = self._core
        candidates = [n for n in core.peers if n in core.trust] or list(core.peers)
        if not candidates:
            return []
        start = self._ask_cursor % len(candidates)
        self._ask_cursor = start + STATE_PEERS
        return (candidates[start:] + candidates[:start])[:STATE_PEERS]

    def _tick_period(self) -> float:
        return min(self._core.settings.rebroadcast_interval, MAX_TICK)
