"""A simulated node: the daemon's node core behind a thin shell on the virtual clock.

Theory of operation
-------------------
:class:`SimNode` runs :class:`scpd.nodecore.core.NodeCore`, which runs the
consensus core: the very rules the daemon runs (intake order and checks,
trust, pending envelopes, fetches, cadence, persist-before-send, ledger write
order, catch-up). The shell keeps no rule of its own; it does for the core
what the daemon's shells do, and nothing more:

- bytes from the :class:`~scpd.sim.network.Network` are screened for flooded
  copies and decoded strictly as overlay messages (``scpd.nodecore.messages``);
  answers to fetches go to :mod:`scpd.sim.overlay`, everything else to the
  core as ``MessageReceived``;
- every action is carried out: messages are encoded and sent, own envelopes
  through :meth:`SimNode.send_own` (which Byzantine kinds bend), timers armed
  on the virtual clock, writes done to the node's :class:`~scpd.sim.store.
  SimStore`, ledgers served from it;
- what takes time in the daemon (a write, an answer) comes back to the core
  as an event, never inside the step that asked for it: right after that
  step, at the same virtual instant. A crash in between loses it, as
  ``kill -9`` after an fsync would;
- while the scenario fails the node's disk, writes raise and the core hears
  that they failed and may be retried.

A crash loses the core, its timers, fetches and flood memory; the store (and
the count of transactions submitted) survives. On start the node builds a new
core over its store, says ``Started``, and connects to every node that is up
(``PeerConnected`` on both sides and a GET_SCP_STATE each way, as the
overlay does on a new connection). Every node submits a few synthetic
transactions (:mod:`scpd.sim.values`) when it starts (stored first, so the
core queues them with the others it finds in the store) and after each
ledger it writes.

What happens is recorded (:class:`~scpd.sim.stats.Recorder`) from the
actions carried out and from the facts the core reports to its observer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from scpd.base.keys import Keypair
from scpd.base.types import NodeID, SCPEnvelope, SCPQuorumSet
from scpd.base.xdr import XdrError
from scpd.nodecore import actions as act
from scpd.nodecore import events as ev
from scpd.nodecore.catchup import CatchupEntry
from scpd.nodecore.core import NodeCore
from scpd.nodecore.equivocation import Equivocation
from scpd.nodecore.messages import (
    FLOODED_TYPES,
    DontHave,
    GetScpState,
    OverlayMessage,
    QuorumSetMessage,
    ScpMessage,
    TxSetMessage,
    decode_message,
    encode_message,
)
from scpd.nodecore.observer import Observer
from scpd.nodecore.settings import CoreSettings
from scpd.sim.clock import Event, VirtualClock
from scpd.sim.network import Network
from scpd.sim.overlay import Answer, FloodScreen, Requests
from scpd.sim.stats import Recorder
from scpd.sim.store import ChainRefused, DiskFailure, SimStore
from scpd.sim.values import TXS_PER_SLOT, synthetic_transactions

__all__ = ["CODEC_MEMORY", "Codec", "SimNode", "World"]

CODEC_MEMORY = 4096


class Codec:
    """Overlay messages encoded and decoded once per run rather than once per node.

    Messages are immutable and their encoding is a pure function of them, so
    an envelope sent again (rebroadcasts, answers to GET_SCP_STATE) reuses its
    bytes, and bytes delivered to many nodes are decoded once; every node
    still receives bytes and decodes them strictly (a failure is not cached).
    Only SCP envelopes are remembered, the bulk of the traffic, and only the
    latest :data:`CODEC_MEMORY` of each, so memory stays bounded.
    """

    def __init__(self) -> None:
        self._encoded: dict[int, tuple[SCPEnvelope, bytes]] = {}
        self._decoded: dict[bytes, OverlayMessage] = {}

    def encode(self, message: OverlayMessage) -> bytes:
        if not isinstance(message, ScpMessage):
            return encode_message(message)
        envelope = message.envelope
        known = self._encoded.get(id(envelope))
        if known is not None and known[0] is envelope:
            return known[1]
        payload = encode_message(message)
        if len(self._encoded) >= CODEC_MEMORY:
            self._encoded.clear()
        self._encoded[id(envelope)] = (envelope, payload)
        self._remember(payload, message)
        return payload

    def decode(self, payload: bytes) -> OverlayMessage:
        """``decode_message``, strict; raises XdrError."""
        known = self._decoded.get(payload)
        if known is not None:
            return known
        message = decode_message(payload)
        if isinstance(message, ScpMessage):
            self._remember(payload, message)
        return message

    def _remember(self, payload: bytes, message: OverlayMessage) -> None:
        if len(self._decoded) >= CODEC_MEMORY:
            self._decoded.clear()
        self._decoded[payload] = message


@dataclass
class World:
    """What every node of one run shares: time, the wire, the record, the rules and who is who."""

    clock: VirtualClock
    net_id: bytes
    recorder: Recorder
    settings: CoreSettings
    node_ids: tuple[NodeID, ...]
    honest: frozenset[int] = frozenset()
    network: Network | None = None
    nodes: list[SimNode] = field(default_factory=list)
    index_of: dict[NodeID, int] = field(default_factory=dict)
    codec: Codec = field(default_factory=Codec)

    def __post_init__(self) -> None:
        self.index_of = {node: i for i, node in enumerate(self.node_ids)}

    def send(self, src: int, targets: Sequence[int], payload: bytes) -> None:
        assert self.network is not None
        self.network.broadcast(src, targets, payload)


class _Facts(Observer):
    """The core's observer: the facts the properties and the summary read."""

    def __init__(self, node: SimNode) -> None:
        self._node = node
        self._recorder = node.world.recorder

    def envelope_received(self) -> None:
        self._recorder.envelopes_processed += 1

    def envelope_rejected(self, reason: str) -> None:
        self._recorder.reject(reason)

    def signature_verified(self, ok: bool) -> None:
        self._recorder.envelopes_verified += 1

    def storage_failed(self, kind: str, error: str, retry_in: float) -> None:
        self._recorder.storage_failures[kind] += 1

    def equivocation_found(self, found: Equivocation) -> None:
        if self._node.honest:
            self._recorder.equivocation(self._node.index, found.node)


