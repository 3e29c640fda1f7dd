"""Ledgers are written strictly in slot order, one at a time, and never given up for want of disk.

The ledger to write next is always slot ``tip + 1``: our own decision (with
its tx set and the EXTERNALIZE proofs the consensus core holds), else an
entry learned by catch-up and checked (``catchup_client``). A slot that
externalizes before its predecessor waits until the predecessor is written.
A decided value whose tx set we lack has it fetched (``fetches``).

A write the disk fails (``LedgerNotWritten`` with ``retry``) is kept and
retried after a growing pause, while ``storage`` reports the trouble; the
node meanwhile starts no slot (the next one starts only once this one is
written) and asks for no ledgers. A write the chain refuses drops that
source, so the next one (our decision or another peer's entry) gets a chance.

Each written ledger moves the tip: its transactions leave the queue, old
consensus state is purged, the next slot is scheduled (``cadence``), the
future envelopes of the new current slot are released (``intake``), and
EXTERNALIZE envelopes that arrive later are added to its proofs (at most one
per node and ``MAX_PROOFS`` per slot), so that others can catch up from us.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from scpd.base.types import NodeID, SCPEnvelope, SCPExternalize
from scpd.nodecore.actions import AddProofs, Checkpoint, Externalized, PruneOwnEnvelopes, WriteLedger
from scpd.nodecore.catchup import MAX_PROOFS, CatchupEntry
from scpd.nodecore.values import ChainTip, ConsensusValue, LedgerEntry, TxSet, ledger_hash

if TYPE_CHECKING:
    from scpd.nodecore.core import NodeCore

__all__ = ["LedgerWriter"]

# Own envelopes of old slots are pruned every this many ledgers.
PRUNE_EVERY = 64


@dataclass(frozen=True, slots=True)
class _Write:
    value: ConsensusValue
    tx_set: TxSet
    proofs: tuple[SCPEnvelope, ...]


class LedgerWriter:
    def __init__(self, core: NodeCore) -> None:
        self._core = core
        # Decided values not yet written, by slot (ours, from the consensus core).
        self.externalized: dict[int, bytes] = {}
        # Checked catch-up entries not yet written, by slot.
        self.caught_up: dict[int, CatchupEntry] = {}
        self._writing: tuple[int, _Write] | None = None
        self._retry_armed = False
        # Nodes whose late EXTERNALIZE we kept per written slot.
        self._late_proofs: dict[int, set[NodeID]] = {}

    def restore(self) -> None:
        """Restore our own statements of unfinished slots (``Started``)."""
        core = self._core
        for envelope in core.view.load_own_envelopes(core.current_slot):
            core.sets.remember_sets_of(envelope)
            core.scp.set_state_from_envelope(envelope.statement.slot_index, envelope)
            pledges = envelope.statement.pledges
            if isinstance(pledges, SCPExternalize):
                # Decided but killed before the ledger was written: the restore does not report it
                # again, so write it now (our EXTERNALIZE is its proof).
                self.externalized[envelope.statement.slot_index] = pledges.commit.value
        if self.externalized:
            core.defer(self.write_next)

    def decided(self, slot: int, value: bytes) -> None:
        """The consensus core externalized ``value`` for ``slot`` (called from inside it)."""
        self.externalized[slot] = value
        self._core.defer(self.write_next)

    def add_caught_up(self, entry: CatchupEntry) -> None:
        self.caught_up[entry.slot] = entry

    @property
    def busy(self) -> bool:
        return self._writing is not None or self._retry_armed

    def write_next(self) -> None:
        """Write the ledger that follows the tip, if we have it and no write or retry is under way."""
        core = self._core
        if self.busy or not core.running:
            return
        slot = core.current_slot
        job = self._next_write(slot)
        if job is None:
            for old in [s for s in self.externalized if s < slot]:
                del self.externalized[old]
            for old in [s for s in self.caught_up if s < slot]:
                del self.caught_up[old]
            return
        self._writing = (slot, job)
        core.emit(WriteLedger(LedgerEntry(slot, job.value), job.tx_set, job.proofs))

    def _next_write(self, slot: int) -> _Write | None:
        """What to write as ledger ``slot``: our own decision, else a checked catch-up entry."""
        core = self._core
        value = self.externalized.get(slot)
        if value is not None:
            decoded = ConsensusValue.from_xdr(value)
            tx_set = core.sets.find_tx_set(decoded.tx_set_hash)
            if tx_set is not None:
                proofs = self._externalize_envelopes(slot, value)
                proofs += [e for e in self._restored_proofs(slot, value) if e not in proofs]
                return _Write(decoded, tx_set, tuple(proofs))
            if slot not in self.caught_up:
                core.fetches.for_ledger(decoded.tx_set_hash)
        entry = self.caught_up.get(slot)
        if entry is not None:
            return _Write(entry.value, entry.tx_set, entry.proofs)
        return None

    def _externalize_envelopes(self, slot: int, value: bytes) -> list[SCPEnvelope]:
        return [
            env
            for env in self._core.scp.get_externalizing_state(slot)
            if isinstance(env.statement.pledges, SCPExternalize) and env.statement.pledges.commit.value == value
        ]

    def _restored_proofs(self, slot: int, value: bytes) -> list[SCPEnvelope]:
        """Our own EXTERNALIZE, when the slot's decision was restored from disk (the core's state lacks it)."""
        return [
            env
            for env in self._core.scp.get_latest_messages_send(slot)
            if isinstance(env.statement.pledges, SCPExternalize) and env.statement.pledges.commit.value == value
        ]

    def not_written(self, slot: int, error: str, retry: bool) -> None:
        core = self._core
        if self._writing is None or self._writing[0] != slot:
            return
        self._writing = None
        if retry:
            # Our disk's fault, not the ledger's: keep it and retry (the slot stays undecided on disk,
            # so no new slot starts, no peer is asked for ledgers past it, none is served).
            self._retry_armed = True
            core.storage_failed("ledger", error)
            return
        core.observer.ledger_write_refused(slot, error)
        # Drop what failed so the next source (our decision or another peer's entry) gets a chance.
        if self.caught_up.pop(slot, None) is not None:
            self.write_next()

    def retry(self) -> None:
        self._retry_armed = False
        self.write_next()

    def written(self, slot: int, written_hash: bytes) -> None:
        core = self._core
        if self._writing is None or self._writing[0] != slot:
            return
        job = self._writing[1]
        self._writing = None
        core.storage_ok("ledger")
        previous = core.tip.hash
        self.caught_up.pop(slot, None)
        self.externalized.pop(slot, None)
        core.tip = ChainTip(slot, written_hash, job.value.close_time)
        core.tip_value = job.value.to_xdr()
        core.sets.tip_moved(previous)
        core.txqueue.remove_included(job.tx_set.tx_ids)
        started = core.cadence.written(slot)
        elapsed = core.now - started if started is not None else None
        core.last_ledger_at = core.now
        tx_count = len(job.tx_set.txs)
        core.observer.ledger_closed(slot, elapsed, tx_count, core.scp.snapshot(slot))
        core.scp.purge_slots(max(0, slot - core.settings.keep_slots))
        core.emit(Externalized(slot, tx_count, elapsed))
        if slot % PRUNE_EVERY == 0:
            core.emit(PruneOwnEnvelopes(slot - core.settings.keep_slots))
        core.emit(Checkpoint())
        core.catching.ledger_written()
        core.defer(core.intake.release)
        core.cadence.schedule(started)
        # EXTERNALIZE envelopes that reached the consensus core while the write ran are proofs too.
        later = tuple(e for e in self._externalize_envelopes(slot, job.value.to_xdr()) if e not in job.proofs)
        if later:
            core.emit(AddProofs(slot, later))
        self.write_next()

    def pending_tip(self) -> ChainTip:
        """The chain as it will be once every ledger the writer can write is written.

        Both the catch-up request (which slot to ask from) and the check of its answer use this
        view, so a decided slot we have not written yet (its write failing) never makes honest
        answers look like they "do not follow our tip". A decided slot whose tx set we lack is
        not in it: catch-up then asks for that very slot, whose served entry brings the set.
        """
        core = self._core
        tip = core.tip
        while True:
            slot = tip.slot + 1
            decided = self.externalized.get(slot)
            ours = None if decided is None else ConsensusValue.from_xdr(decided)
            entry = self.caught_up.get(slot)
            if ours is not None and core.sets.find_tx_set(ours.tx_set_hash) is not None:
                value = ours
            elif entry is not None:
                value = entry.value
            else:
                return tip
            tip = ChainTip(slot, ledger_hash(tip.hash, LedgerEntry(slot, value)), value.close_time)

    # -- late proofs ------------------------------------------------------------------

    def late_proof(self, envelope: SCPEnvelope) -> None:
        """A trusted, signed EXTERNALIZE for a ledger we already wrote: keep it as one more proof.

        At most one per node and ``MAX_PROOFS`` per slot are ever attempted (the store keeps
        one per node too, and refuses one of another value), so a flood of them costs nothing.
        """
        slot, node = envelope.statement.slot_index, envelope.statement.node_id
        kept = self._late_proofs.setdefault(slot, set())
        if node in kept or len(kept) >= MAX_PROOFS:
            return
        kept.add(node)
        self._core.emit(AddProofs(slot, (envelope,)))

    def forget_late_proofs_below(self, slot: int) -> None:
        for old in [s for s in self._late_proofs if s < slot]:
            del self._late_proofs[old]
