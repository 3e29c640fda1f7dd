"""An honest simulated node: the real SCP core behind a simulator driver.

:class:`SimDriver` answers the core's questions the way the daemon will:
it signs with the node's real Ed25519 key, persists every envelope before
sending it (DESIGN rule 3), arms timers on the virtual clock, validates and
combines values per :mod:`scpd.sim.values`, and looks quorum sets up in the
network-wide table (the overlay's job in the daemon).

:class:`SimNode` holds what survives a crash (its key, its persisted own
envelopes per slot, its ledger of externalized values) and what does not (the
``SCP`` object and its timers). Receiving goes through the daemon's order of
checks: decode strictly, drop envelopes bearing our own node id, cheap slot-range
check, verify the signature, then hand the envelope to the core. Slot cadence: slot i+1 is nominated when slot
i externalizes (or ``slot_interval`` after slot i was nominated, if later).
Every ``rebroadcast_interval`` the node re-sends its persisted envelopes of
recent slots, which is how lost messages are eventually made up for and how
nodes that were cut off or down catch up.

Calls into the core from driver callbacks are queued on the clock, never made
re-entrantly (the Driver contract).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from scpd.base.keys import Keypair, sign_statement, verify_envelope
from scpd.base.types import SCPEnvelope, SCPNomination, SCPQuorumSet, SCPStatement
from scpd.base.xdr import XdrError
from scpd.scp import SCP, Driver, EnvelopeState, TimerId, ValidationLevel
from scpd.scp.driver import TimerCallback
from scpd.sim import values
from scpd.sim.clock import Event, VirtualClock
from scpd.sim.network import Network
from scpd.sim.stats import Recorder

__all__ = ["GENESIS", "SimDriver", "SimNode", "World"]

GENESIS = b"scpd-sim genesis"


@dataclass
class World:
    """What every node of one run shares: time, the wire, the record, the rules."""

    clock: VirtualClock
    net_id: bytes
    recorder: Recorder
    node_count: int
    slots: int
    qsets_by_hash: dict[bytes, SCPQuorumSet]
    slot_interval: float = 0.0
    rebroadcast_interval: float = 1.0
    window: int = 8
    network: Network | None = field(default=None)

    def send(self, src: int, targets: list[int], payload: bytes) -> None:
        assert self.network is not None
        self.network.broadcast(src, targets, payload)


class SimDriver(Driver):
    """The core's view of a simulated node (one per SCP object, i.e. per boot)."""

    def __init__(self, node: SimNode) -> None:
        super().__init__()
        self.node = node
        self.world = node.world
        self._timers: dict[tuple[int, int], Event] = {}
        self.alive = True

    def sign_envelope(self, statement: SCPStatement) -> SCPEnvelope:
        return sign_statement(self.node.keypair, self.world.net_id, statement)

    def emit_envelope(self, envelope: SCPEnvelope) -> None:
        if self.alive:
            self.node.emit(envelope)

    def get_quorum_set(self, qset_hash: bytes) -> SCPQuorumSet | None:
        return self.world.qsets_by_hash.get(qset_hash)

    def validate_value(self, slot_index: int, value: bytes, nomination: bool) -> ValidationLevel:
        return values.validate(slot_index, value, self.world.node_count)

    def combine_candidates(self, slot_index: int, candidates: frozenset[bytes]) -> bytes | None:
        return values.combine(candidates) if candidates else None

    def setup_timer(self, slot_index: int, timer_id: TimerId, timeout: float, callback: TimerCallback) -> None:
        key = (slot_index, int(timer_id))
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        if not self.alive:
            return

        def fire() -> None:
            if self._timers.get(key) is event:
                del self._timers[key]
                callback()

        event = self.world.clock.call_later(timeout, fire)
        self._timers[key] = event

    def stop_timer(self, slot_index: int, timer_id: TimerId) -> None:
        old = self._timers.pop((slot_index, int(timer_id)), None)
        if old is not None:
            old.cancel()

    def value_externalized(self, slot_index: int, value: bytes) -> None:
        if self.alive:
            self.node.on_externalized(slot_index, value)

    def shut_down(self) -> None:
        """The node crashed: nothing this driver armed may fire any more."""
        self.alive = False
        for event in self._timers.values():
            event.cancel()
        self._timers.clear()