class SimNode:
    """An honest validator; Byzantine kinds subclass it and bend one behaviour."""

    honest = True

    def __init__(self, world: World, index: int, keypair: Keypair, qset: SCPQuorumSet, persona: str = "") -> None:
        self.world = world
        self.index = index
        self.keypair = keypair
        self.node_id = keypair.public_key
        self.qset = qset
        self.persona = persona
        self.targets = [i for i in range(len(world.node_ids)) if i != index]
        # Durable: survives crashes.
        self.store = SimStore()
        self.txs_submitted = 0
        # Volatile: lost on crash.
        self.up = False
        self.core: NodeCore | None = None
        self._boot = 0
        # Events that complete what a step asked for, fed right after it (see ``feed``).
        self._followups: deque[ev.Event] = deque()
        self._in_step = False
        self._timers: dict[act.TimerKey, Event] = {}
        self._requests = Requests(world.clock, self._ask, self.feed)
        self._screen = FloodScreen()
        # The scenario's fault "crash right after the next own-envelope write", and when to come back.
        self.crash_on_persist = False
        self.restart_after_persist_crash: float | None = None

    # -- life cycle ----------------------------------------------------------------

    def start(self) -> None:
        """Boot (or reboot) over the stored state, then connect to every node that is up."""
        if self.up:
            return
        world = self.world
        self.up = True
        self._boot += 1
        self._requests = Requests(world.clock, self._ask, self.feed)
        self._screen = FloodScreen()
        self._new_transactions()  # in the store before the core starts, so it queues them with the rest
        self.core = NodeCore(self.keypair, world.net_id, self.qset, self.store, world.settings, observer=_Facts(self))
        self.handle(ev.Started(world.clock.now))
        for other in world.nodes:
            if other.index != self.index and other.up:
                self.connected(other.node_id, other.index)
                other.connected(self.node_id, self.index)

    def crash(self) -> None:
        if not self.up:
            return
        self.up = False
        self._boot += 1
        self._followups.clear()
        for event in self._timers.values():
            event.cancel()
        self._timers.clear()
        self._requests.cancel_all()
        self.core = None
        for other in self.world.nodes:
            if other.index != self.index and other.up:
                other.handle(ev.PeerGone(self.node_id, self.world.clock.now))

    def connected(self, peer: NodeID, index: int) -> None:
        """A connection with ``peer`` is up: tell the core, and ask for the peer's current statements."""
        if self.core is None:
            return
        self.handle(ev.PeerConnected(peer, self.world.clock.now))
        if self.core is not None:
            self.send_message([index], GetScpState(max(self.core.current_slot - 1, 0)))

    def _new_transactions(self) -> tuple[bytes, ...]:
        """A few new transactions of our own, as a client of our API would send them (stored first)."""
        first = self.txs_submitted
        self.txs_submitted += TXS_PER_SLOT
        txs = synthetic_transactions(f"{self.index}{self.persona}", first)
        self.store.save_pending_txs(txs)
        return txs

    # -- events in, actions out -------------------------------------------------------

    def handle(self, event: ev.Event) -> act.Step | None:
        """Feed one event to the core now, carry out what it asks, then what completes those actions."""
        step = self._step(event)
        while self._followups:
            self._step(self._followups.popleft())
        return step

    def feed(self, event: ev.Event) -> None:
        """An event completing an action: fed right after the step that asked for it (or now, outside one)."""
        if self._in_step:
            self._followups.append(event)
        else:
            self.handle(event)

    def _step(self, event: ev.Event) -> act.Step | None:
        core = self.core
        if core is None:
            return None
        step = core.handle(event)
        boot = self._boot
        self._in_step = True
        try:
            for action in step.actions:
                if self._boot != boot:
                    break  # the node died carrying out an earlier action
                _ACTIONS[type(action)](self, action)
        finally:
            self._in_step = False
        return step

    # -- the wire ---------------------------------------------------------------------

    def receive(self, src: int, payload: bytes) -> None:
        """Bytes from node ``src``: screen flooded copies, decode strictly, then the core (or a fetch)."""
        recorder = self.world.recorder
        if not self.up:
            recorder.reject("node_down")
            return
        digest = None
        if int.from_bytes(payload[:4], "big") in FLOODED_TYPES:
            digest = self._screen.first_time(payload)
            if digest is None:
                return  # a copy: the overlay drops it unread
        try:
            message = self.world.codec.decode(payload)
        except XdrError:
            recorder.reject("malformed")
            return
        peer = self.world.node_ids[src]
        if isinstance(message, TxSetMessage):
            self._answered(src, self._requests.tx_set(peer, message.item_hash, message.payload))
        elif isinstance(message, QuorumSetMessage):
            self._answered(src, self._requests.quorum_set(message.quorum_set))
        elif isinstance(message, DontHave):
            self._requests.refused(peer, message.item_hash)
        else:
            step = self.handle(ev.MessageReceived(peer, message, self.world.clock.now))
            if step is None:
                return
            if step.verdict is act.Verdict.REJECT:
                recorder.score(self.honest, src in self.world.honest, f"rejected {type(message).__name__}")
            elif digest is not None and step.verdict is act.Verdict.IGNORE:
                self._screen.forget(digest)  # not used now is not "seen": a later copy is judged anew

    def _answered(self, src: int, answer: Answer) -> None:
        if answer is Answer.UNREQUESTED:
            self.world.recorder.reject("unrequested_answer")
        elif answer is Answer.WRONG:
            self.world.recorder.score(self.honest, src in self.world.honest, "answer does not match its hash")

    def send_own(self, envelope: SCPEnvelope) -> None:
        """Flood one of our own envelopes; Byzantine kinds override this."""
        self.send_message(self.targets, ScpMessage(envelope))

    def send_message(self, targets: Sequence[int], message: OverlayMessage) -> None:
        if isinstance(message, ScpMessage) and message.envelope.statement.node_id == self.node_id:
            self._sending_own(message.envelope, len(targets))
        self.world.send(self.index, targets, self.world.codec.encode(message))

    def _sending_own(self, envelope: SCPEnvelope, copies: int) -> None:
        recorder = self.world.recorder
        recorder.sent(self.index, envelope, copies, self.honest)
        if self.honest:
            recorder.sending_own(self.index, envelope)

    def _ask(self, peer: NodeID, message: OverlayMessage) -> None:
        index = self.world.index_of.get(peer)
        if index is not None:
            self.send_message([index], message)

    # -- actions ----------------------------------------------------------------------

    def _send(self, action: act.Send) -> None:
        self._ask(action.peer, action.message)

    def _send_encoded(self, action: act.SendEncoded) -> None:
        index = self.world.index_of.get(action.peer)
        if index is not None:
            for payload in action.messages:
                self.world.send(self.index, [index], payload)

    def _relay(self, action: act.Relay) -> None:
        """Never to the signer nor to a peer connected to it: on a full mesh, to nobody."""

    def _broadcast(self, action: act.Broadcast) -> None:
        message = action.message
        if isinstance(message, ScpMessage) and message.envelope.statement.node_id == self.node_id:
            self.send_own(message.envelope)
        else:
            self.send_message(self.targets, message)

    def _score(self, action: act.Score) -> None:
        index = self.world.index_of.get(action.peer)
        self.world.recorder.score(self.honest, index in self.world.honest, action.reason)

    def _fetch(self, action: act.FetchTxSet | act.FetchQuorumSet) -> None:
        self._requests.fetch(action)

    def _persist(self, action: act.PersistOwnEnvelopes) -> None:
        now = self.world.clock.now
        try:
            self.store.save_own_envelopes(action.items)
        except DiskFailure as exc:
            self.feed(ev.OwnEnvelopesNotPersisted(action.batch_id, str(exc), True, now))
            return
        if self.honest:
            for envelope, _sets in action.items:
                self.world.recorder.persisted(self.index, envelope)
        if self.crash_on_persist:
            self._crash_after_persist()
            return
        self.feed(ev.OwnEnvelopesPersisted(action.batch_id, now))

    def _crash_after_persist(self) -> None:
        """Written, not yet sent: the node dies here (the scenario's persist-crash fault)."""
        self.crash_on_persist = False
        self.crash()
        restart = self.restart_after_persist_crash
        if restart is not None:
            self.world.clock.call_at(restart, self.start)

    def _write_ledger(self, action: act.WriteLedger) -> None:
        now = self.world.clock.now
        slot = action.entry.slot
        try:
            record = self.store.append_ledger(action.entry, action.tx_set, action.proofs)
        except DiskFailure as exc:
            self.feed(ev.LedgerNotWritten(slot, str(exc), True, now))
            return
        except ChainRefused as exc:
            self.world.recorder.reject("ledger_refused")
            self.feed(ev.LedgerNotWritten(slot, str(exc), False, now))
            return
        if self.honest:
            self.world.recorder.ledger_written(self.index, action.entry, action.tx_set, now)
        self.feed(ev.LedgerWritten(slot, record.hash, now))

    def _add_proofs(self, action: act.AddProofs) -> None:
        self.store.add_proofs(action.slot, action.envelopes)

    def _save_quorum_set(self, action: act.SaveQuorumSet) -> None:
        self.store.save_quorum_set(action.quorum_set)

    def _prune(self, action: act.PruneOwnEnvelopes) -> None:
        self.store.prune_own_envelopes(action.below_slot)

    def _checkpoint(self, action: act.Checkpoint) -> None:
        """Nothing to fold: the simulated store has no log."""

    def _serve_ledgers(self, action: act.ServeLedgers) -> None:
        index = self.world.index_of.get(action.peer)
        if index is None or self.core is None:
            return
        store = self.store
        tip = store.tip().slot
        entries = []
        for slot in range(max(1, action.from_slot), min(action.from_slot + action.count, tip + 1)):
            record = store.ledgers[slot]
            entries.append(CatchupEntry(slot, record.entry.value, record.tx_set, tuple(store.proofs_of(slot))))
        self.send_message([index], self.core.catchup.build_answer(tip, entries))

    def _externalized(self, action: act.Externalized) -> None:
        if self.honest and action.seconds_to_consensus is not None:
            self.world.recorder.decided_after(self.index, action.slot, action.seconds_to_consensus)
        self.feed(ev.TransactionsSubmitted(self._new_transactions(), self.world.clock.now))

    def _arm_timer(self, action: act.ArmTimer) -> None:
        key = action.key
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()

        def fire() -> None:
            if self._timers.get(key) is event:
                del self._timers[key]
                self.handle(ev.TimerFired(key, self.world.clock.now))

        event = self.world.clock.call_later(action.delay, fire)
        self._timers[key] = event

    def _cancel_timer(self, action: act.CancelTimer) -> None:
        old = self._timers.pop(action.key, None)
        if old is not None:
            old.cancel()


