"""Safety, validity, liveness and conduct of the daemon's node core over many random seeds.

Every simulated node runs the node core (``scpd.nodecore``) around the SCP
core, exactly as the daemon does. Each seed fixes a whole run: the
topology's keys, a fault plan (latency distribution, loss until a heal time,
duplication, reordering, a partition that heals, a crash and restart, and the
node-layer faults: a failing disk, a crash between persist and send, lost
fetches and late tx sets) and Byzantine nodes up to what the topology
tolerates (any kind, the hostile peers of the hostile-peer issue included).
Every run is checked for all four properties (``scpd.sim.stats``); every
violation is reported with its seed and the ``scpd simulate`` command that
replays it.

CI runs 1,000 seeds (200 per network shape, small networks and 2 slots so the
whole file takes about a minute and a half of CPU); ``--slow`` or SCPD_SLOW=1
runs 10,000.

Liveness bound: every fault in a random plan ends by ~8 s of virtual time.
After that, nomination and ballot timeouts (1 s, 2 s, ... per round) let the
intact nodes converge within a few rounds per slot; LIVENESS_BOUND allows
30 s per slot after the heal time, about three times the worst seen while
the bound was chosen (21 s for both slots together over 1,100 seeds, most
runs finishing within a few seconds of the heal). Since the simulator runs
the node core (fetches, catch-up, node-layer faults), the worst over the
1,000 CI seeds is 10.9 s (seed 3000084).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from scpd.sim.network import Partition
from scpd.sim.scenario import Scenario, random_byzantine, random_faults
from scpd.sim.simulator import SimResult, run

SLOTS = 2
LIVENESS_BOUND = 30.0 * SLOTS
SHAPES = [("symmetric", 4), ("symmetric", 7), ("tiered", 9), ("cycle", 4), ("asymmetric", 6)]
SEEDS_PER_SHAPE = 200
SLOW_SEEDS_PER_SHAPE = 2000
HOSTILE_PEER_KINDS = ("untrusted-flood", "bad-signature", "far-future", "junk-tx-sets")


def scenario_for(seed: int, topology: str, nodes: int) -> Scenario:
    byzantine = random_byzantine(seed, topology, nodes)
    base = Scenario(topology=topology, nodes=nodes, slots=SLOTS, seed=seed, byzantine=byzantine)
    faults = random_faults(base)
    # Stop soon after the liveness deadline: a run that has not finished by then has failed.
    return replace(faults, time_limit=faults.heal_time + LIVENESS_BOUND + 1.0)


def violations(result: SimResult) -> list[str]:
    problems = [f"safety: {p}" for p in result.safety_violations()]
    problems += [f"validity: {p}" for p in result.validity_violations()]
    problems += [f"liveness: {p}" for p in result.liveness_violations(LIVENESS_BOUND)]
    problems += [f"conduct: {p}" for p in result.conduct_violations()]
    return problems


def report(failures: list[tuple[Scenario, list[str]]]) -> str:
    lines = [f"{len(failures)} seed(s) violated a property:"]
    for scenario, problems in failures:
        lines.append(f"seed {scenario.seed}: replay with: {scenario.replay_command()}")
        lines.extend(f"    {p}" for p in problems[:5])
    return "\n".join(lines)


@pytest.mark.timeout(7200)  # the 2,000-seed slow mode of one shape can outlast the suite's 600 s default
@pytest.mark.parametrize(("topology", "nodes"), SHAPES, ids=[f"{t}-{n}" for t, n in SHAPES])
def test_safety_validity_liveness_over_random_seeds(topology: str, nodes: int, slow: bool) -> None:
    count = SLOW_SEEDS_PER_SHAPE if slow else SEEDS_PER_SHAPE
    offset = SHAPES.index((topology, nodes)) * 1_000_000
    failures = []
    byzantine_runs = hostile_runs = faulty_runs = node_faulty_runs = 0
    for seed in range(offset, offset + count):
        scenario = scenario_for(seed, topology, nodes)
        byzantine_runs += bool(scenario.byzantine)
        hostile_runs += any(kind in HOSTILE_PEER_KINDS for kind, _ in scenario.byzantine)
        faulty_runs += bool(scenario.partitions or scenario.loss or scenario.crashes)
        node_faulty_runs += bool(scenario.faults)
        try:
            problems = violations(run(scenario))
        except Exception as exc:  # the core refusing its own state is a failure to replay too
            problems = [f"exception: {type(exc).__name__}: {exc}"]
        if problems:
            failures.append((scenario, problems))
            print(report(failures[-1:]))
    assert not failures, report(failures)
    # The seeds really exercised faults (and Byzantine nodes where the shape tolerates some).
    assert faulty_runs > count // 2
    assert node_faulty_runs > count // 3
    if topology != "cycle":
        assert byzantine_runs > count // 3
        assert hostile_runs > count // 10


def test_a_violation_is_reported_with_seed_and_replay_command() -> None:
    """4 nodes, 2-of-4 slices, split in two halves for the whole run: they disagree."""
    halves = (frozenset({0, 1}), frozenset({2, 3}))
    scenario = Scenario(nodes=4, threshold=2, slots=1, seed=42, partitions=(Partition(0.0, 1000.0, halves),))
    result = run(scenario)
    problems = violations(result)
    assert any(p.startswith("safety: slot 1: honest nodes disagree") for p in problems)
    text = report([(scenario, problems)])
    assert (
        "seed 42: replay with: scpd simulate --nodes 4 --topology symmetric --slots 1 --threshold 2 --seed 42" in text
    )
    assert "--partition 0:1000:0,1/2,3" in text
