"""Topologies keep their promise: with up to ``byzantine_tolerance`` faulty nodes
among the candidates, every two honest nodes are intertwined and the honest
nodes form a quorum (they are intact). Checked by brute force over every
node subset on small instances, with a checker that is itself shown to catch
a network that lacks quorum intersection."""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations

import pytest

from scpd.base import quorum
from scpd.base.types import SCPQuorumSet
from scpd.errors import UsageError
from scpd.sim import topology as topo


def _bitmask_slice(qset: SCPQuorumSet, index_of: dict[bytes, int]) -> Callable[[int], bool]:
    """Compile a quorum set to a fast predicate over node bitmasks."""
    vals = [1 << index_of[v.ed25519] for v in qset.validators]
    inner = [_bitmask_slice(q, index_of) for q in qset.inner_sets]
    t = qset.threshold

    def sat(mask: int) -> bool:
        n = sum(1 for b in vals if mask & b) + sum(1 for f in inner if f(mask))
        return n >= t

    return sat


def honest_intersection_problems(t: topo.Topology, byzantine: frozenset[int]) -> list[str]:
    n = t.size
    index_of = {k.public_key.ed25519: i for i, k in enumerate(t.keys)}
    sats = [_bitmask_slice(q, index_of) for q in t.qsets]
    honest = [i for i in range(n) if i not in byzantine]
    honest_mask = sum(1 << i for i in honest)
    problems = []
    for i in honest:
        if not sats[i](honest_mask):
            problems.append(f"honest nodes are no quorum for node {i}")
    quorums = []
    for mask in range(1, 1 << n):
        members = [i for i in honest if mask >> i & 1]
        if members and all(sats[i](mask) for i in members):
            quorums.append(mask)
    quorums.sort(key=lambda m: m.bit_count())
    minimal: list[int] = []
    for q in quorums:
        if not any(m & q == m for m in minimal):
            minimal.append(q)
    for a, b in combinations(minimal, 2):
        if not a & b & honest_mask:
            problems.append(f"quorums {a:b} and {b:b} share no honest node")
    return problems


def worst_cases(t: topo.Topology) -> list[frozenset[int]]:
    """Every Byzantine set of the largest tolerated size (more faults are never safer)."""
    return [frozenset(c) for c in combinations(t.byzantine_candidates, t.byzantine_tolerance)]


CASES = [
    topo.symmetric(4, seed=1),
    topo.symmetric(7, seed=1),
    topo.symmetric(10, seed=1),
    topo.symmetric(6, seed=1, threshold=5),
    topo.tiered(9, seed=1),
    topo.tiered(12, seed=1),
    topo.cycle(5, seed=1),
    *(topo.asymmetric(n, seed=s) for n in (4, 6, 9, 11) for s in (1, 2, 3)),
]


@pytest.mark.parametrize("t", CASES, ids=lambda t: f"{t.name}-{t.size}-tol{t.byzantine_tolerance}")
def test_tolerated_byzantine_sets_leave_honest_nodes_intact(t: topo.Topology) -> None:
    for byz in worst_cases(t):
        assert honest_intersection_problems(t, byz) == [], f"byzantine {sorted(byz)}"


def test_checker_catches_missing_intersection_and_exceeded_tolerance() -> None:
    halves = topo.symmetric(4, seed=1, threshold=2)
    assert halves.byzantine_tolerance == 0
    assert any("share no honest node" in p for p in honest_intersection_problems(halves, frozenset()))
    seven = topo.symmetric(7, seed=1)
    assert seven.byzantine_tolerance == 2
    assert honest_intersection_problems(seven, frozenset({0, 1, 2}))


def test_shapes_match_their_description() -> None:
    t = topo.tiered(21, seed=3)
    assert t.byzantine_tolerance == 2
    q = t.qsets[0]
    assert q.threshold == 5 and len(q.inner_sets) == 7 and not q.validators
    assert all(inner.threshold == 2 and len(inner.validators) == 3 for inner in q.inner_sets)
    s = topo.symmetric(100, seed=3)
    assert s.qsets[0].threshold == 67 and s.byzantine_tolerance == 33
    assert [topo.bft_threshold(n) for n in (4, 16, 50, 100)] == [3, 11, 34, 67]
    c = topo.cycle(4, seed=3)
    ids = c.node_ids
    assert c.qsets[3] == SCPQuorumSet(2, (ids[3], ids[0]))
    a = topo.asymmetric(20, seed=3)
    assert len(set(a.qsets)) > 2 and set(a.byzantine_candidates) == set(range(10))
    for t in (topo.build(name, 12, seed=5) for name in topo.TOPOLOGIES):
        for qs in t.qsets:
            quorum.check_sanity(qs)


def test_same_seed_same_keys_other_seed_other_keys() -> None:
    assert topo.symmetric(4, seed=9).node_ids == topo.symmetric(4, seed=9).node_ids
    assert topo.symmetric(4, seed=9).node_ids != topo.symmetric(4, seed=10).node_ids
    assert topo.asymmetric(12, seed=9).qsets == topo.asymmetric(12, seed=9).qsets


@pytest.mark.parametrize(
    ("name", "n"), [("tiered", 10), ("cycle", 1), ("asymmetric", 3), ("symmetric", 0), ("mesh", 4)]
)
def test_impossible_shapes_are_usage_errors(name: str, n: int) -> None:
    with pytest.raises(UsageError):
        topo.build(name, n, seed=1)
