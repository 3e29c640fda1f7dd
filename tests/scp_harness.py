"""A recording driver and envelope builders for scenario tests of the consensus core.

Modelled on stellar-core's ``TestSCP``: the driver records every envelope
the node emits, every timer set or stopped, every externalized value and
every hook call, and lets a test fire timers by hand. Envelopes are really
signed (Ed25519, ``scpd.base.keys``) and the recorded ones are verified, so
each scenario reads "receive these, expect exactly these emitted".

Leader selection is made controllable the way stellar-core's tests do it:
with ``priority`` set, every node is a neighbor and the priority hash of a
node is looked up in that table; ``value_hash`` likewise orders values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from scpd.base import quorum
from scpd.base.keys import Keypair, network_id, sign_statement, verify_envelope
from scpd.base.types import (
    NodeID,
    SCPBallot,
    SCPConfirm,
    SCPEnvelope,
    SCPExternalize,
    SCPNomination,
    SCPPrepare,
    SCPQuorumSet,
    SCPStatement,
)
from scpd.scp import SCP, Driver, TimerId, ValidationLevel
from scpd.scp.driver import TimerCallback

NETWORK_ID = network_id("scpd scenario tests")
INF = 0xFFFFFFFF


def keypair(i: int) -> Keypair:
    """Deterministic test key number ``i``."""
    return Keypair(bytes([i + 1]) * 32)


@dataclass
class Timer:
    timeout: float
    callback: TimerCallback
    epoch: int


@dataclass
class RecordingDriver(Driver):
    """A Driver that records everything and answers from tables."""

    key: Keypair = field(default_factory=lambda: keypair(0))
    qsets: dict[bytes, SCPQuorumSet] = field(default_factory=dict)
    emitted: list[SCPEnvelope] = field(default_factory=list)
    externalized: list[tuple[int, bytes]] = field(default_factory=list)
    hooks: list[tuple[str, int, Any]] = field(default_factory=list)
    timers: dict[tuple[int, TimerId], Timer] = field(default_factory=dict)
    timer_log: list[tuple[str, int, TimerId, float | None]] = field(default_factory=list)
    validity: dict[bytes, ValidationLevel] = field(default_factory=dict)
    priority: dict[NodeID, int] | None = None
    value_hash: dict[bytes, int] | None = None
    composite: Callable[[frozenset[bytes]], bytes | None] = max
    # stellar-core's bumpTimerOffset: a timer set since the last bump is "upcoming".
    epoch: int = 0

    def __post_init__(self) -> None:
        Driver.__init__(self)

    # -- Driver ------------------------------------------------------------

    def sign_envelope(self, statement: SCPStatement) -> SCPEnvelope:
        return sign_statement(self.key, NETWORK_ID, statement)

    def emit_envelope(self, envelope: SCPEnvelope) -> None:
        assert verify_envelope(NETWORK_ID, envelope), "emitted envelope must carry a valid signature"
        self.emitted.append(envelope)

    def get_quorum_set(self, qset_hash: bytes) -> SCPQuorumSet | None:
        return self.qsets.get(qset_hash)

    def validate_value(self, slot_index: int, value: bytes, nomination: bool) -> ValidationLevel:
        return self.validity.get(value, ValidationLevel.FULLY_VALID)

    def combine_candidates(self, slot_index: int, candidates: frozenset[bytes]) -> bytes | None:
        return self.composite(candidates)

    def setup_timer(self, slot_index: int, timer_id: TimerId, timeout: float, callback: TimerCallback) -> None:
        self.timers[(slot_index, timer_id)] = Timer(timeout, callback, self.epoch)
        self.timer_log.append(("setup", slot_index, timer_id, timeout))

    def stop_timer(self, slot_index: int, timer_id: TimerId) -> None:
        self.timers.pop((slot_index, timer_id), None)
        self.timer_log.append(("stop", slot_index, timer_id, None))

    def compute_hash_node(
        self, slot_index: int, prev_value: bytes, is_priority: bool, round_number: int, node_id: NodeID
    ) -> int:
        if self.priority is None:
            return super().compute_hash_node(slot_index, prev_value, is_priority, round_number, node_id)
        return self.priority.get(node_id, 0) if is_priority else 0

    def compute_value_hash(self, slot_index: int, prev_value: bytes, round_number: int, value: bytes) -> int:
        if self.value_hash is None:
            return super().compute_value_hash(slot_index, prev_value, round_number, value)
        return self.value_hash.get(value, 0)

    def value_externalized(self, slot_index: int, value: bytes) -> None:
        self.externalized.append((slot_index, value))

    def nominating_value(self, slot_index: int, value: bytes) -> None:
        self.hooks.append(("nominating_value", slot_index, value))

    def updated_candidate_value(self, slot_index: int, value: bytes) -> None:
        self.hooks.append(("updated_candidate_value", slot_index, value))

    def started_ballot_protocol(self, slot_index: int, ballot: SCPBallot) -> None:
        self.hooks.append(("started_ballot_protocol", slot_index, ballot))

    def accepted_ballot_prepared(self, slot_index: int, ballot: SCPBallot) -> None:
        self.hooks.append(("accepted_ballot_prepared", slot_index, ballot))

    def confirmed_ballot_prepared(self, slot_index: int, ballot: SCPBallot) -> None:
        self.hooks.append(("confirmed_ballot_prepared", slot_index, ballot))

    def accepted_commit(self, slot_index: int, ballot: SCPBallot) -> None:
        self.hooks.append(("accepted_commit", slot_index, ballot))

    def ballot_did_hear_from_quorum(self, slot_index: int, ballot: SCPBallot) -> None:
        self.hooks.append(("ballot_did_hear_from_quorum", slot_index, ballot))

    # -- test helpers ------------------------------------------------------

    def fire_timer(self, slot_index: int, timer_id: TimerId) -> None:
        timer = self.timers.pop((slot_index, timer_id))
        timer.callback()

    def has_timer(self, slot_index: int, timer_id: TimerId) -> bool:
        return (slot_index, timer_id) in self.timers

    def has_timer_upcoming(self, slot_index: int, timer_id: TimerId) -> bool:
        """A timer was (re)armed since the last ``bump_timer_offset``."""
        timer = self.timers.get((slot_index, timer_id))
        return timer is not None and timer.epoch == self.epoch

    def bump_timer_offset(self) -> None:
        self.epoch += 1

    def hook_calls(self, name: str) -> list[Any]:
        return [arg for hook, _, arg in self.hooks if hook == name]


class Network:
    """The local node v0 plus peers v1..v{n-1}, with their keys and quorum sets.

    ``qset`` is every node's quorum set unless given per node later.
    """

    def __init__(
        self, n: int, threshold: int, is_validator: bool = True, slot: int = 0, local_outside: bool = False
    ) -> None:
        self.keys = [keypair(i) for i in range(n)]
        self.ids = [k.node_id for k in self.keys]
        self.qset = SCPQuorumSet(threshold, tuple(self.ids))
        self.qset_hash = quorum.quorum_set_hash(self.qset)
        self.slot = slot
        # Normally the local node is v0; ``local_outside`` makes it an extra
        # node that is not in the quorum set (like stellar-core's watcher test).
        self.local_key = keypair(n) if local_outside else self.keys[0]
        self.local_id = self.local_key.node_id
        self.driver = RecordingDriver(key=self.local_key, qsets={self.qset_hash: self.qset})
        self.scp = SCP(self.driver, self.local_id, is_validator, self.qset)

    # -- building statements from peers ------------------------------------

    def add_qset(self, qset: SCPQuorumSet) -> bytes:
        h = quorum.quorum_set_hash(qset)
        self.driver.qsets[h] = qset
        return h

    def sign(self, i: int, pledges: Any, slot: int | None = None) -> SCPEnvelope:
        st = SCPStatement(self.ids[i], self.slot if slot is None else slot, pledges)
        return sign_statement(self.keys[i], NETWORK_ID, st)

    def prepare(
        self,
        i: int,
        b: SCPBallot,
        p: SCPBallot | None = None,
        nc: int = 0,
        nh: int = 0,
        p_prime: SCPBallot | None = None,
        qset_hash: bytes | None = None,
    ) -> SCPEnvelope:
        """PREPARE from node i; arguments in stellar-core's makePrepare order."""
        return self.sign(i, SCPPrepare(qset_hash or self.qset_hash, b, p, p_prime, nc, nh))

    def confirm(
        self, i: int, b: SCPBallot, n_prepared: int, nc: int, nh: int, qset_hash: bytes | None = None
    ) -> SCPEnvelope:
        return self.sign(i, SCPConfirm(b, n_prepared, nc, nh, qset_hash or self.qset_hash))

    def externalize(self, i: int, commit: SCPBallot, nh: int) -> SCPEnvelope:
        return self.sign(i, SCPExternalize(commit, nh, self.qset_hash))

    def nominate(
        self, i: int, votes: Iterable[bytes], accepted: Iterable[bytes] = (), qset_hash: bytes | None = None
    ) -> SCPEnvelope:
        return self.sign(i, SCPNomination(qset_hash or self.qset_hash, tuple(sorted(votes)), tuple(sorted(accepted))))

    # -- driving the local node --------------------------------------------

    def receive(self, *envelopes: SCPEnvelope) -> None:
        for env in envelopes:
            self.scp.receive_envelope(env)

    def receive_from(self, nodes: Iterable[int], make: Callable[[int], SCPEnvelope]) -> None:
        for i in nodes:
            self.scp.receive_envelope(make(i))

    def has_ballot_timer(self) -> bool:
        return self.driver.has_timer(self.slot, TimerId.BALLOT)

    def has_ballot_timer_upcoming(self) -> bool:
        return self.driver.has_timer_upcoming(self.slot, TimerId.BALLOT)

    def recv_vblocking(self, gen: Callable[[int], SCPEnvelope], with_checks: bool = True) -> None:
        """v1 then v2 (a v-blocking pair for 4-of-5): nothing after v1, exactly one emission after v2."""
        e1, e2 = gen(1), gen(2)
        self.driver.bump_timer_offset()
        i = len(self.emitted)
        self.scp.receive_envelope(e1)
        if with_checks:
            assert len(self.emitted) == i
        self.scp.receive_envelope(e2)
        if with_checks:
            assert len(self.emitted) == i + 1

    def recv_quorum_checks_ex(
        self, gen: Callable[[int], SCPEnvelope], with_checks: bool, delayed_quorum: bool, check_upcoming: bool
    ) -> None:
        """v1..v4: with v3 a quorum including us exists (v4 is extra, unless delayed)."""
        e1, e2, e3, e4 = gen(1), gen(2), gen(3), gen(4)
        self.driver.bump_timer_offset()
        self.scp.receive_envelope(e1)
        self.scp.receive_envelope(e2)
        i = len(self.emitted) + 1
        self.scp.receive_envelope(e3)
        if with_checks and not delayed_quorum:
            assert len(self.emitted) == i
        if check_upcoming and not delayed_quorum:
            assert self.has_ballot_timer_upcoming()
        self.scp.receive_envelope(e4)
        if with_checks and delayed_quorum:
            assert len(self.emitted) == i
        if check_upcoming and delayed_quorum:
            assert self.has_ballot_timer_upcoming()

    def recv_quorum_checks(self, gen: Callable[[int], SCPEnvelope], with_checks: bool, delayed: bool) -> None:
        self.recv_quorum_checks_ex(gen, with_checks, delayed, False)

    def recv_quorum_ex(self, gen: Callable[[int], SCPEnvelope], check_upcoming: bool) -> None:
        self.recv_quorum_checks_ex(gen, True, False, check_upcoming)

    def recv_quorum(self, gen: Callable[[int], SCPEnvelope]) -> None:
        self.recv_quorum_checks_ex(gen, True, False, False)

    def own_pledges(self) -> Any:
        """The local node's current ballot statement (recorded even when not emitted)."""
        env = self.scp.get_latest_message(self.local_id)
        return None if env is None else env.statement.pledges

    @property
    def emitted(self) -> list[SCPEnvelope]:
        return self.driver.emitted

    def emitted_pledges(self) -> list[Any]:
        return [e.statement.pledges for e in self.driver.emitted]

    def last_pledges(self) -> Any:
        return self.driver.emitted[-1].statement.pledges

    # -- expected statements of the local node -----------------------------

    def my_prepare(
        self,
        b: SCPBallot,
        p: SCPBallot | None = None,
        nc: int = 0,
        nh: int = 0,
        p_prime: SCPBallot | None = None,
    ) -> SCPPrepare:
        return SCPPrepare(self.qset_hash, b, p, p_prime, nc, nh)

    def my_confirm(self, b: SCPBallot, n_prepared: int, nc: int, nh: int) -> SCPConfirm:
        return SCPConfirm(b, n_prepared, nc, nh, self.qset_hash)

    def my_externalize(self, commit: SCPBallot, nh: int) -> SCPExternalize:
        return SCPExternalize(commit, nh, self.qset_hash)

    def my_nominate(self, votes: Iterable[bytes], accepted: Iterable[bytes] = ()) -> SCPNomination:
        return SCPNomination(self.qset_hash, tuple(sorted(votes)), tuple(sorted(accepted)))