class SimNode:
    """An honest validator; Byzantine kinds subclass it and bend one behaviour."""

    honest = True

    def __init__(self, world: World, index: int, keypair: Keypair, qset: SCPQuorumSet, variant: int = 0) -> None:
        self.world = world
        self.index = index
        self.keypair = keypair
        self.qset = qset
        self.variant = variant
        self.targets = [i for i in range(world.node_count) if i != index]
        # Durable state: survives crashes.
        self.store: dict[int, dict[str, SCPEnvelope]] = {}
        self.ledger: dict[int, bytes] = {}
        # Volatile state: lost on crash.
        self.up = False
        self.scp: SCP | None = None
        self.driver: SimDriver | None = None
        self._pending: list[Event] = []
        self._nominated_slots: set[int] = set()

    # -- life cycle ----------------------------------------------------------

    def start(self) -> None:
        """Boot (or reboot): restore from persisted envelopes, then take part again."""
        self.up = True
        self.driver = SimDriver(self)
        self.scp = SCP(self.driver, self.keypair.public_key, True, self.qset)
        self._nominated_slots = set()
        for slot in sorted(self.store):
            for kind in ("nomination", "ballot"):
                env = self.store[slot].get(kind)
                if env is not None:
                    self.scp.set_state_from_envelope(slot, env)
        nxt = max(self.ledger, default=0) + 1
        if nxt <= self.world.slots:
            self._later(0.0, lambda: self.nominate(nxt))
        if self.world.rebroadcast_interval > 0:
            self._later(self.world.rebroadcast_interval, self._rebroadcast)

    def crash(self) -> None:
        self.up = False
        if self.driver is not None:
            self.driver.shut_down()
        for event in self._pending:
            event.cancel()
        self._pending = []
        self.scp = None
        self.driver = None

    def _later(self, delay: float, fn: Callable[[], None]) -> None:
        pending = self._pending
        if len(pending) > 64:
            pending[:] = [e for e in pending if not e.cancelled and e.time >= self.world.clock.now]

        def run() -> None:
            if self.up:
                fn()

        pending.append(self.world.clock.call_later(delay, run))

    # -- slot cadence ----------------------------------------------------------

    def value_for(self, slot: int) -> bytes:
        return values.encode_value(slot, self.index, self.variant)

    def nominate(self, slot: int) -> None:
        scp = self.scp
        if scp is None or slot in self.ledger or slot in self._nominated_slots:
            return
        prev = GENESIS if slot == 1 else self.ledger.get(slot - 1)
        if prev is None:
            return
        self._nominated_slots.add(slot)
        self.world.recorder.nominating(self.index, slot, self.world.clock.now)
        scp.purge_slots(slot - self.world.window)
        scp.nominate(slot, self.value_for(slot), prev)

    def on_externalized(self, slot: int, value: bytes) -> None:
        """The core decided ``slot`` (it may say so again after a restore)."""
        world = self.world
        if self.honest:
            world.recorder.decided(self.index, slot, value, world.clock.now)
        if slot in self.ledger:
            return
        self.ledger[slot] = value
        nxt = slot + 1
        if nxt <= world.slots and nxt not in self.ledger:
            started = world.recorder.nomination_started[self.index].get(slot, world.clock.now)
            delay = max(0.0, started + world.slot_interval - world.clock.now)
            self._later(delay, lambda: self.nominate(nxt))

    # -- the wire --------------------------------------------------------------

    def emit(self, envelope: SCPEnvelope) -> None:
        """Persist, then send: a restarted node never contradicts what it sent."""
        st = envelope.statement
        kind = "nomination" if isinstance(st.pledges, SCPNomination) else "ballot"
        self.store.setdefault(st.slot_index, {})[kind] = envelope
        if self.honest:
            self.world.recorder.emitted(st.slot_index)
        self.send_own(envelope)

    def send_own(self, envelope: SCPEnvelope) -> None:
        """Send one of our envelopes; Byzantine kinds override this."""
        self.send_to(envelope, self.targets)

    def send_to(self, envelope: SCPEnvelope, targets: list[int]) -> None:
        self.world.recorder.sent(self.index, envelope, len(targets), self.honest)
        self.world.send(self.index, targets, envelope.to_xdr())

    def _rebroadcast(self) -> None:
        low = max(self.ledger, default=0) + 1 - self.world.window
        for slot in sorted(self.store):
            if slot >= low:
                for env in self.store[slot].values():
                    self.send_own(env)
        self._later(self.world.rebroadcast_interval, self._rebroadcast)

    def receive(self, src: int, payload: bytes) -> None:
        """A message arrives: decode, cheap checks, verify, then the core."""
        recorder = self.world.recorder
        scp = self.scp
        if scp is None:
            recorder.reject("node_down")
            return
        try:
            envelope, statement_xdr = SCPEnvelope.from_xdr_with_statement(payload)
        except XdrError:
            recorder.reject("malformed")
            return
        if envelope.statement.node_id == self.keypair.public_key:
            recorder.reject("own_envelope")  # as the daemon's herder: we know our own statements
            return
        slot = envelope.statement.slot_index
        if not 1 <= slot <= self.world.slots or slot <= max(self.ledger, default=0) - self.world.window:
            recorder.reject("slot_out_of_range")
            return
        if not verify_envelope(self.world.net_id, envelope, statement_xdr):
            recorder.reject("bad_signature")
            return
        recorder.envelopes_verified += 1
        self.deliver(envelope)

    def deliver(self, envelope: SCPEnvelope) -> None:
        """Hand a verified envelope to the core."""
        assert self.scp is not None
        self.world.recorder.envelopes_processed += 1
        if self.scp.receive_envelope(envelope) == EnvelopeState.INVALID:
            self.world.recorder.reject("invalid_statement")
