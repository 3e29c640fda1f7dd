"""Hand-written simulator scenarios: each Byzantine kind, partitions, loss, crashes, shapes, cadence."""

from __future__ import annotations

import pytest

from scpd.base.types import SCPEnvelope, SCPPrepare
from scpd.nodecore.values import ConsensusValue
from scpd.sim.byzantine import COUNTER_JUMP, ByzantineNode, EquivocatingNode
from scpd.sim.network import Constant, Partition, Uniform
from scpd.sim.scenario import BYZANTINE_KIND_NAMES, Crash, Scenario
from scpd.sim.simulator import SimResult, Simulation, run
from scpd.sim.stats import Recorder


def assert_good(result: SimResult, bound: float = 60.0) -> None:
    replay = result.scenario.replay_command()
    assert result.safety_violations() == [], replay
    assert result.validity_violations() == [], replay
    assert result.liveness_violations(bound) == [], replay
    assert result.conduct_violations() == [], replay
    assert result.completed, replay


def voted_tx_sets(result: SimResult, slot: int) -> set[bytes]:
    return {ConsensusValue.from_xdr(v).tx_set_hash for v in result.recorder.voted[slot]}


def decided_tx_sets(result: SimResult) -> set[bytes]:
    values = result.externalized_values().values()
    return {ConsensusValue.from_xdr(v).tx_set_hash for per_node in values for v in per_node.values()}