_ACTIONS: dict[type, Callable[[SimNode, act.Action], None]] = {
    act.Send: SimNode._send,  # type: ignore[dict-item]
    act.SendEncoded: SimNode._send_encoded,  # type: ignore[dict-item]
    act.Relay: SimNode._relay,  # type: ignore[dict-item]
    act.Broadcast: SimNode._broadcast,  # type: ignore[dict-item]
    act.Score: SimNode._score,  # type: ignore[dict-item]
    act.FetchTxSet: SimNode._fetch,  # type: ignore[dict-item]
    act.FetchQuorumSet: SimNode._fetch,  # type: ignore[dict-item]
    act.PersistOwnEnvelopes: SimNode._persist,  # type: ignore[dict-item]
    act.WriteLedger: SimNode._write_ledger,  # type: ignore[dict-item]
    act.AddProofs: SimNode._add_proofs,  # type: ignore[dict-item]
    act.SaveQuorumSet: SimNode._save_quorum_set,  # type: ignore[dict-item]
    act.PruneOwnEnvelopes: SimNode._prune,  # type: ignore[dict-item]
    act.Checkpoint: SimNode._checkpoint,  # type: ignore[dict-item]
    act.ServeLedgers: SimNode._serve_ledgers,  # type: ignore[dict-item]
    act.Externalized: SimNode._externalized,  # type: ignore[dict-item]
    act.ArmTimer: SimNode._arm_timer,  # type: ignore[dict-item]
    act.CancelTimer: SimNode._cancel_timer,  # type: ignore[dict-item]
}
