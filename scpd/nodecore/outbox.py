"""Our own envelopes: stored durably before anyone sees them (rule 3 of docs/architecture.md).

An envelope the consensus core emits is queued; the queue is written in one
batch (``PersistOwnEnvelopes``, one fsync) and only once the shell reports
it stored (``OwnEnvelopesPersisted``) is it sent, in emission order. One
received envelope often makes the consensus core emit several statements in
a row, each superseding the one before (SCP statements only grow), so only
the newest of each kind (nomination, ballot) per slot is stored and sent: a
burst costs one write, and nothing reaches the network before it is on disk.

A write the disk fails is retried after a growing pause (the node reports
storage trouble meanwhile), keeping only the newest queued envelope of each
kind per slot, which bounds the queue. A write the store refuses is never
retried and its envelopes are never sent: the node goes quiet rather than
risk contradicting itself. Rebroadcasts and state answers skip every
envelope not yet stored: the core's memory may be ahead of the disk, the
network never is.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

from scpd.base.types import NodeID, SCPEnvelope, SCPNomination
from scpd.nodecore.actions import Broadcast, PersistOwnEnvelopes, Send
from scpd.nodecore.messages import ScpMessage
from scpd.nodecore.values import TxSet

if TYPE_CHECKING:
    from scpd.nodecore.core import NodeCore

__all__ = ["Outbox", "newest_of_each_kind"]

_Item = tuple[SCPEnvelope, tuple[TxSet, ...]]


class Outbox:
    def __init__(self, core: NodeCore) -> None:
        self._core = core
        self._queue: deque[_Item] = deque()
        self._unsent: set[SCPEnvelope] = set()
        # The batch being written: its id, what was queued when it started, what it stores.
        self._writing: tuple[int, list[_Item], list[_Item]] | None = None
        self._retry_armed = False
        self._batches = 0

    def is_sent(self, envelope: SCPEnvelope) -> bool:
        return envelope not in self._unsent

    def add(self, envelope: SCPEnvelope) -> None:
        """Queue an emitted envelope (called from inside the consensus core: the write starts after)."""
        core = self._core
        self._queue.append((envelope, core.sets.own_sets_of(envelope)))
        self._unsent.add(envelope)
        core.observer.envelope_emitted()
        core.defer(self.flush)

    def flush(self) -> None:
        """Start writing the queue, unless a write or a retry pause is under way."""
        if self._writing is not None or self._retry_armed or not self._queue:
            return
        batch = list(self._queue)
        latest = list(newest_of_each_kind(batch).values())
        self._batches += 1
        self._writing = (self._batches, batch, latest)
        self._core.emit(PersistOwnEnvelopes(self._batches, tuple(latest)))

    def persisted(self, batch_id: int) -> None:
        if self._writing is None or self._writing[0] != batch_id:
            return
        _, batch, latest = self._writing
        self._writing = None
        self._core.storage_ok("own_envelope")
        for item in batch:
            if self._queue and self._queue[0] is item:
                self._queue.popleft()
            self._unsent.discard(item[0])
        for envelope, sets in latest:
            self._core.sets.stored(sets)
            self._core.emit(Broadcast(ScpMessage(envelope)))
        self.flush()

    def not_persisted(self, batch_id: int, error: str, retry: bool) -> None:
        if self._writing is None or self._writing[0] != batch_id:
            return
        self._writing = None
        if retry:
            # Not durable, so not sent (they stay unsent for rebroadcasts too): retry once the disk lets us.
            self._keep_newest()
            self._retry_armed = True
            self._core.storage_failed("own_envelope", error)
            return
        self._core.observer.own_envelopes_refused(error)
        self._queue.clear()

    def retry(self) -> None:
        self._retry_armed = False
        self.flush()

    def _keep_newest(self) -> None:
        """Drop the queued envelopes superseded by a newer one of the same slot and kind (never sent)."""
        kept = set(map(id, newest_of_each_kind(self._queue).values()))
        for item in self._queue:
            if id(item) not in kept:
                self._unsent.discard(item[0])
        self._queue = deque(item for item in self._queue if id(item) in kept)

    # -- what we say again ---------------------------------------------------------

    def rebroadcast(self, slot: int) -> None:
        """Re-flood our latest stored statements of ``slot`` to every peer, even those that have them."""
        for envelope in self._core.scp.get_latest_messages_send(slot):
            if self.is_sent(envelope):
                self._core.emit(Broadcast(ScpMessage(envelope), force=True))

    def send_state(self, peer: NodeID, from_slot: int) -> None:
        """Answer GET_SCP_STATE: what we know of each slot from ``from_slot`` on, stored own envelopes only."""
        scp = self._core.scp
        for slot in scp.known_slots():
            if slot < from_slot:
                continue
            for envelope in scp.get_externalizing_state(slot) or scp.get_latest_messages_send(slot):
                if self.is_sent(envelope):
                    self._core.emit(Send(peer, ScpMessage(envelope)))


def newest_of_each_kind(items: Iterable[_Item]) -> dict[tuple[int, bool], _Item]:
    """The last queued own envelope (with its tx sets) per slot and kind (nomination or ballot)."""
    latest: dict[tuple[int, bool], _Item] = {}
    for item in items:
        statement = item[0].statement
        latest[(statement.slot_index, isinstance(statement.pledges, SCPNomination))] = item
    return latest