def seven(byzantine: tuple[tuple[str, int], ...] = (), **kw: object) -> Scenario:
    settings: dict[str, object] = {"slots": 3, "latency": Uniform(0.01, 0.2), **kw}
    return Scenario(nodes=7, seed=7, byzantine=byzantine, **settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", BYZANTINE_KIND_NAMES)
def test_each_byzantine_kind_at_the_tolerated_count_cannot_break_consensus(kind: str) -> None:
    result = run(seven(((kind, 2),), loss=0.1, loss_until=3.0, reorder=0.2))
    assert len(result.byzantine) == 2 == result.topology.byzantine_tolerance
    assert len(result.intact) == 5
    assert_good(result)


def test_equivocating_node_really_sends_both_of_its_values_and_is_reported() -> None:
    sim = Simulation(seven((("equivocate", 1),)))
    result = sim.run()
    (bad,) = result.byzantine
    node = sim.nodes[bad]
    assert isinstance(node, EquivocatingNode)
    voted = voted_tx_sets(result, 1)
    assert voted & set(node.forged) and voted & set(node.other.forged)
    # The first peer hears both personas: its node core reports the equivocation.
    assert node.node_id in result.recorder.accused[node.targets[0]]
    assert_good(result)


def test_values_nobody_nominated_are_never_externalized_and_malformed_ones_are_rejected() -> None:
    sim = Simulation(seven((("unnominated", 2),)))
    result = sim.run()
    liars = [node for node in sim.nodes if isinstance(node, ByzantineNode)]
    forged = {h for node in liars for h in node.forged}
    assert forged
    assert decided_tx_sets(result) and not decided_tx_sets(result) & forged
    assert not forged & set().union(*(voted_tx_sets(result, s) for s in (1, 2, 3)))
    assert result.recorder.rejected["invalid"] > 0
    assert_good(result)


def test_a_higher_counter_than_anyone_does_not_drag_honest_nodes_along(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two nodes out of 7 are no v-blocking set: while every honest node is still
    in PREPARE they stay at their own counters. (Once honest nodes CONFIRM, their
    implicit votes for every counter of the value, together with the liars'
    ballots, may legitimately lift counters of the already committed value.)"""
    phases: dict[int, set[str]] = {}
    early_counters: list[int] = []
    original = Recorder.sent

    def sent(self: Recorder, node: int, envelope: SCPEnvelope, copies: int, honest: bool) -> None:
        st = envelope.statement
        kind = type(st.pledges).__name__
        if honest:
            seen = phases.setdefault(st.slot_index, set())
            if isinstance(st.pledges, SCPPrepare) and seen <= {"SCPNomination", "SCPPrepare"}:
                early_counters.append(st.pledges.ballot.counter)
            seen.add(kind)
        original(self, node, envelope, copies, honest)

    monkeypatch.setattr(Recorder, "sent", sent)
    result = run(seven((("high-counter", 2),), slots=2))
    assert early_counters and max(early_counters) < COUNTER_JUMP
    assert_good(result)


def test_partition_without_a_quorum_on_either_side_stalls_then_heals() -> None:
    cut = Partition(0.0, 6.0, (frozenset({0, 1, 2, 3}), frozenset({4, 5, 6})))
    result = run(seven(partitions=(cut,)))
    times = [t for per_node in result.recorder.externalized.values() for _, t in per_node.values()]
    assert min(times) >= 6.0
    assert_good(result)


def test_minority_cut_off_catches_up_after_the_partition_heals() -> None:
    cut = Partition(0.0, 8.0, (frozenset({0, 1, 2, 3, 4}), frozenset({5, 6})))
    result = run(seven(partitions=(cut,)))
    ext = result.recorder.externalized
    assert all(ext[n][3][1] < 8.0 for n in range(5)), "the majority holds a quorum and keeps going"
    assert all(ext[n][1][1] >= 8.0 for n in (5, 6))
    assert_good(result)


def test_heavy_loss_duplication_and_reordering_until_a_heal_time() -> None:
    result = run(seven(loss=0.4, loss_until=5.0, duplicate=0.3, reorder=0.5))
    assert result.network["lost"] > 0 and result.network["duplicated"] > 0
    assert_good(result)


def test_crashed_node_restarts_from_its_persisted_envelopes_and_catches_up() -> None:
    result = run(seven(crashes=(Crash(2, 0.05, 4.0),), latency=Constant(0.02)))
    assert result.recorder.rejected["node_down"] > 0
    assert set(result.externalized_values()[2]) == {1, 2, 3}
    assert result.recorder.contradictions == []
    assert_good(result)


def test_node_down_for_good_is_not_counted_as_intact() -> None:
    result = run(seven(crashes=(Crash(6, 0.0, None),)))
    assert 6 not in result.intact and len(result.intact) == 6
    assert_good(result)


@pytest.mark.parametrize(
    ("topology", "nodes", "byzantine"),
    [
        ("tiered", 21, (("equivocate", 1), ("silent", 1))),
        ("cycle", 6, ()),
        ("asymmetric", 16, (("high-counter", 1),)),
        ("symmetric", 16, (("replay", 2), ("unnominated", 3))),
    ],
)
def test_network_shapes_decide_together(topology: str, nodes: int, byzantine: tuple[tuple[str, int], ...]) -> None:
    scenario = Scenario(topology=topology, nodes=nodes, slots=2, seed=3, byzantine=byzantine)
    result = run(scenario)
    assert len(result.byzantine) <= result.topology.byzantine_tolerance
    assert_good(result)


def test_slot_cadence_waits_for_the_interval_and_for_the_previous_slot() -> None:
    result = run(Scenario(nodes=4, slots=3, seed=1, slot_interval=5.0))
    rec = result.recorder
    for n in range(4):
        started = {slot: rec.externalized[n][slot][1] - rec.latency[n][slot] for slot in (1, 2, 3)}
        assert started[2] - started[1] >= 5.0 - 1e-9 and started[3] - started[2] >= 5.0 - 1e-9
        assert started[2] >= rec.externalized[n][1][1]
    assert_good(result)


def test_unhealed_partition_is_reported_as_a_liveness_violation() -> None:
    cut = Partition(0.0, 1e9, (frozenset({0, 1, 2}), frozenset({3, 4, 5, 6})))
    result = run(Scenario(nodes=7, slots=1, seed=2, partitions=(cut,), time_limit=30.0))
    assert not result.completed
    assert result.liveness_violations(10.0)
    assert result.safety_violations() == []


def test_simulation_object_exposes_nodes_and_intact_set() -> None:
    sim = Simulation(seven((("silent", 1),)))
    assert len(sim.nodes) == 7 and sum(1 for n in sim.nodes if not n.honest) == 1
    assert len(sim.intact) == 6
