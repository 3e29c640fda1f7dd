"""The herder: the application side of the SCP driver, on the asyncio loop.

Theory of operation
-------------------
The herder owns the consensus core (``scpd.scp.SCP``) for one node and
answers every question the core asks (``Driver``): it signs with the node
key, persists each own envelope durably *before* flooding it (DESIGN rule 3),
runs the core's timers on the event loop, judges values against the last
ledger, and combines candidates. It also drives the cadence: slot ``i + 1`` is
nominated ``slot_interval`` after slot ``i`` was, or as soon as slot ``i``
externalizes if that takes longer.

Envelopes arrive from the overlay hostile (docs/security.md). The herder
checks the cheap things first: the signer is in the transitive closure of our
quorum set (``scpd.nodecore.trust``), the slot is near ours; then the signature,
at most once per envelope (``scpd.nodecore.sigcache``); then whether the signer
contradicts itself (``scpd.nodecore.equivocation``). A statement for a future
slot waits in ``scpd.nodecore.pending`` until its slot is current; one for the
current slot goes to the core once what it references and we lack (its
quorum set, the tx sets of its values) is fetched from the peer that sent it
(bounded), so the core only ever judges values it can judge
(docs/consensus.md). An invalid envelope scores its sender.

Externalized values are written to the ledger store strictly in slot order
by one writer task, in a worker thread (a commit with many transactions takes
longer than a slot's message handling can wait); a slot that externalizes
before its predecessor waits (bounded) until the predecessor is written.
Ledgers learned by catch-up (``scpd.nodecore.catchup``) go through the same
writer. A write that fails for want of disk (``StorageError``) is kept and
retried with growing pauses, own envelopes too, while ``storage`` reports the
trouble; the node meanwhile starts no slot and asks for no ledgers. Each
written ledger removes its transactions from the queue, and EXTERNALIZE
envelopes arriving after the write are added to its proofs, so that others
can catch up from us.

Own envelopes (DESIGN rule 3): an envelope the core emits is queued, written
durably by one flusher task in a worker thread, and only then flooded, in
emission order; rebroadcasts and state answers skip envelopes not yet on
disk. The core's memory may be ahead of the disk, the network never is.

The core is not re-entrant: nothing called from inside the core (hooks,
``emit_envelope``) calls back into it; follow-up work goes through
``loop.call_soon``.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from scpd.base.keys import Keypair, sign_statement, verify_envelope
from scpd.base.quorum import all_validators, quorum_set_hash
from scpd.base.types import (
    NodeID,
    SCPConfirm,
    SCPEnvelope,
    SCPExternalize,
    SCPNomination,
    SCPPrepare,
    SCPQuorumSet,
    SCPStatement,
)
from scpd.errors import LedgerError, XdrError
from scpd.node.envelope_log import EnvelopeLog
from scpd.node.ledger import LedgerStore
from scpd.node.ledger_chain import LedgerRecord
from scpd.node.ledger_db import StorageError
from scpd.node.metrics import Metrics
from scpd.node.overlay.overlay import Overlay, Verdict
from scpd.node.overlay.peer import Peer
from scpd.node.storage_health import StorageHealth
from scpd.nodecore.catchup import MAX_PROOFS, Catchup, CatchupEntry, CatchupSettings, GetLedgers, Ledgers, check_entry
from scpd.nodecore.equivocation import EquivocationDetector
from scpd.nodecore.messages import (
    GetQuorumSet,
    GetScpState,
    GetTxSet,
    OverlayMessage,
    QuorumSetMessage,
    ScpMessage,
    Transaction,
    TransactionBatch,
    TxSetMessage,
    encode_transaction_entries,
    encode_transactions_message,
)
from scpd.nodecore.pending import PendingEnvelopes, PendingLimits, PendingOutcome
from scpd.nodecore.sigcache import DEFAULT_SIGNATURE_CACHE, SignatureCache
from scpd.nodecore.trust import DEFAULT_MAX_TRUSTED, TrustedQuorum
from scpd.nodecore.txqueue import AddResult, Outcome, QueueLimits, Refusal, TxQueue
from scpd.nodecore.values import (
    ChainTip,
    ConsensusValue,
    LedgerEntry,
    TxSet,
    TxSetLimits,
    check_close_time,
    check_tx_set,
    combine_candidates,
    ledger_hash,
    next_close_time,
)
from scpd.scp.driver import Driver, EnvelopeState, TimerCallback, TimerId, ValidationLevel
from scpd.scp.scp import SCP

__all__ = ["ExternalizedSlot", "Herder", "HerderSettings"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class HerderSettings:
    slot_interval: float = 5.0
    nomination_timeout_initial: float = 1.0
    nomination_timeout_increment: float = 1.0
    ballot_timeout_initial: float = 1.0
    ballot_timeout_increment: float = 1.0
    max_timeout: float = 30 * 60.0
    tx_set_limits: TxSetLimits = field(default_factory=lambda: TxSetLimits(1000, 1 << 20))
    queue_limits: QueueLimits = field(default_factory=lambda: QueueLimits(100_000, 64 << 10, 64 << 20))
    max_close_time_drift: int = 60
    # Envelopes for slots further than this from ours are ignored unread.
    max_slots_ahead: int = 12
    max_slots_behind: int = 2
    fetch_timeout: float = 5.0
    # Current-slot envelopes waiting for a fetch (counted from the moment they start waiting).
    max_waiting_envelopes: int = 1000
    # Future-slot envelopes waiting for their slot (scpd.nodecore.pending).
    pending_limits: PendingLimits = field(default_factory=PendingLimits)
    # Envelope signature verdicts remembered (scpd.nodecore.sigcache).
    signature_cache: int = DEFAULT_SIGNATURE_CACHE
    # Nodes the transitive closure of our quorum set may hold, nearest first (scpd.nodecore.trust).
    max_trusted_nodes: int = DEFAULT_MAX_TRUSTED
    # A stuck slot re-floods our latest statements and asks peers for theirs.
    rebroadcast_interval: float = 2.0
    keep_slots: int = 12
    catchup: CatchupSettings = field(default_factory=CatchupSettings)
    # Debug/audit: append every SCP envelope received to this file (see EnvelopeLog).
    record_envelopes: Path | None = None
    # New transactions are flooded in batches (TRANSACTIONS messages) gathered for this long.
    tx_flood_delay: float = 0.02


@dataclass(frozen=True, slots=True)
class ExternalizedSlot:
    """What the herder reports for each ledger it writes."""

    slot: int
    record: LedgerRecord
    tx_count: int
    seconds_to_consensus: float | None


class Herder(Driver):
    """One node's consensus driver, slot cadence and ledger writer."""

    def __init__(
        self,
        keypair: Keypair,
        net_id: bytes,
        quorum_set: SCPQuorumSet,
        store: LedgerStore,
        settings: HerderSettings,
        *,
        is_validator: bool = True,
        clock: Callable[[], float] = time.time,
        on_externalized: Callable[[ExternalizedSlot], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__(
            nomination_timeout_initial=settings.nomination_timeout_initial,
            nomination_timeout_increment=settings.nomination_timeout_increment,
            ballot_timeout_initial=settings.ballot_timeout_initial,
            ballot_timeout_increment=settings.ballot_timeout_increment,
            max_timeout=settings.max_timeout,
        )
        self.keypair = keypair
        self.node_id: NodeID = keypair.public_key
        self.net_id = net_id
        self.store = store
        self.settings = settings
        self.is_validator = is_validator
        self._clock = clock
        self._on_externalized = on_externalized
        # Without a Metrics object the counters still exist, in a private registry nobody scrapes.
        self.metrics = metrics if metrics is not None else Metrics(process=False)
        self.scp = SCP(self, self.node_id, is_validator, quorum_set)
        # When each validator of our quorum set last showed it is alive (its statements advanced, or it
        # spoke to us directly), for quorum health.
        self.heard_at: dict[NodeID, float] = {}
        self._members = frozenset(all_validators(quorum_set))
        # Local clock time of the last ledger written by this process (None before the first).
        self.last_ledger_at: float | None = None
        self.overlay: Overlay | None = None
        self.txqueue = TxQueue(settings.queue_limits, store.is_included, store.included_among)
        # Transactions new to us, waiting to be flooded, by the peer they came from (None: our API).
        self._tx_out: dict[NodeID | None, list[bytes]] = {}
        self._tx_flush: asyncio.TimerHandle | None = None
        # Tx set checks against the current tip (tx set hash -> problem or None): a set is judged
        # once per ledger, however many statements name it. Cleared when the tip moves.
        self._tx_set_verdicts: dict[bytes, str | None] = {}
        self._qsets: dict[bytes, SCPQuorumSet] = store.load_quorum_sets()
        self._qsets[quorum_set_hash(quorum_set)] = quorum_set
        self._tx_sets: OrderedDict[bytes, TxSet] = OrderedDict()
        # Hashes of the tx sets this node proposed (nominated), for the slots in memory.
        self._proposed: set[bytes] = set()
        self._timers: dict[tuple[int, TimerId], asyncio.TimerHandle] = {}
        self._externalized: dict[int, bytes] = {}
        self._nominated_at: dict[int, float] = {}
        # Intake (docs/security.md): whom we listen to, future slots, verdicts, equivocation.
        self.trust = TrustedQuorum(self.node_id, quorum_set, settings.max_trusted_nodes)
        self.pending = PendingEnvelopes(settings.pending_limits)
        self.signatures = SignatureCache(settings.signature_cache)
        self.equivocations = EquivocationDetector()
        # Current-slot envelopes waiting for a quorum set or tx set, so a copy does not wait twice.
        self._fetching: set[SCPEnvelope] = set()
        # Nodes whose late EXTERNALIZE we kept per written slot (at most one each, MAX_PROOFS in all).
        self._late_proofs: dict[int, set[NodeID]] = {}
        self.metrics.trusted_nodes.set(len(self.trust))
        self.metrics.network_slot.set_function(lambda: self.catchup.highest_seen)
        self._tasks: set[asyncio.Task[None]] = set()
        self._cadence: asyncio.TimerHandle | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._last_progress = clock()
        self._running = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tip = store.tip()
        self.catchup = Catchup(settings.catchup, quorum_set)
        self._caught_up: dict[int, CatchupEntry] = {}
        self._writer: asyncio.Task[None] | None = None
        self._checkpoint: asyncio.Task[None] | None = None
        self._just_caught_up = False
        self._own_pending: deque[tuple[SCPEnvelope, list[TxSet]]] = deque()
        self._own_unsent: set[SCPEnvelope] = set()
        self._flusher: asyncio.Task[None] | None = None
        # Failed ledger / own-envelope writes are retried; meanwhile the node reports storage trouble.
        self.storage = StorageHealth()
        self._envelope_log = EnvelopeLog(settings.record_envelopes) if settings.record_envelopes else None
        last = store.latest()
        # The previous slot's value feeds leader selection (draft 3.3).
        self._tip_value = last.value.to_xdr() if last is not None else b""

    # -- lifecycle ------------------------------------------------------------

    @property
    def current_slot(self) -> int:
        """The slot being decided: one past the last ledger."""
        return self._tip.slot + 1

    @property
    def tip(self) -> ChainTip:
        return self._tip

    def attach(self, overlay: Overlay) -> None:
        self.overlay = overlay

    def start(self) -> None:
        """Restore our own statements of unfinished slots, then start the cadence."""
        self._loop = asyncio.get_running_loop()
        self._running = True
        current = self.current_slot
        for env in self.store.load_own_envelopes(current):
            self._remember_tx_sets_of(env)
            self.scp.set_state_from_envelope(env.statement.slot_index, env)
            pledges = env.statement.pledges
            if isinstance(pledges, SCPExternalize):
                # Decided but killed before the ledger was written: the restore does
                # not report it again, so write it now (our EXTERNALIZE is its proof).
                self._externalized[env.statement.slot_index] = pledges.commit.value
        if self._externalized:
            self._loop.call_soon(self._apply_externalized)
        # Transactions acknowledged before a crash or restart are queued again.
        self.txqueue.add_many(self.store.load_pending_txs())
        self._ticker = asyncio.create_task(self._tick_loop(), name="herder-tick")
        self._loop.call_soon(self._nominate_current)

    async def stop(self) -> None:
        self._running = False
        if self._cadence is not None:
            self._cadence.cancel()
        if self._tx_flush is not None:
            self._tx_flush.cancel()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        tasks = [t for t in (self._ticker, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # A write in progress completes (the loops stop after it); unsent own envelopes are dropped,
        # which is safe: nobody saw them.
        self._own_pending.clear()
        pending = [t for t in (self._writer, self._flusher, self._checkpoint) if t is not None]
        await asyncio.gather(*pending, return_exceptions=True)
        if self._envelope_log is not None:
            self._envelope_log.close()

    # -- cadence --------------------------------------------------------------

    def _nominate_current(self) -> None:
        if not self._running:
            return
        slot = self.current_slot
        if slot in self._nominated_at:
            return
        tip = self._tip
        limits = self.settings.tx_set_limits
        items = self.txqueue.take_items_for_slot(limits.max_txs, limits.max_bytes)
        tx_set = TxSet.canonical_from_ids(tip.hash, items)
        self._remember_tx_set(tx_set)
        self._proposed.add(tx_set.hash())
        value = ConsensusValue(next_close_time(int(self._clock()), tip.close_time), tx_set.hash())
        self._nominated_at[slot] = self._clock()
        self._last_progress = self._clock()
        if self.is_validator:
            self.scp.nominate(slot, value.to_xdr(), self._tip_value)

    def _schedule_next_slot(self, slot: int, previous_started: float | None) -> None:
        """Nominate ``slot`` at ``slot_interval`` after its predecessor started (``previous_started``).

        A predecessor we never nominated (learned by catch-up, or decided before a restart) counts
        as started now.
        """
        assert self._loop is not None
        started = self._clock() if previous_started is None else previous_started
        delay = max(0.0, started + self.settings.slot_interval - self._clock())
        if self._cadence is not None:
            self._cadence.cancel()
        self._cadence = self._loop.call_later(delay, self._nominate_current)

    async def _tick_loop(self) -> None:
        """Keep a stuck slot moving: re-flood our statements and ask for others'; retry catch-up."""
        interval = self.settings.rebroadcast_interval
        last_rebroadcast = self._clock()
        while True:
            await asyncio.sleep(min(interval, 0.5))
            now = self._clock()
            if now - self._last_progress >= interval and now - last_rebroadcast >= interval:
                last_rebroadcast = now
                self.rebroadcast()
            self._maybe_catch_up()

    def rebroadcast(self) -> None:
        if self.overlay is None:
            return
        slot = self.current_slot
        for env in self.scp.get_latest_messages_send(slot):
            if env not in self._own_unsent:
                self.overlay.broadcast(ScpMessage(env), force=True)
        for peer in self.overlay.peers:
            peer.send(GetScpState(max(slot - 1, 0)))

    # -- driver: envelopes ------------------------------------------------------

    def sign_envelope(self, statement: SCPStatement) -> SCPEnvelope:
        return sign_statement(self.keypair, self.net_id, statement)

    def emit_envelope(self, envelope: SCPEnvelope) -> None:
        """Queue the envelope: it is flooded only once it is durably stored (DESIGN rule 3)."""
        self._own_pending.append((envelope, self._tx_sets_of(envelope)))
        self._own_unsent.add(envelope)
        self.metrics.envelopes_emitted.inc()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_own_envelopes(), name="herder-own-envelopes")

    async def _flush_own_envelopes(self) -> None:
        """Save the queued own envelopes (one fsync, in a worker thread), then flood them, in order.

        One received envelope often makes the core emit several statements in
        a row, each superseding the one before (SCP statements only grow), so
        only the newest of each kind per slot is saved and sent: a burst costs
        one fsync, and nothing reaches the network before it is on disk.
        """
        while self._own_pending:
            batch = list(self._own_pending)
            latest = _newest_of_each_kind(batch)
            try:
                await asyncio.to_thread(self.store.save_own_envelopes, list(latest.values()))
            except StorageError as exc:
                # Not durable, so not sent (they stay unsent for rebroadcasts too): keep the newest
                # of each kind per slot, which bounds the queue, and retry once the disk lets us.
                self._keep_newest_own_envelopes()
                await self._storage_pause("own_envelope", exc)
                continue
            except LedgerError as exc:
                # Not storable at all: never sent, so the node goes quiet rather than risk contradicting itself.
                log.error("own envelopes not saved; not sending them", error=str(exc))
                self._own_pending.clear()
                return
            self._storage_ok("own_envelope")
            for item in batch:  # stop() may have cleared the queue while we were writing
                if self._own_pending and self._own_pending[0] is item:
                    self._own_pending.popleft()
            for envelope, _sets in batch:
                self._own_unsent.discard(envelope)
            if self.overlay is not None and self._running:
                for envelope, _sets in latest.values():
                    self.overlay.broadcast(ScpMessage(envelope))

    def _keep_newest_own_envelopes(self) -> None:
        """Drop the queued own envelopes superseded by a newer one of the same slot and kind (never sent)."""
        kept = set(map(id, _newest_of_each_kind(self._own_pending).values()))
        for item in self._own_pending:
            if id(item) not in kept:
                self._own_unsent.discard(item[0])
        self._own_pending = deque(item for item in self._own_pending if id(item) in kept)

    async def _storage_pause(self, kind: str, error: LedgerError) -> None:
        """A write failed for want of disk: report it, then wait (growing pauses) before the retry."""
        delay = self.storage.failed(kind, str(error), self._clock())
        self.metrics.storage_failed(kind)
        log.error("storage write failed; will retry", kind=kind, error=str(error), retry_in=round(delay, 3))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        # Short steps, so that stop() (which waits for the writers) is never held up by a pause.
        while self._running and loop.time() < deadline:
            await asyncio.sleep(min(0.1, delay))

    def _storage_ok(self, kind: str) -> None:
        began = self.storage.succeeded(kind)
        if began is not None:
            if self.storage.ok:
                self.metrics.storage_recovered()
            log.warning("storage writes resumed", kind=kind, failing_for=round(self._clock() - began, 3))

    def get_quorum_set(self, qset_hash: bytes) -> SCPQuorumSet | None:
        return self._qsets.get(qset_hash)

    # -- driver: values ---------------------------------------------------------

    def validate_value(self, slot_index: int, value: bytes, nomination: bool) -> ValidationLevel:
        try:
            decoded = ConsensusValue.from_xdr(value)
        except XdrError:
            return ValidationLevel.INVALID
        tip = self._tip
        if slot_index <= tip.slot:
            # Decided and written: only our own restored or lingering statements ask (docs/consensus.md).
            return ValidationLevel.MAYBE_VALID
        if slot_index > tip.slot + 1:
            # Unjudgeable before its predecessor is written; the intake never lets such a statement
            # reach the core (it waits in ``pending``), so this only refuses one that slipped through.
            return ValidationLevel.INVALID
        tx_set = self._find_tx_set(decoded.tx_set_hash)
        if tx_set is None:
            # Never a peer's statement: the intake hands one over only with every tx set it names.
            # Our own restored state may name another node's set we did not store (docs/consensus.md).
            return ValidationLevel.MAYBE_VALID
        problem = check_close_time(
            decoded.close_time, tip.close_time, int(self._clock()), self.settings.max_close_time_drift
        ) or self._check_tx_set(tx_set)
        if problem is not None:
            log.debug("value refused", slot=slot_index, reason=problem)
            return ValidationLevel.INVALID
        return ValidationLevel.FULLY_VALID

    def _check_tx_set(self, tx_set: TxSet) -> str | None:
        """check_tx_set against the tip, remembered per set until the tip moves (it is the costly part)."""
        h = tx_set.hash()
        if h in self._tx_set_verdicts:
            return self._tx_set_verdicts[h]
        problem = check_tx_set(tx_set, self._tip.hash, self.settings.tx_set_limits, included_among=self._included_among)
        self._tx_set_verdicts[h] = problem
        return problem

    def _included_among(self, tx_ids: Sequence[bytes]) -> set[bytes]:
        """Which of ``tx_ids`` a ledger already holds, asking the store only about ids not queued.

        A queued transaction is in no ledger up to the tip (the queue refuses included ones and
        drops each as soon as a written ledger carries it), and under load nearly every
        transaction of a candidate set is queued here too.
        """
        queue = self.txqueue
        return self.store.included_among([i for i in tx_ids if i not in queue])

    def combine_candidates(self, slot_index: int, candidates: frozenset[bytes]) -> bytes | None:
        values = [ConsensusValue.from_xdr(v) for v in candidates]
        tx_sets = {v.tx_set_hash: s for v in values if (s := self._find_tx_set(v.tx_set_hash)) is not None}
        composite = combine_candidates(values, tx_sets)
        return composite.to_xdr() if composite is not None else None

    def value_to_str(self, value: bytes) -> str:
        try:
            v = ConsensusValue.from_xdr(value)
        except XdrError:
            return super().value_to_str(value)
        return f"t={v.close_time} txset={v.tx_set_hash.hex()[:8]}"

    # -- driver: timers ---------------------------------------------------------

    def setup_timer(self, slot_index: int, timer_id: TimerId, timeout: float, callback: TimerCallback) -> None:
        assert self._loop is not None
        self.stop_timer(slot_index, timer_id)
        key = (slot_index, timer_id)

        def fire() -> None:
            self._timers.pop(key, None)
            if self._running:
                self.metrics.timer_expiries.labels(timer_id.name.lower()).inc()
                callback()

        self._timers[key] = self._loop.call_later(timeout, fire)

    def stop_timer(self, slot_index: int, timer_id: TimerId) -> None:
        handle = self._timers.pop((slot_index, timer_id), None)
        if handle is not None:
            handle.cancel()

    # -- driver: hooks ------------------------------------------------------------

    def value_externalized(self, slot_index: int, value: bytes) -> None:
        self._externalized[slot_index] = value
        self._last_progress = self._clock()
        assert self._loop is not None
        self._loop.call_soon(self._apply_externalized)

    # -- ledger -------------------------------------------------------------------

    def _apply_externalized(self) -> None:
        """Make sure the writer task runs; it writes every ledger that now follows the tip, in order."""
        if self._running and (self._writer is None or self._writer.done()):
            self._writer = asyncio.create_task(self._write_loop(), name="herder-ledger-writer")

    def _next_write(self, slot: int) -> tuple[ConsensusValue, TxSet, list[SCPEnvelope]] | None:
        """What to write as ledger ``slot``: our own decision, else a checked catch-up entry."""
        value = self._externalized.get(slot)
        if value is not None:
            decoded = ConsensusValue.from_xdr(value)
            tx_set = self._find_tx_set(decoded.tx_set_hash)
            if tx_set is not None:
                proofs = self._externalize_envelopes(slot, value)
                proofs += [e for e in self._restored_proofs(slot, value) if e not in proofs]
                return decoded, tx_set, proofs
            if slot not in self._caught_up:
                self._fetch_tx_set_for_ledger(decoded.tx_set_hash)
        entry = self._caught_up.get(slot)
        if entry is not None:
            return entry.value, entry.tx_set, list(entry.proofs)
        return None

    def _externalize_envelopes(self, slot: int, value: bytes) -> list[SCPEnvelope]:
        return [
            env
            for env in self.scp.get_externalizing_state(slot)
            if isinstance(env.statement.pledges, SCPExternalize) and env.statement.pledges.commit.value == value
        ]

    async def _checkpoint_store(self) -> None:
        try:
            await asyncio.to_thread(self.store.checkpoint)
        except LedgerError as exc:
            log.warning("checkpoint failed", error=str(exc))

    async def _prune_own_envelopes(self, below_slot: int) -> None:
        try:
            await asyncio.to_thread(self.store.prune_own_envelopes, below_slot)
        except LedgerError as exc:
            log.warning("old own envelopes not pruned", below_slot=below_slot, error=str(exc))

    async def _add_proofs(self, slot: int, envelopes: list[SCPEnvelope]) -> None:
        try:
            await asyncio.to_thread(self.store.add_proofs, slot, envelopes)
        except LedgerError as exc:
            log.warning("EXTERNALIZE proofs not kept", slot=slot, error=str(exc))

    def _restored_proofs(self, slot: int, value: bytes) -> list[SCPEnvelope]:
        """Our own EXTERNALIZE, when the slot's decision was restored from disk (the core's state lacks it)."""
        return [
            env
            for env in self.scp.get_latest_messages_send(slot)
            if isinstance(env.statement.pledges, SCPExternalize) and env.statement.pledges.commit.value == value
        ]

    async def _write_loop(self) -> None:
        while self._running:
            slot = self.current_slot
            job = self._next_write(slot)
            if job is None:
                break
            value, tx_set, proofs = job
            try:
                record = await asyncio.to_thread(self.store.append_ledger, LedgerEntry(slot, value), tx_set, proofs)
            except StorageError as exc:
                # Our disk's fault, not the ledger's: keep it and retry (the slot stays undecided on disk,
                # so no new slot starts, no peer is asked for ledgers past it, none is served).
                await self._storage_pause("ledger", exc)
                continue
            except LedgerError as exc:
                log.error("ledger write refused", slot=slot, error=str(exc))
                # Drop what failed so the next source (our decision or another peer's entry) gets a chance.
                if self._caught_up.pop(slot, None) is None:
                    break
                continue
            self._storage_ok("ledger")
            self._ledger_written(record, value, tx_set)
            # EXTERNALIZE envelopes that reached the core while the write ran are proofs too.
            later = [e for e in self._externalize_envelopes(slot, value.to_xdr()) if e not in proofs]
            if later:
                self._spawn(self._add_proofs(slot, later))
        current = self.current_slot
        for old in [s for s in self._externalized if s < current]:
            del self._externalized[old]
        for old in [s for s in self._caught_up if s < current]:
            del self._caught_up[old]

    def _ledger_written(self, record: LedgerRecord, value: ConsensusValue, tx_set: TxSet) -> None:
        slot = record.slot
        self._caught_up.pop(slot, None)
        self._externalized.pop(slot, None)
        self._tip = ChainTip(record.slot, record.hash, record.close_time)
        self._tx_set_verdicts.clear()
        self._tip_value = value.to_xdr()
        self.txqueue.remove_included(tx_set.tx_ids)
        started = self._nominated_at.pop(slot, None)
        elapsed = self._clock() - started if started is not None else None
        self.last_ledger_at = self._clock()
        self.metrics.slot_externalized(slot, elapsed, self.scp.effort(slot))
        self.metrics.tx_included.inc(len(tx_set.txs))
        self.scp.purge_slots(max(0, slot - self.settings.keep_slots))
        self._forget_old_tx_sets(record.previous_hash)
        if self._on_externalized is not None:
            self._on_externalized(ExternalizedSlot(slot, record, len(tx_set.txs), elapsed))
        if slot % 64 == 0:
            self._spawn(self._prune_own_envelopes(slot - self.settings.keep_slots))
        if self._checkpoint is None or self._checkpoint.done():
            # Off the write path (see LedgerStore.checkpoint); one at a time.
            self._checkpoint = asyncio.create_task(self._checkpoint_store(), name="herder-checkpoint")
        if self.catchup.behind(self.current_slot):
            self._maybe_catch_up()
        elif self._just_caught_up:
            # Caught up: ask for the current slot's statements we ignored while behind.
            self._just_caught_up = False
            self._ask_scp_state()
        assert self._loop is not None
        # Off the writer's path: what the core does with them is no concern of the ledger writer.
        self._loop.call_soon(self._release_pending)
        self._schedule_next_slot(slot + 1, started)

    # -- overlay handler -------------------------------------------------------

    def handle_message(self, peer: Peer, message: OverlayMessage) -> Verdict | Awaitable[Verdict] | None:
        """The overlay's handler: judge each authenticated message from ``peer``."""
        if peer.node_id in self._members:
            # Traffic on an authenticated connection with the member itself: alive, even while stuck.
            self.heard_at[peer.node_id] = self._clock()
        if isinstance(message, ScpMessage):
            if self._envelope_log is not None:
                self._envelope_log.append(peer.node_id.ed25519, message.envelope)
            return self._receive_envelope(peer, message.envelope)
        if isinstance(message, GetLedgers):
            return self._serve_ledgers(peer, message)
        if isinstance(message, Ledgers):
            return self._receive_ledgers(peer, message)
        if isinstance(message, TransactionBatch):
            self._receive_transactions(peer, message.payloads)
            return Verdict.IGNORE  # the new ones are relayed in our own batches
        if isinstance(message, Transaction):
            self._receive_transactions(peer, (message.payload,))
            return Verdict.IGNORE
        if isinstance(message, GetScpState):
            self._send_scp_state(peer, message.slot_index)
        elif isinstance(message, GetQuorumSet):
            qset = self._qsets.get(message.item_hash)
            if qset is not None:
                peer.send(QuorumSetMessage(qset))
        elif isinstance(message, GetTxSet):
            tx_set = self._find_tx_set(message.item_hash)
            if tx_set is not None:
                peer.send(TxSetMessage(message.item_hash, tx_set.to_xdr()))
        return None

    def submit_transaction(self, tx: bytes, *, source: str = "api") -> AddResult:
        return self.submit_transactions([tx], source=source)[0]

    def submit_transactions(
        self, txs: Sequence[bytes], *, source: str = "api", origin: NodeID | None = None
    ) -> list[AddResult]:
        """Queue transactions (from our API, or from peer ``origin``) and flood the ones new to us."""
        results = self.txqueue.add_many(txs)
        queued = [tx for tx, r in zip(txs, results, strict=True) if r.outcome is Outcome.QUEUED]
        refused = Counter(r.refusal for r in results if r.refusal is not None)
        self._count_transactions(source, len(results), len(queued), refused)
        self._to_flood(origin, queued)
        return results

    async def accept_transactions(self, txs: Sequence[bytes]) -> list[AddResult]:
        """Queue a client's transactions; the queued ones are durable before this returns.

        The caller acknowledges "queued" only after this, so a crash cannot
        lose an acknowledged transaction: it is queued again on start until a
        ledger carries it. Raises ``LedgerError`` if the store cannot keep them.
        """
        results = self.submit_transactions(txs)
        queued = [tx for tx, r in zip(txs, results, strict=True) if r.outcome is Outcome.QUEUED]
        if queued:
            await asyncio.to_thread(self.store.save_pending_txs, queued)
        return results

    def _receive_transactions(self, peer: Peer, txs: Sequence[bytes]) -> None:
        """A batch from a peer: queue the new ones and relay them; duplicates cost a hash each."""
        summary = self.txqueue.add_batch(txs, origin=peer.node_id)
        self._count_transactions("peer", len(txs), len(summary.queued), summary.refused)
        self._to_flood(peer.node_id, summary.queued)

    def _to_flood(self, origin: NodeID | None, txs: list[bytes]) -> None:
        if not txs or self.overlay is None:
            return
        self._tx_out.setdefault(origin, []).extend(txs)
        if self._tx_flush is None and self._loop is not None:
            self._tx_flush = self._loop.call_later(self.settings.tx_flood_delay, self._flood_transactions)

    def _flood_transactions(self) -> None:
        """Send the gathered new transactions to every peer but the one each came from, in batches.

        Each origin's transactions are encoded once; a peer's messages join the groups meant for it.
        """
        self._tx_flush = None
        pending, self._tx_out = self._tx_out, {}
        overlay = self.overlay
        if overlay is None or not self._running:
            return
        # Half a frame of transactions per message leaves room for the per-transaction framing.
        budget = max(1 << 16, overlay.config.max_message_size // 2)
        groups = {origin: _encode_groups(txs, budget) for origin, txs in pending.items()}
        shared: list[bytes] | None = None
        for peer in overlay.peers:
            if peer.node_id in groups:
                encoded = _join_groups([g for o, gs in groups.items() if o != peer.node_id for g in gs], budget)
            else:
                if shared is None:
                    shared = _join_groups([g for gs in groups.values() for g in gs], budget)
                encoded = shared
            for message in encoded:
                if not peer.send_encoded(message):
                    break

    def _count_transactions(self, source: str, received: int, queued: int, refused: Mapping[Refusal, int]) -> None:
        """Count outcomes per batch: a Prometheus increment costs more than queueing a transaction."""
        m = self.metrics
        m.tx_received.labels(source).inc(received)
        refusals = sum(refused.values())
        if queued:
            m.tx_queued.inc(queued)
        if received - queued - refusals:
            m.tx_known.inc(received - queued - refusals)
        for refusal, n in refused.items():
            m.tx_refused.labels(refusal.value).inc(n)

    def _send_scp_state(self, peer: Peer, from_slot: int) -> None:
        for slot in self.scp.known_slots():
            if slot < from_slot:
                continue
            for env in self.scp.get_externalizing_state(slot) or self.scp.get_latest_messages_send(slot):
                if env not in self._own_unsent:
                    peer.send(ScpMessage(env))

    def _receive_envelope(self, peer: Peer, envelope: SCPEnvelope) -> Verdict:
        """Judge a peer's envelope, cheapest checks first (DESIGN rule 2, docs/security.md).

        Untrusted signer, then slot range, then the signature (once per
        envelope, remembered), then equivocation; a future slot's envelope
        waits in ``pending``, the current slot's goes to the core once what it
        references is here.
        """
        statement = envelope.statement
        node, slot = statement.node_id, statement.slot_index
        current = self.current_slot
        m = self.metrics
        m.envelopes_received.inc()
        if node == self.node_id:
            m.envelopes_rejected.labels("own_envelope").inc()
            return Verdict.IGNORE
        if node not in self.trust:
            m.envelopes_rejected.labels("untrusted").inc()
            return Verdict.IGNORE
        late_proof = isinstance(statement.pledges, SCPExternalize) and slot + self.settings.keep_slots >= current
        if slot + self.settings.max_slots_behind < current and not late_proof:
            m.envelopes_rejected.labels("slot_out_of_range").inc()
            return Verdict.IGNORE
        encoded = envelope.to_xdr()
        if not self._signature_ok(envelope, encoded):
            m.envelopes_rejected.labels("bad_signature").inc()
            log.warning("bad envelope signature", peer=str(peer.node_id), node=str(node), slot=slot)
            return Verdict.REJECT
        self._note_network_slot(node, slot)
        if slot > current + self.settings.max_slots_ahead:
            # Far ahead of us: too early for the core, but (signed) it says we may be behind.
            m.envelopes_rejected.labels("slot_out_of_range").inc()
            return Verdict.IGNORE
        self._check_equivocation(envelope)
        if slot <= self._tip.slot:
            # Decided and written: never fed to the core again (after a restart the core has no
            # state for it and could answer with statements older than what we sent before).
            if late_proof:
                self._late_proof(envelope)
            return Verdict.IGNORE
        if slot > current:
            return self._hold(peer, envelope, len(encoded))
        return self._judge(peer.node_id, envelope)

    def _signature_ok(self, envelope: SCPEnvelope, encoded: bytes) -> bool:
        """Verify the signature, at most once per envelope (good or bad) while it is remembered."""
        m = self.metrics

        def verify() -> bool:
            m.signature_verifications.inc()
            ok = verify_envelope(self.net_id, envelope)
            if not ok:
                m.signature_failures.inc()
            return ok

        checked = self.signatures.verifications
        ok = self.signatures.check(encoded, verify)
        if self.signatures.verifications == checked:
            m.signature_cache_hits.inc()
        return ok

    def _check_equivocation(self, envelope: SCPEnvelope) -> None:
        found = self.equivocations.observe(envelope)
        if found is None:
            return
        self.metrics.equivocations.labels(str(found.node)).inc()
        log.warning(
            "equivocation",
            node=str(found.node),
            slot=found.slot,
            first=found.first.statement.type.name,
            second=found.second.statement.type.name,
        )

    def _hold(self, peer: Peer, envelope: SCPEnvelope, size: int) -> Verdict:
        """A future slot's envelope waits for its slot (scpd.nodecore.pending); relayed once the core took it."""
        outcome = self.pending.add(envelope, size, peer.node_id)
        if outcome is PendingOutcome.NODE_FULL or outcome is PendingOutcome.FULL:
            self.metrics.envelopes_rejected.labels(f"pending_{outcome.value}").inc()
        self._pending_gauges()
        return Verdict.IGNORE

    def _release_pending(self) -> None:
        """The current slot moved: its waiting envelopes go on (fetch, then core); older state is dropped."""
        if not self._running:
            return
        current = self.current_slot
        oldest_kept = max(0, current - self.settings.keep_slots)
        self.equivocations.forget_below(oldest_kept)
        for old in [s for s in self._late_proofs if s < oldest_kept]:
            del self._late_proofs[old]
        for held in self.pending.take(current):
            self._judged(held.origin, held.envelope, self._judge(held.origin, held.envelope))
        self._pending_gauges()

    def _pending_gauges(self) -> None:
        self.metrics.envelopes_pending.set(len(self.pending))
        self.metrics.envelopes_pending_bytes.set(self.pending.total_bytes)

    def _judge(self, origin: NodeID, envelope: SCPEnvelope) -> Verdict:
        """A current-slot envelope: to the core now, or once its quorum set and tx sets are fetched."""
        missing_qset, missing_tx_sets = self._missing(envelope.statement)
        if missing_qset is None and not missing_tx_sets:
            return self._to_core(envelope)
        if envelope in self._fetching:
            return Verdict.IGNORE  # this very envelope already waits: a copy costs nothing more
        if len(self._fetching) >= self.settings.max_waiting_envelopes:
            self.metrics.envelopes_rejected.labels("too_many_waiting").inc()
            return Verdict.IGNORE
        self._fetching.add(envelope)  # counted now, not once the task runs
        self._spawn(self._fetch_then_receive(origin, envelope, missing_qset, missing_tx_sets))
        return Verdict.IGNORE

    def _missing(self, statement: SCPStatement) -> tuple[bytes | None, list[bytes]]:
        """The quorum set (hash) and tx sets (hashes) ``statement`` names that we do not have."""
        qset_hash = _qset_hash_of(statement)
        missing_qset = None if qset_hash in self._qsets else qset_hash
        return missing_qset, [h for h in self._tx_set_hashes_of(statement) if self._find_tx_set(h) is None]

    def _judged(self, origin: NodeID, envelope: SCPEnvelope, verdict: Verdict) -> None:
        """Act on the verdict on an envelope judged after its arrival (released or fetched)."""
        if self.overlay is None:
            return
        peer = self.overlay.peer(origin)
        if verdict is Verdict.ACCEPT:
            self.overlay.relay(ScpMessage(envelope), origin=peer)
        elif verdict is Verdict.REJECT and peer is not None:
            peer.score("invalid SCP envelope", 25)

    # -- catch-up ---------------------------------------------------------------

    def _note_network_slot(self, node: NodeID, slot: int) -> None:
        """A trusted, signed statement for ``slot``: the network may be ahead (v-blocking claims count)."""
        before = self.catchup.highest_seen
        self.catchup.note_claim(node, slot)
        if self.catchup.highest_seen > before:
            self._maybe_catch_up()

    def _maybe_catch_up(self) -> None:
        """Send the next catch-up request if we are behind and one is due (the Catchup object bounds it)."""
        overlay = self.overlay
        if overlay is None or not self._running:
            return
        if not self.storage.ok:
            return  # nothing fetched could be written; ask again once writes go through
        # Slots already waiting to be written count as had.
        have = self._pending_tip().slot + 1
        now = self._clock()
        if self.catchup.highest_seen == have + 1 and now - self._last_progress < self.settings.rebroadcast_interval:
            return  # one slot behind is the normal race at a slot's end: let consensus finish it first
        peers = {p.node_id: p for p in overlay.peers}
        # Ask the nodes we trust when any is connected: a stranger's answer is checked, but costs a timeout.
        trusted = [n for n in peers if n in self.trust]
        request = self.catchup.next_request(trusted or peers, have, now)
        if request is not None:
            node, message = request
            log.info("catching up", from_slot=message.from_slot, count=message.count, peer=str(node))
            peers[node].send(message)

    def _pending_tip(self) -> ChainTip:
        """The chain as it will be once every ledger the writer can write is written.

        Both the catch-up request (which slot to ask from) and the check of its answer use this
        view, so a decided slot we have not written yet (its write failing) never makes honest
        answers look like they "do not follow our tip". A decided slot whose tx set we lack is
        not in it: catch-up then asks for that very slot, whose served entry brings the set.
        """
        tip = self._tip
        while True:
            slot = tip.slot + 1
            decided = self._externalized.get(slot)
            ours = None if decided is None else ConsensusValue.from_xdr(decided)
            entry = self._caught_up.get(slot)
            if ours is not None and self._find_tx_set(ours.tx_set_hash) is not None:
                value = ours
            elif entry is not None:
                value = entry.value
            else:
                return tip
            tip = ChainTip(slot, ledger_hash(tip.hash, LedgerEntry(slot, value)), value.close_time)

    def _ask_scp_state(self) -> None:
        if self.overlay is not None:
            for peer in self.overlay.peers:
                peer.send(GetScpState(max(self.current_slot - 1, 0)))

    async def _serve_ledgers(self, peer: Peer, request: GetLedgers) -> Verdict:
        """Answer GET_LEDGERS from the store (worker thread), bounded in count, rate and frame size."""
        if not self.catchup.may_serve(peer.node_id, self._clock()):
            return Verdict.IGNORE
        count = max(0, min(request.count, self.settings.catchup.batch_size))
        tip, entries = await asyncio.to_thread(self._read_entries, request.from_slot, count)
        peer.send(self.catchup.build_answer(tip, entries))
        return Verdict.IGNORE

    def _read_entries(self, from_slot: int, count: int) -> tuple[int, list[CatchupEntry]]:
        tip = self.store.tip().slot
        entries: list[CatchupEntry] = []
        for slot in range(from_slot, min(from_slot + count, tip + 1)):
            record = self.store.get(slot)
            if record is None:
                break
            entries.append(CatchupEntry(slot, record.value, record.tx_set, tuple(self.store.proofs(slot))))
        return tip, entries

    def _receive_ledgers(self, peer: Peer, message: Ledgers) -> Verdict:
        """Check each served entry against the trust rule and hand the good ones to the writer."""
        if not self.catchup.expects(peer.node_id):
            return Verdict.IGNORE
        if peer.node_id in self.trust:
            self.catchup.note_claim(peer.node_id, message.tip_slot + 1)
        # Entries already queued for writing extend our view of the chain (the view we asked from).
        tip = self._pending_tip()
        accepted = 0
        for entry in message.entries:
            if entry.slot <= tip.slot:
                continue
            problem = check_entry(entry, tip, self.scp.quorum_set, self.net_id)
            if problem is not None:
                self.catchup.failed(peer.node_id)
                self.catchup.entries_refused += 1
                log.warning("catch-up entry refused", peer=str(peer.node_id), slot=entry.slot, reason=problem)
                if "v-blocking" in problem:
                    return Verdict.IGNORE  # too few proofs is not a lie; ask someone else
                return Verdict.REJECT
            self._caught_up[entry.slot] = entry
            tip = ChainTip(
                entry.slot, ledger_hash(tip.hash, LedgerEntry(entry.slot, entry.value)), entry.value.close_time
            )
            accepted += 1
        self.catchup.answered(peer.node_id, message)
        if accepted:
            self.catchup.entries_accepted += accepted
            self._just_caught_up = True
            self._apply_externalized()
        else:
            self._maybe_catch_up()
        return Verdict.IGNORE

    def _late_proof(self, envelope: SCPEnvelope) -> None:
        """A trusted, signed EXTERNALIZE for a ledger we already wrote: keep it as one more proof.

        At most one per node and ``MAX_PROOFS`` per slot are ever attempted (the store keeps
        one per node too, and refuses one of another value), so a flood of them costs nothing.
        """
        slot, node = envelope.statement.slot_index, envelope.statement.node_id
        kept = self._late_proofs.setdefault(slot, set())
        if node in kept or len(kept) >= MAX_PROOFS:
            return
        kept.add(node)
        self._spawn(self._add_proofs(slot, [envelope]))

    def _to_core(self, envelope: SCPEnvelope) -> Verdict:
        node = envelope.statement.node_id
        before = self.scp.get_latest_message(node)
        state = self.scp.receive_envelope(envelope)
        if node in self._members and self.scp.get_latest_message(node) is not before:
            # Its statements advanced: alive. A relayed copy of an old statement changes nothing here,
            # so a dead member is not kept "alive" by others re-flooding its last words.
            self.heard_at[node] = self._clock()
        if state is EnvelopeState.VALID:
            self.metrics.envelopes_relayed.inc()
            statement = envelope.statement
            qset = self._qsets.get(_qset_hash_of(statement))
            if qset is not None and self.trust.note(statement.node_id, qset):
                self.metrics.trusted_nodes.set(len(self.trust))
            return Verdict.ACCEPT
        self.metrics.envelopes_rejected.labels("invalid").inc()
        return Verdict.REJECT

    async def _fetch_then_receive(
        self, origin: NodeID, envelope: SCPEnvelope, qset_hash: bytes | None, tx_set_hashes: list[bytes]
    ) -> None:
        """Fetch what a current-slot envelope names, from its sender (else its signer), then judge it."""
        assert self.overlay is not None
        try:
            peer = self.overlay.peer(origin) or self.overlay.peer(envelope.statement.node_id)
            if peer is None or not await self._fetch_for(peer, qset_hash, tx_set_hashes):
                self.metrics.envelopes_rejected.labels("fetch_failed").inc()
                return
        finally:
            self._fetching.discard(envelope)
        if not self._running or envelope.statement.slot_index != self.current_slot:
            return  # decided meanwhile: the core never sees an old slot again
        missing_qset, missing_tx_sets = self._missing(envelope.statement)
        if missing_qset is not None or missing_tx_sets:
            self.metrics.envelopes_rejected.labels("fetch_failed").inc()
            return
        self._judged(origin, envelope, self._to_core(envelope))

    async def _fetch_for(self, peer: Peer, qset_hash: bytes | None, tx_set_hashes: list[bytes]) -> bool:
        assert self.overlay is not None
        timeout = self.settings.fetch_timeout
        if qset_hash is not None and qset_hash not in self._qsets:
            qset = await self.overlay.fetch_quorum_set(qset_hash, peer, timeout)
            if qset is None:
                return False
            self._learn_quorum_set(qset)
        for h in tx_set_hashes:
            if self._find_tx_set(h) is None:
                payload = await self.overlay.fetch_tx_set(h, peer, timeout, _hash_matches(h), ask_if_pending=False)
                if payload is None or not self._learn_tx_set_payload(h, payload):
                    return False
        return True

    def _fetch_tx_set_for_ledger(self, tx_set_hash: bytes) -> None:
        """An externalized value whose tx set we lack: ask every peer until one answers."""
        overlay = self.overlay
        if overlay is None:
            return

        async def fetch() -> None:
            for peer in list(overlay.peers):
                payload = await overlay.fetch_tx_set(
                    tx_set_hash, peer, self.settings.fetch_timeout, _hash_matches(tx_set_hash)
                )
                if payload is not None and self._learn_tx_set_payload(tx_set_hash, payload):
                    self._apply_externalized()
                    return

        self._spawn(fetch())

    # -- quorum sets and tx sets -----------------------------------------------------

    def _learn_quorum_set(self, qset: SCPQuorumSet) -> None:
        h = quorum_set_hash(qset)
        if h not in self._qsets:
            self._qsets[h] = qset
            try:
                self.store.save_quorum_set(qset)
            except StorageError as exc:
                # Only saves asking the network again after a restart; never the sender's fault.
                log.warning("quorum set not saved", error=str(exc))

    def _learn_tx_set_payload(self, tx_set_hash: bytes, payload: bytes) -> bool:
        if tx_set_hash in self._tx_sets:
            return True
        try:
            tx_set = TxSet.from_xdr_hashed(payload)
        except XdrError:
            return False
        if tx_set.hash() != tx_set_hash:
            return False
        self._remember_tx_set(tx_set)
        return True

    def _remember_tx_set(self, tx_set: TxSet) -> None:
        self._tx_sets[tx_set.hash()] = tx_set

    def _remember_tx_sets_of(self, envelope: SCPEnvelope) -> None:
        for h in self._tx_set_hashes_of(envelope.statement):
            tx_set = self.store.get_tx_set(h)
            if tx_set is not None:
                self._remember_tx_set(tx_set)

    def _find_tx_set(self, tx_set_hash: bytes) -> TxSet | None:
        found = self._tx_sets.get(tx_set_hash)
        if found is None:
            found = self.store.get_tx_set(tx_set_hash)
            if found is not None:
                self._tx_sets[tx_set_hash] = found
        return found

    def _tx_sets_of(self, envelope: SCPEnvelope) -> list[TxSet]:
        """The tx sets to store with an own envelope: those we proposed ourselves that it names.

        Another node's set is stored by that node with its own envelope and is held by every node
        that voted for it, so after a restart it can be fetched again; ours may exist nowhere else.
        Writing every referenced set (megabytes each under load) before each envelope goes out
        would put all of them on the path of every statement.
        """
        return [
            s
            for h in self._tx_set_hashes_of(envelope.statement)
            if h in self._proposed and (s := self._tx_sets.get(h)) is not None
        ]

    def _tx_set_hashes_of(self, statement: SCPStatement) -> list[bytes]:
        hashes: list[bytes] = []
        for raw in _values_of(statement):
            try:
                hashes.append(ConsensusValue.from_xdr(raw).tx_set_hash)
            except XdrError:
                continue  # the core's validation rejects the statement
        return list(dict.fromkeys(hashes))

    def _forget_old_tx_sets(self, decided_on: bytes) -> None:
        """Drop the candidate sets of the slot just written (built on ``decided_on``), and bound the rest.

        Under load a set is megabytes; the store still has the one that was decided (a ledger) and
        ours (saved with our envelopes) for peers that ask late.
        """
        for h in [h for h, s in self._tx_sets.items() if s.previous_ledger_hash == decided_on]:
            del self._tx_sets[h]
            self._proposed.discard(h)
        limit = 4 * self.settings.keep_slots + 64
        while len(self._tx_sets) > limit:
            h, _ = self._tx_sets.popitem(last=False)
            self._proposed.discard(h)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _newest_of_each_kind(
    items: Iterable[tuple[SCPEnvelope, list[TxSet]]],
) -> dict[tuple[int, bool], tuple[SCPEnvelope, list[TxSet]]]:
    """The last queued own envelope (with its tx sets) per slot and kind (nomination or ballot)."""
    latest: dict[tuple[int, bool], tuple[SCPEnvelope, list[TxSet]]] = {}
    for item in items:
        statement = item[0].statement
        latest[(statement.slot_index, isinstance(statement.pledges, SCPNomination))] = item
    return latest


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


def _values_of(statement: SCPStatement) -> list[bytes]:
    p = statement.pledges
    if isinstance(p, SCPNomination):
        return [*p.votes, *p.accepted]
    if isinstance(p, SCPPrepare):
        return [b.value for b in (p.ballot, p.prepared, p.prepared_prime) if b is not None]
    if isinstance(p, SCPConfirm):
        return [p.ballot.value]
    return [p.commit.value]


def _qset_hash_of(statement: SCPStatement) -> bytes:
    p = statement.pledges
    if isinstance(p, SCPExternalize):
        return p.commit_quorum_set_hash
    return p.quorum_set_hash


def _hash_matches(tx_set_hash: bytes) -> Callable[[bytes], bool]:
    """The overlay's check of a TX_SET answer: its payload hashes to what we asked for.

    Hashing the bytes is enough: strict decoding admits one encoding per set, so a payload
    that decodes at all decodes to the set with this hash (the herder decodes it once, after).
    """

    def check(payload: bytes) -> bool:
        return hashlib.sha256(payload).digest() == tx_set_hash

    return check
