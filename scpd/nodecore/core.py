"""The node core: one node's rules around the consensus core, as events in and actions out.

Theory of operation
-------------------
``NodeCore`` is the application side of the SCP ``Driver`` for one node,
without any I/O: the shell (the asyncio daemon, or the simulator on its
virtual clock) feeds it events (``scpd.nodecore.events``) and executes the
actions it returns (``scpd.nodecore.actions``). Time comes in with each
event; the core never reads a clock, sleeps, touches a socket or a file.
What it reads it reads through a ``LedgerView``; what it notices it tells an
``Observer``.

The work is split by job, one module each, all sharing this object:

* ``intake``: the order of the checks on a peer's envelope (rule 2 of docs/architecture.md),
  future slots waiting, the hand-over to the consensus core;
* ``fetches``: what a current-slot envelope names and we lack, fetched from
  its sender before the consensus core judges it; tx sets a decided ledger needs;
* ``known_sets``: the quorum sets and tx sets we hold;
* ``outbox``: our own envelopes, stored before they are sent (rule 3 of docs/architecture.md);
* ``ledger_writer``: ledgers written strictly in slot order, retried while
  the disk fails, late EXTERNALIZE proofs;
* ``cadence``: when each slot is nominated, and the tick that keeps a stuck
  slot moving;
* ``catchup_client``: asking for ledgers when the network is ahead, serving them;
* ``txflood``: the transaction queue's intake and batched flooding.

Dispatch is two tables: event type to handler, and (for ``MessageReceived``)
message type to handler. The consensus core is not re-entrant: nothing
called from inside it (the Driver hooks) calls back into it; follow-up work
is deferred (``defer``) and runs before ``handle`` returns.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from scpd.base.keys import Keypair, sign_statement
from scpd.base.quorum import all_validators
from scpd.base.types import NodeID, SCPEnvelope, SCPQuorumSet, SCPStatement
from scpd.errors import XdrError
from scpd.nodecore import events as ev
from scpd.nodecore.actions import Action, ArmTimer, CancelTimer, Send, Step, TimerKey, TimerKind, Verdict
from scpd.nodecore.cadence import Cadence
from scpd.nodecore.catchup import Catchup, GetLedgers, Ledgers
from scpd.nodecore.catchup_client import CatchupClient
from scpd.nodecore.equivocation import EquivocationDetector
from scpd.nodecore.fetches import Fetches
from scpd.nodecore.intake import Intake
from scpd.nodecore.known_sets import KnownSets
from scpd.nodecore.ledger_writer import LedgerWriter
from scpd.nodecore.messages import (
    GetQuorumSet,
    GetScpState,
    GetTxSet,
    Neighbors,
    QuorumSetMessage,
    ScpMessage,
    Transaction,
    TransactionBatch,
    TxSetMessage,
)
from scpd.nodecore.observer import LedgerView, Observer
from scpd.nodecore.outbox import Outbox
from scpd.nodecore.pending import PendingEnvelopes
from scpd.nodecore.settings import CoreSettings
from scpd.nodecore.sigcache import SignatureCache
from scpd.nodecore.storage import StorageHealth
from scpd.nodecore.trust import TrustedQuorum
from scpd.nodecore.txflood import TxFlood
from scpd.nodecore.txqueue import TxQueue
from scpd.nodecore.values import ChainTip, check_close_time, combine_candidates, decode_value
from scpd.scp.driver import Driver, TimerCallback, TimerId, ValidationLevel
from scpd.scp.scp import SCP

__all__ = ["NodeCore"]

_SCP_TIMERS = {TimerId.NOMINATION: TimerKind.NOMINATION, TimerId.BALLOT: TimerKind.BALLOT}
_RETRY_TIMERS = {"ledger": TimerKind.LEDGER_RETRY, "own_envelope": TimerKind.OWN_ENVELOPE_RETRY}


class NodeCore(Driver):
    """One node's intake, driver, cadence, own-envelope outbox, ledger order, catch-up and tx flooding."""

    def __init__(
        self,
        keypair: Keypair,
        net_id: bytes,
        quorum_set: SCPQuorumSet,
        view: LedgerView,
        settings: CoreSettings,
        *,
        is_validator: bool = True,
        observer: Observer | None = None,
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
        self.view = view
        self.settings = settings
        self.is_validator = is_validator
        self.observer = observer if observer is not None else Observer()
        self.scp = SCP(self, self.node_id, is_validator, quorum_set)
        # When each validator of our quorum set last showed it is alive (its statements advanced in
        # the core, or it spoke to us directly), for quorum health.
        self.heard_at: dict[NodeID, float] = {}
        self.members = frozenset(all_validators(quorum_set))
        # Time of the last ledger written by this node (None before the first).
        self.last_ledger_at: float | None = None
        self.tip: ChainTip = view.tip()
        last = view.latest()
        # The previous slot's value feeds leader selection (draft 3.3).
        self.tip_value = last.value.to_xdr() if last is not None else b""
        self.txqueue = TxQueue(settings.queue_limits, view.is_included, view.included_among)
        self.trust = TrustedQuorum(self.node_id, quorum_set, settings.max_trusted_nodes)
        self.pending = PendingEnvelopes(settings.pending_limits)
        self.signatures = SignatureCache(settings.signature_cache)
        self.equivocations = EquivocationDetector()
        self.catchup = Catchup(settings.catchup, quorum_set)
        # Failed ledger / own-envelope writes are retried; meanwhile the node reports storage trouble.
        self.storage = StorageHealth()
        # Connected peers, in the order they came.
        self.peers: dict[NodeID, None] = {}
        self.now = 0.0
        self.running = False
        self.sets = KnownSets(self, quorum_set)
        self.intake = Intake(self)
        self.fetches = Fetches(self)
        self.outbox = Outbox(self)
        self.writer = LedgerWriter(self)
        self.cadence = Cadence(self)
        self.catching = CatchupClient(self)
        self.txflood = TxFlood(self)
        self._scp_timers: dict[TimerKey, TimerCallback] = {}
        self._out: list[Action] = []
        self._deferred: deque[Callable[[], None]] = deque()
        self.observer.trusted_nodes_changed(len(self.trust))

    # -- the shell's entry points ------------------------------------------------

    def handle(self, event: ev.Event) -> Step:
        """Apply one event; returns the actions to carry out, in order (and a message's verdict)."""
        self.now = event.now
        step = Step()
        self._out = step.actions
        _EVENTS[type(event)](self, event, step)
        while self._deferred:
            self._deferred.popleft()()
        self._out = []
        return step

    @property
    def current_slot(self) -> int:
        """The slot being decided: one past the last ledger."""
        return self.tip.slot + 1

    def emit(self, action: Action) -> None:
        """Add an action to the current step's list."""
        self._out.append(action)

    def defer(self, work: Callable[[], None]) -> None:
        """Run ``work`` once the current handler (and any consensus-core call in it) is done."""
        self._deferred.append(work)

    def storage_failed(self, kind: str, error: str) -> None:
        """A write of ``kind`` failed for want of disk: report it, retry after a growing pause."""
        delay = self.storage.failed(kind, error, self.now)
        self.observer.storage_failed(kind, error, delay)
        self.emit(ArmTimer(TimerKey(_RETRY_TIMERS[kind]), delay))

    def storage_ok(self, kind: str) -> None:
        began = self.storage.succeeded(kind)
        if began is not None:
            self.observer.storage_recovered(kind, self.now - began, self.storage.ok)

    def is_connected(self, peer: NodeID) -> bool:
        return peer in self.peers

    # -- event handlers -------------------------------------------------------------

    def _started(self, event: ev.Started, step: Step) -> None:
        self.running = True
        self.writer.restore()
        # Transactions acknowledged before a crash or restart are queued again.
        self.txqueue.add_many(self.view.load_pending_txs())
        self.cadence.start()
        self.txflood.arm()

    def _message(self, event: ev.MessageReceived, step: Step) -> None:
        if event.peer in self.members:
            # Traffic on an authenticated connection with the member itself: alive, even while stuck.
            self.heard_at[event.peer] = self.now
        verdict = _MESSAGES.get(type(event.message), _no_answer)(self, event)
        step.verdict = Verdict.IGNORE if verdict is None else verdict

    def _quorum_set_answered(self, event: ev.QuorumSetAnswered, step: Step) -> None:
        self.fetches.quorum_set_answered(event.fetch_id, event.quorum_set)

    def _tx_set_answered(self, event: ev.TxSetAnswered, step: Step) -> None:
        self.fetches.tx_set_answered(event.fetch_id, event.payload)

    def _fetch_failed(self, event: ev.FetchFailed, step: Step) -> None:
        self.fetches.failed(event.fetch_id)

    def _persisted(self, event: ev.OwnEnvelopesPersisted, step: Step) -> None:
        self.outbox.persisted(event.batch_id)

    def _not_persisted(self, event: ev.OwnEnvelopesNotPersisted, step: Step) -> None:
        self.outbox.not_persisted(event.batch_id, event.error, event.retry)

    def _written(self, event: ev.LedgerWritten, step: Step) -> None:
        self.writer.written(event.slot, event.ledger_hash)

    def _not_written(self, event: ev.LedgerNotWritten, step: Step) -> None:
        self.writer.not_written(event.slot, event.error, event.retry)

    def _timer(self, event: ev.TimerFired, step: Step) -> None:
        key = event.key
        callback = self._scp_timers.pop(key, None)
        if callback is not None:
            self.observer.timer_expired(key.kind.value)
            callback()
        elif self.running:
            _TIMERS.get(key.kind, _no_timer)(self)

    def _submitted(self, event: ev.TransactionsSubmitted, step: Step) -> None:
        step.results = self.txflood.submit(event.txs, event.source, None)

    def _peer_connected(self, event: ev.PeerConnected, step: Step) -> None:
        self.peers.setdefault(event.peer, None)

    def _peer_gone(self, event: ev.PeerGone, step: Step) -> None:
        self.peers.pop(event.peer, None)
        self.txflood.peer_gone(event.peer)

    # -- message handlers (MessageReceived) ----------------------------------------------

    def _envelope(self, event: ev.MessageReceived) -> Verdict:
        assert isinstance(event.message, ScpMessage)
        return self.intake.receive(event.peer, event.message)

    def _transactions(self, event: ev.MessageReceived) -> Verdict:
        message = event.message
        if isinstance(message, TransactionBatch):
            self.txflood.from_peer(event.peer, message.payloads)
        elif isinstance(message, Transaction):
            self.txflood.from_peer(event.peer, (message.payload,))
        return Verdict.IGNORE  # the new ones are relayed in our own batches

    def _neighbors(self, event: ev.MessageReceived) -> None:
        assert isinstance(event.message, Neighbors)
        self.txflood.neighbors_heard(event.peer, event.message.nodes)

    def _get_scp_state(self, event: ev.MessageReceived) -> None:
        assert isinstance(event.message, GetScpState)
        self.outbox.send_state(event.peer, event.message.slot_index)

    def _get_quorum_set(self, event: ev.MessageReceived) -> None:
        assert isinstance(event.message, GetQuorumSet)
        qset = self.sets.quorum_set(event.message.item_hash)
        if qset is not None:
            self.emit(Send(event.peer, QuorumSetMessage(qset)))

    def _get_tx_set(self, event: ev.MessageReceived) -> None:
        assert isinstance(event.message, GetTxSet)
        tx_set = self.sets.find_tx_set(event.message.item_hash)
        if tx_set is not None:
            self.emit(Send(event.peer, TxSetMessage(event.message.item_hash, tx_set.to_xdr())))

    def _get_ledgers(self, event: ev.MessageReceived) -> None:
        assert isinstance(event.message, GetLedgers)
        self.catching.serve(event.peer, event.message)

    def _ledgers(self, event: ev.MessageReceived) -> Verdict:
        assert isinstance(event.message, Ledgers)
        return self.catching.received(event.peer, event.message)

    # -- Driver: envelopes, quorum sets ------------------------------------------------

    def sign_envelope(self, statement: SCPStatement) -> SCPEnvelope:
        return sign_statement(self.keypair, self.net_id, statement)

    def emit_envelope(self, envelope: SCPEnvelope) -> None:
        """Queue the envelope: it is sent only once it is durably stored (rule 3 of docs/architecture.md)."""
        self.outbox.add(envelope)

    def get_quorum_set(self, qset_hash: bytes) -> SCPQuorumSet | None:
        return self.sets.quorum_set(qset_hash)

    # -- Driver: values ---------------------------------------------------------------

    def validate_value(self, slot_index: int, value: bytes, nomination: bool) -> ValidationLevel:
        try:
            decoded = decode_value(value)
        except XdrError:
            return ValidationLevel.INVALID
        tip = self.tip
        if slot_index <= tip.slot:
            # Decided and written: only our own restored or lingering statements ask (docs/consensus.md).
            return ValidationLevel.MAYBE_VALID
        if slot_index > tip.slot + 1:
            # Unjudgeable before its predecessor is written; the intake never lets such a statement
            # reach the consensus core (it waits in ``pending``), so this only refuses one that slipped through.
            return ValidationLevel.INVALID
        tx_set = self.sets.find_tx_set(decoded.tx_set_hash)
        if tx_set is None:
            # Never a peer's statement: the intake hands one over only with every tx set it names.
            # Our own restored state may name another node's set we did not store (docs/consensus.md).
            return ValidationLevel.MAYBE_VALID
        drift = int(self.settings.max_close_time_drift)
        problem = check_close_time(decoded.close_time, tip.close_time, int(self.now), drift)
        problem = problem or self.sets.check_tx_set(tx_set)
        if problem is not None:
            self.observer.value_refused(slot_index, problem)
            return ValidationLevel.INVALID
        return ValidationLevel.FULLY_VALID

    def combine_candidates(self, slot_index: int, candidates: frozenset[bytes]) -> bytes | None:
        values = [decode_value(v) for v in candidates]
        tx_sets = {v.tx_set_hash: s for v in values if (s := self.sets.find_tx_set(v.tx_set_hash)) is not None}
        composite = combine_candidates(values, tx_sets)
        return composite.to_xdr() if composite is not None else None

    def value_to_str(self, value: bytes) -> str:
        try:
            v = decode_value(value)
        except XdrError:
            return super().value_to_str(value)
        return f"t={v.close_time} txset={v.tx_set_hash.hex()[:8]}"

    # -- Driver: timers and hooks --------------------------------------------------------

    def setup_timer(self, slot_index: int, timer_id: TimerId, timeout: float, callback: TimerCallback) -> None:
        key = TimerKey(_SCP_TIMERS[timer_id], slot_index)
        self._scp_timers[key] = callback
        self.emit(ArmTimer(key, timeout))

    def stop_timer(self, slot_index: int, timer_id: TimerId) -> None:
        key = TimerKey(_SCP_TIMERS[timer_id], slot_index)
        if self._scp_timers.pop(key, None) is not None:
            self.emit(CancelTimer(key))

    def value_externalized(self, slot_index: int, value: bytes) -> None:
        self.writer.decided(slot_index, value)
        self.cadence.progress()

    # -- the API's transactions ------------------------------------------------------------

    def submit_transactions(self, txs: Sequence[bytes], *, source: str, now: float) -> Step:
        """``TransactionsSubmitted`` for callers that hold a list."""
        return self.handle(ev.TransactionsSubmitted(tuple(txs), now, source))


def _no_answer(core: NodeCore, event: ev.MessageReceived) -> None:
    return None


def _no_timer(core: NodeCore) -> None:
    return None


# Each handler takes its own event type; the table's key guarantees it.
_EVENTS: dict[type, Callable[[NodeCore, Any, Step], None]] = {
    ev.Started: NodeCore._started,
    ev.MessageReceived: NodeCore._message,
    ev.QuorumSetAnswered: NodeCore._quorum_set_answered,
    ev.TxSetAnswered: NodeCore._tx_set_answered,
    ev.FetchFailed: NodeCore._fetch_failed,
    ev.OwnEnvelopesPersisted: NodeCore._persisted,
    ev.OwnEnvelopesNotPersisted: NodeCore._not_persisted,
    ev.LedgerWritten: NodeCore._written,
    ev.LedgerNotWritten: NodeCore._not_written,
    ev.TimerFired: NodeCore._timer,
    ev.TransactionsSubmitted: NodeCore._submitted,
    ev.PeerConnected: NodeCore._peer_connected,
    ev.PeerGone: NodeCore._peer_gone,
}

_MESSAGES: dict[type, Callable[[NodeCore, ev.MessageReceived], Verdict | None]] = {
    ScpMessage: NodeCore._envelope,
    TransactionBatch: NodeCore._transactions,
    Transaction: NodeCore._transactions,
    Neighbors: NodeCore._neighbors,
    GetScpState: NodeCore._get_scp_state,
    GetQuorumSet: NodeCore._get_quorum_set,
    GetTxSet: NodeCore._get_tx_set,
    GetLedgers: NodeCore._get_ledgers,
    Ledgers: NodeCore._ledgers,
}

_TIMERS: dict[TimerKind, Callable[[NodeCore], None]] = {
    TimerKind.CADENCE: lambda core: core.cadence.nominate_current(),
    TimerKind.TICK: lambda core: core.cadence.tick(),
    TimerKind.TX_FLOOD: lambda core: core.txflood.flush(),
    TimerKind.LEDGER_RETRY: lambda core: core.writer.retry(),
    TimerKind.OWN_ENVELOPE_RETRY: lambda core: core.outbox.retry(),
}
