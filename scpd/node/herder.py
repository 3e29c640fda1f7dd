"""The herder: the asyncio shell that runs one node's core (``scpd.nodecore``).

Theory of operation
-------------------
Every rule of the node (intake order, fetch-then-judge, cadence,
persist-before-send, ledger write order, catch-up, transaction flooding)
lives in ``NodeCore``, which does no I/O. The herder feeds it what happens,
stamped with the clock (messages from the overlay, answers to fetches,
results of store writes, timers, transactions from the API, peers coming
and going), and carries out the actions it returns:

* sends, relays, scores and fetches go through the ``Overlay``, by node id;
* store writes run in worker threads (``asyncio.to_thread``: a commit with
  many transactions takes longer than a message's handling can wait), and
  their outcome comes back as an event (``OwnEnvelopesPersisted``,
  ``LedgerWritten``; a ``StorageError`` is reported as a retryable failure);
* timers are ``loop.call_later`` handles keyed as the core keys them;
* ``ServeLedgers`` reads the store in a thread inside the overlay's handler
  call, so the answer is paid from the asking peer's budget.

The overlay's handler is ``handle_message``: the sender's node id and the
message in, the core's verdict out. The core is never re-entered from an
action: results of actions that take time come back as new events.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scpd.base.keys import Keypair
from scpd.base.types import NodeID, SCPQuorumSet
from scpd.errors import OverlayError
from scpd.node.envelope_log import EnvelopeLog
from scpd.node.herder_io import StoreActions
from scpd.node.ledger import LedgerStore
from scpd.node.metrics import Metrics
from scpd.node.observer import MetricsObserver
from scpd.node.overlay.overlay import Overlay
from scpd.nodecore import actions as act
from scpd.nodecore import events as ev
from scpd.nodecore.actions import Step, TimerKey, Verdict
from scpd.nodecore.catchup import Catchup
from scpd.nodecore.core import NodeCore
from scpd.nodecore.equivocation import EquivocationDetector
from scpd.nodecore.messages import OverlayMessage, ScpMessage
from scpd.nodecore.pending import PendingEnvelopes
from scpd.nodecore.settings import CoreSettings
from scpd.nodecore.storage import StorageHealth
from scpd.nodecore.trust import TrustedQuorum
from scpd.nodecore.txqueue import AddResult, Outcome, TxQueue
from scpd.nodecore.values import ChainTip, LedgerRecord
from scpd.scp.scp import SCP

__all__ = ["ExternalizedSlot", "Herder"]


@dataclass(frozen=True, slots=True)
class ExternalizedSlot:
    """What the herder reports for each ledger it writes."""

    slot: int
    record: LedgerRecord
    tx_count: int
    seconds_to_consensus: float | None


class Herder:
    """One node's core on the event loop: feeds it events, carries out its actions."""

    def __init__(
        self,
        keypair: Keypair,
        net_id: bytes,
        quorum_set: SCPQuorumSet,
        store: LedgerStore,
        settings: CoreSettings,
        *,
        is_validator: bool = True,
        clock: Callable[[], float] = time.time,
        on_externalized: Callable[[ExternalizedSlot], None] | None = None,
        metrics: Metrics | None = None,
        record_envelopes: Path | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._clock = clock
        self._on_externalized = on_externalized
        # Without a Metrics object the counters still exist, in a private registry nobody scrapes.
        self.metrics = metrics if metrics is not None else Metrics(process=False)
        self.core = NodeCore(
            keypair,
            net_id,
            quorum_set,
            store,
            settings,
            is_validator=is_validator,
            observer=MetricsObserver(self.metrics),
        )
        self.metrics.network_slot.set_function(lambda: self.core.catchup.highest_seen)
        self.overlay: Overlay | None = None
        self._io = StoreActions(store, self._feed, clock)
        self._timers: dict[TimerKey, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # Debug/audit: every SCP envelope received, appended to this file (see EnvelopeLog).
        self._envelope_log = EnvelopeLog(record_envelopes) if record_envelopes else None
        self._executors: dict[type, Callable[[Any], Awaitable[None] | None]] = {
            act.Send: lambda a: self._send(a.peer, a.message),
            act.SendEncoded: lambda a: self._overlay_do(lambda o: o.send_encoded(a.peer, a.messages)),
            act.Relay: lambda a: self._overlay_do(lambda o: o.relay(a.message, a.origin)),
            act.Broadcast: lambda a: self._overlay_do(lambda o: o.broadcast(a.message, force=a.force)),
            act.Score: lambda a: self._overlay_do(lambda o: o.score(a.peer, a.reason, a.points)),
            act.FetchQuorumSet: lambda a: self._spawn(self._fetch_quorum_set(a)),
            act.FetchTxSet: lambda a: self._spawn(self._fetch_tx_set(a)),
            act.PersistOwnEnvelopes: self._io.persist_own_envelopes,
            act.WriteLedger: self._io.write_ledger,
            act.AddProofs: self._io.add_proofs,
            act.SaveQuorumSet: self._io.save_quorum_set,
            act.PruneOwnEnvelopes: self._io.prune_own_envelopes,
            act.Checkpoint: self._io.checkpoint,
            act.ServeLedgers: self._serve_ledgers,
            act.Externalized: self._externalized,
            act.ArmTimer: self._arm,
            act.CancelTimer: self._cancel,
        }

    # -- what the rest of the daemon reads ------------------------------------------------

    @property
    def node_id(self) -> NodeID:
        return self.core.node_id

    @property
    def is_validator(self) -> bool:
        return self.core.is_validator

    @property
    def scp(self) -> SCP:
        return self.core.scp

    @property
    def current_slot(self) -> int:
        """The slot being decided: one past the last ledger."""
        return self.core.current_slot

    @property
    def tip(self) -> ChainTip:
        return self.core.tip

    @property
    def heard_at(self) -> dict[NodeID, float]:
        return self.core.heard_at

    @property
    def last_ledger_at(self) -> float | None:
        return self.core.last_ledger_at

    @property
    def storage(self) -> StorageHealth:
        return self.core.storage

    @property
    def trust(self) -> TrustedQuorum:
        return self.core.trust

    @property
    def pending(self) -> PendingEnvelopes:
        return self.core.pending

    @property
    def txqueue(self) -> TxQueue:
        return self.core.txqueue

    @property
    def equivocations(self) -> EquivocationDetector:
        return self.core.equivocations

    @property
    def catchup(self) -> Catchup:
        return self.core.catchup

    def get_quorum_set(self, qset_hash: bytes) -> SCPQuorumSet | None:
        return self.core.get_quorum_set(qset_hash)

    def value_to_str(self, value: bytes) -> str:
        return self.core.value_to_str(value)

    # -- lifecycle ------------------------------------------------------------------------

    def attach(self, overlay: Overlay) -> None:
        self.overlay = overlay

    def peer_changed(self, node: NodeID, connected: bool) -> None:
        """The overlay's watcher: a peer came or went."""
        now = self._clock()
        self._feed(ev.PeerConnected(node, now) if connected else ev.PeerGone(node, now))

    def start(self) -> None:
        """Restore our own statements of unfinished slots, then start the cadence."""
        self._loop = asyncio.get_running_loop()
        self._running = True
        now = self._clock()
        for peer in self.overlay.peers if self.overlay is not None else ():
            self._feed(ev.PeerConnected(peer.node_id, now))
        self._feed(ev.Started(now))

    async def stop(self) -> None:
        self._running = False
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # A write in progress completes; own envelopes not yet stored are dropped, which is safe:
        # nobody saw them.
        await self._io.drain()
        if self._envelope_log is not None:
            self._envelope_log.close()

    # -- events in ----------------------------------------------------------------------------

    def _feed(self, event: ev.Event) -> None:
        """Hand one event to the core (unless stopped) and carry out what it asks."""
        if self._running:
            self._execute(self.core.handle(event))

    def _execute(self, step: Step) -> list[Awaitable[None]]:
        waits: list[Awaitable[None]] = []
        for action in step.actions:
            result = self._executors[type(action)](action)
            if result is not None:
                waits.append(result)
        return waits

    def handle_message(self, node: NodeID, message: OverlayMessage) -> Verdict | Awaitable[Verdict] | None:
        """The overlay's handler: judge each authenticated message from peer ``node``."""
        if not self._running:
            return None
        if self._envelope_log is not None and isinstance(message, ScpMessage):
            self._envelope_log.append(node.ed25519, message.envelope)
        step = self.core.handle(ev.MessageReceived(node, message, self._clock()))
        waits = self._execute(step)
        if not waits:
            return step.verdict

        async def answered() -> Verdict:
            await asyncio.gather(*waits)
            return step.verdict

        return answered()

    def submit_transaction(self, tx: bytes, *, source: str = "api") -> AddResult:
        return self.submit_transactions([tx], source=source)[0]

    def submit_transactions(self, txs: Sequence[bytes], *, source: str = "api") -> list[AddResult]:
        """Queue transactions from our API and flood the ones new to us."""
        step = self.core.submit_transactions(txs, source=source, now=self._clock())
        if self._running:
            self._execute(step)
        return step.results

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

    # -- actions out ----------------------------------------------------------------------------

    def _overlay_do(self, do: Callable[[Overlay], object]) -> None:
        if self.overlay is not None:
            do(self.overlay)

    def _send(self, peer: NodeID, message: OverlayMessage) -> None:
        if self.overlay is not None:
            self.overlay.send(peer, message)

    async def _fetch_quorum_set(self, action: act.FetchQuorumSet) -> None:
        qset = None
        if self.overlay is not None:
            try:
                qset = await self.overlay.fetch_quorum_set(action.qset_hash, action.peer, action.timeout)
            except OverlayError:  # too many requests pending: as good as no answer
                qset = None
        now = self._clock()
        self._feed(
            ev.FetchFailed(action.fetch_id, now) if qset is None else ev.QuorumSetAnswered(action.fetch_id, qset, now)
        )

    async def _fetch_tx_set(self, action: act.FetchTxSet) -> None:
        payload = None
        if self.overlay is not None:
            verify = _hash_matches(action.tx_set_hash)
            try:
                payload = await self.overlay.fetch_tx_set(
                    action.tx_set_hash, action.peer, action.timeout, verify, ask_if_pending=action.ask_if_pending
                )
            except OverlayError:
                payload = None
        now = self._clock()
        self._feed(
            ev.FetchFailed(action.fetch_id, now) if payload is None else ev.TxSetAnswered(action.fetch_id, payload, now)
        )

    def _serve_ledgers(self, action: act.ServeLedgers) -> Awaitable[None]:
        async def serve() -> None:
            tip, entries = await asyncio.to_thread(self._io.read_entries, action.from_slot, action.count)
            self._send(action.peer, self.core.catchup.build_answer(tip, entries))

        return serve()

    def _externalized(self, action: act.Externalized) -> None:
        record = self._io.last_written
        if self._on_externalized is not None and record is not None and record.slot == action.slot:
            self._on_externalized(ExternalizedSlot(action.slot, record, action.tx_count, action.seconds_to_consensus))

    def _arm(self, action: act.ArmTimer) -> None:
        assert self._loop is not None
        self._cancel(act.CancelTimer(action.key))
        self._timers[action.key] = self._loop.call_later(action.delay, self._fire, action.key)

    def _cancel(self, action: act.CancelTimer) -> None:
        handle = self._timers.pop(action.key, None)
        if handle is not None:
            handle.cancel()

    def _fire(self, key: TimerKey) -> None:
        self._timers.pop(key, None)
        self._feed(ev.TimerFired(key, self._clock()))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _hash_matches(tx_set_hash: bytes) -> Callable[[bytes], bool]:
    """The overlay's check of a TX_SET answer: its payload hashes to what we asked for.

    Hashing the bytes is enough: strict decoding admits one encoding per set, so a payload
    that decodes at all decodes to the set with this hash (the core decodes it once, after).
    """

    def check(payload: bytes) -> bool:
        return hashlib.sha256(payload).digest() == tx_set_hash

    return check
