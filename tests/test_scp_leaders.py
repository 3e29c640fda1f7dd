"""Leader selection always ends, whatever the quorum set (issue 11, defect 1).

A node restarted with a 1-of-3 quorum set that includes itself spun forever
in ``_update_round_leaders``: normalised without the local node the threshold
is 0, every other node's weight is 0, and the loop kept looking for a new
leader that could never come. These tests drive the pure core with a driver
that counts leader-selection hashes and gives up (failing the test instead of
hanging it) far beyond what a bounded update may cost.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scp_harness import RecordingDriver, keypair

from scpd.base import quorum
from scpd.base.keys import Keypair
from scpd.base.types import NodeID, SCPQuorumSet
from scpd.scp import SCP, TimerId, ValidationLevel
from scpd.scp.nomination import MAX_FAST_TIMEOUTS, MAX_NEIGHBOR_TESTS, possible_leaders

POOL = [keypair(i).node_id for i in range(12)]
ME = POOL[0]
ROUNDS = 8  # nomination rounds driven per run (the first plus timeouts)
VALUE = b"value"


class Runaway(Exception):
    """Leader selection hashed far more than any bounded update can."""


@dataclass
class CountingDriver(RecordingDriver):
    hashes: int = 0
    limit: int = 0

    def compute_hash_node(
        self, slot_index: int, prev_value: bytes, is_priority: bool, round_number: int, node_id: NodeID
    ) -> int:
        self.hashes += 1
        if self.hashes > self.limit:
            raise Runaway(f"{self.hashes} leader-selection hashes")
        return super().compute_hash_node(slot_index, prev_value, is_priority, round_number, node_id)


def per_update_budget(qset: SCPQuorumSet) -> int:
    """Hashes one leader update may cost: a neighbor test and a priority per node per skipped round."""
    return 2 * MAX_FAST_TIMEOUTS * (len(quorum.all_validators(qset) | {ME}))


def run_rounds(qset: SCPQuorumSet, prev: bytes) -> tuple[SCP, CountingDriver, list[tuple[int, frozenset[NodeID]]]]:
    """Nominate, then expire the nomination timer ROUNDS - 1 times; (round, leaders) after each."""
    driver = CountingDriver(key=keypair(0), qsets={quorum.quorum_set_hash(qset): qset})
    driver.limit = ROUNDS * per_update_budget(qset)
    # Our value never becomes fully valid, so no candidate ends nomination:
    # every timeout runs one more round (as on a node restarted mid-slot).
    driver.validity[VALUE] = ValidationLevel.MAYBE_VALID
    scp = SCP(driver, ME, True, qset)
    history = []
    scp.nominate(0, VALUE, prev)
    for _ in range(ROUNDS):
        snap = scp.snapshot(0)
        assert snap is not None
        nom = snap["nomination"]
        history.append((nom["round"], frozenset(NodeID.from_strkey(s) for s in nom["round_leaders"])))
        if not driver.has_timer(0, TimerId.NOMINATION):
            break
        driver.fire_timer(0, TimerId.NOMINATION)
    return scp, driver, history


def test_one_of_three_including_self_keeps_nominating_round_after_round() -> None:
    qset = SCPQuorumSet(1, tuple(POOL[:3]))
    assert possible_leaders(qset, ME) == frozenset()
    _, driver, history = run_rounds(qset, b"prev")
    assert len(history) == ROUNDS  # every timeout ran its round and re-armed the timer
    assert all(leaders == {ME} for _, leaders in history)
    assert driver.has_timer(0, TimerId.NOMINATION)
    assert driver.hashes <= ROUNDS * 2 * 3  # nothing left to look for: no fast timeouts at all


def test_only_nodes_with_weight_are_looked_for() -> None:
    """2 of {me, a, 1-of-{b, c}} minus me: a and the inner set count, b and c share its weight."""
    a, b, c = POOL[1:4]
    qset = SCPQuorumSet(2, (ME, a), (SCPQuorumSet(1, (b, c)),))
    assert possible_leaders(qset, ME) == {a, b, c}
    inner_with_me = SCPQuorumSet(2, (a, b), (SCPQuorumSet(1, (ME, c)),))
    assert possible_leaders(inner_with_me, ME) == {a, b}  # c's inner set is satisfied by me alone


def test_a_large_set_skips_fewer_rounds_per_update() -> None:
    """2 of {me, a, 1 of 998}: a thousand nodes can lead, most with a tiny weight; updates stay cheap."""
    keys = [Keypair((i + 1).to_bytes(32, "big")).public_key for i in range(1000)]
    qset = SCPQuorumSet(2, (ME, keys[1]), (SCPQuorumSet(1, tuple(keys[2:])),))
    driver = CountingDriver(key=keypair(0), qsets={quorum.quorum_set_hash(qset): qset})
    driver.limit = 10**9
    driver.validity[VALUE] = ValidationLevel.MAYBE_VALID
    scp = SCP(driver, ME, True, qset)
    scp.nominate(0, VALUE, b"prev")
    for _ in range(20):
        before = driver.hashes
        driver.fire_timer(0, TimerId.NOMINATION)
        # Neighbor tests for at most MAX_NEIGHBOR_TESTS / 1000 rounds, a priority hash per neighbor.
        assert driver.hashes - before <= 2 * (MAX_NEIGHBOR_TESTS + len(keys))


@st.composite
def quorum_sets(draw: st.DrawFn) -> SCPQuorumSet:
    """Random nested k-of-n sets over POOL, any threshold 1..n (degenerate ones included)."""
    free = list(POOL)
    draw(st.randoms(use_true_random=False)).shuffle(free)
    if draw(st.booleans()):  # usually the local node is in its own set, sometimes not
        free.remove(ME)
        free.insert(0, ME)

    def level(depth: int) -> SCPQuorumSet:
        n_validators = draw(st.integers(0 if depth < 3 else 1, 4))
        validators = tuple(free.pop(0) for _ in range(min(n_validators, len(free))))
        n_inner = draw(st.integers(0, 2)) if depth < 3 else 0
        inner = tuple(level(depth + 1) for _ in range(n_inner) if free)
        if not validators and not inner:
            validators = (free.pop(0),) if free else (ME,)
        entries = len(validators) + len(inner)
        return SCPQuorumSet(draw(st.integers(1, entries)), validators, inner)

    return level(1)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(qset=quorum_sets(), prev=st.binary(min_size=1, max_size=8))
def test_leader_selection_terminates_and_is_deterministic(qset: SCPQuorumSet, prev: bytes) -> None:
    _, driver, history = run_rounds(qset, prev)
    assert driver.hashes <= ROUNDS * per_update_budget(qset)
    eligible = possible_leaders(qset, ME) | {ME}
    rounds = [r for r, _ in history]
    assert rounds == sorted(set(rounds))  # every timeout runs a later round
    for _, leaders in history:
        assert leaders <= eligible  # a node of weight 0 never leads
    assert history[-1][1]  # someone always leads (we do, with weight 1)
    assert history == run_rounds(qset, prev)[2]  # same inputs, same leaders, same rounds
