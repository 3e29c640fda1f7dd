"""The analysis agrees with brute force (every subset enumerated) on random small networks."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable

import pytest

from scpd.analysis.blocking import minimal_hitting_sets
from scpd.analysis.engine import Engine
from scpd.analysis.fbas import Fbas, Node, QSet
from scpd.analysis.quorums import Budget, SearchTooLarge, disjoint_quorums, minimal_quorums, top_tier
from scpd.analysis.report import analyze
from scpd.analysis.splitting import minimal_splitting_sets

Set = frozenset[int]


def random_qset(rng: random.Random, n: int, depth: int) -> QSet:
    validators = tuple(f"n{v}" for v in rng.sample(range(n + 1), rng.randint(0, min(n + 1, 4))))  # n+1: unknown
    inner = tuple(random_qset(rng, n, depth + 1) for _ in range(rng.randint(0, 2) if depth < 3 else 0))
    entries = len(validators) + len(inner)
    threshold = rng.choice([0, entries + 1]) if rng.random() < 0.05 else rng.randint(1, max(entries, 1))
    return QSet(threshold, validators, inner)


def random_fbas(seed: int) -> Fbas:
    rng = random.Random(seed)
    n = rng.randint(1, 6)
    nodes = []
    for i in range(n):
        qset = None if rng.random() < 0.1 else random_qset(rng, n, 1)
        nodes.append(Node(f"n{i}", qset))
    return Fbas(tuple(nodes))


# --- the brute-force reference: plain sets, no bitsets, no pruning ---


def sat(q: QSet, present: set[str]) -> bool:
    count = sum(1 for v in q.validators if v in present) + sum(1 for i in q.inner_sets if sat(i, present))
    return count >= q.threshold


def subsets(items: Iterable[int]) -> list[Set]:
    items = list(items)
    return [frozenset(c) for r in range(len(items) + 1) for c in itertools.combinations(items, r)]


def quorums(fbas: Fbas, deleted: Set = frozenset()) -> list[Set]:
    out = []
    for q in subsets(i for i in range(len(fbas)) if i not in deleted):
        present = {fbas.nodes[i].key for i in q | deleted}
        nodes = [fbas.nodes[i] for i in q]
        if q and all(node.qset is not None and sat(node.qset, present) for node in nodes):
            out.append(q)
    return out


def minimal(sets: Iterable[Set]) -> set[Set]:
    sets = set(sets)
    return {s for s in sets if not any(t < s for t in sets)}


def brute(fbas: Fbas) -> dict[str, object]:
    qs = quorums(fbas)
    everyone = range(len(fbas))
    intersection = bool(qs) and all(a & b for a, b in itertools.combinations(qs, 2))
    blocking = [b for b in subsets(everyone) if not any(not q & b for q in qs)] if qs else []
    splitting = []
    for s in subsets(everyone):
        sq = quorums(fbas, s)
        if any(not a & b for a, b in itertools.combinations(sq, 2)):
            splitting.append(s)
    mq = minimal(qs)
    return {
        "intersection": intersection,
        "minimal_quorums": mq,
        "top_tier": frozenset().union(*mq),
        "blocking": minimal(blocking),
        "splitting": minimal(splitting),
    }


def as_sets(engine: Engine, masks: Iterable[int]) -> set[Set]:
    return {engine.to_original(m) for m in masks}


SEEDS = range(400)


@pytest.mark.parametrize("seed", SEEDS)
def test_engine_matches_brute_force(seed: int) -> None:
    fbas = random_fbas(seed)
    expected = brute(fbas)
    engine = Engine.build(fbas)
    mq = minimal_quorums(engine)
    assert as_sets(engine, mq) == expected["minimal_quorums"]
    assert len(mq) == len(expected["minimal_quorums"])  # each found once
    assert engine.to_original(top_tier(engine)) == expected["top_tier"]
    pair = disjoint_quorums(engine)
    has_quorum = bool(expected["minimal_quorums"])
    assert (has_quorum and pair is None) == expected["intersection"]
    if pair is not None:
        a, b = (engine.to_original(m) for m in pair)
        assert not a & b
        assert a in expected["minimal_quorums"] and b in expected["minimal_quorums"]
    blocking = minimal_hitting_sets(mq) if mq else []
    assert as_sets(engine, blocking) == expected["blocking"]
    assert len(blocking) == len(expected["blocking"])
    assert as_sets(engine, minimal_splitting_sets(engine)) == expected["splitting"]


@pytest.mark.parametrize("seed", range(0, 400, 4))
def test_report_matches_brute_force(seed: int) -> None:
    fbas = random_fbas(seed)
    expected = brute(fbas)
    result = analyze(fbas)
    assert result.has_quorum_intersection == expected["intersection"]
    assert result.top_tier == expected["top_tier"]
    assert result.minimal_quorums is not None and result.minimal_blocking_sets is not None
    assert set(result.minimal_quorums.sets) == expected["minimal_quorums"]
    assert set(result.minimal_blocking_sets.sets) == expected["blocking"]
    # The report searches splitting sets inside the top tier: brute force over that sub-network.
    tier = Fbas(
        tuple(fbas.nodes[i] if i in expected["top_tier"] else Node(fbas.nodes[i].key, None) for i in range(len(fbas)))
    )
    assert result.minimal_splitting_sets is not None
    if expected["intersection"]:
        tier_splitting = brute(tier)["splitting"]
        assert set(result.minimal_splitting_sets.sets) == {s for s in tier_splitting if s <= expected["top_tier"]}
    elif expected["minimal_quorums"]:
        assert result.minimal_splitting_sets.sets == (frozenset(),)


def symmetric(n: int) -> Engine:
    names = tuple(f"n{i}" for i in range(n))
    return Engine.build(Fbas(tuple(Node(k, QSet(n - (n - 1) // 3, names, ())) for k in names)))


def test_the_top_tier_of_a_symmetric_network_is_found_without_listing_its_minimal_quorums() -> None:
    # 25 validators, 17 of 25: C(25, 17) = 1,081,575 minimal quorums, a node asked for its top tier
    # every time a quorum set changes; skipping branches that cannot add a node finds it in a few dozen.
    engine = symmetric(25)
    budget = Budget(100)
    assert top_tier(engine, budget=budget) == engine.capable
    assert disjoint_quorums(engine, budget=budget) is None


def test_a_search_past_its_budget_stops_with_search_too_large() -> None:
    engine = symmetric(12)
    with pytest.raises(SearchTooLarge):
        minimal_quorums(engine, budget=Budget(500))
    with pytest.raises(SearchTooLarge):
        top_tier(engine, budget=Budget(3))
    with pytest.raises(SearchTooLarge):
        disjoint_quorums(engine, budget=Budget(2))
    assert len(minimal_quorums(engine)) == 220  # C(12, 9): the unbounded search still lists them all


def test_random_networks_cover_the_interesting_cases() -> None:
    """The generator must produce both outcomes, nesting, and non-trivial splitting sets."""
    outcomes = [brute(random_fbas(seed)) for seed in SEEDS]
    assert any(o["intersection"] for o in outcomes)
    assert any(not o["intersection"] and o["minimal_quorums"] for o in outcomes)
    assert any(any(len(s) >= 2 for s in o["splitting"]) for o in outcomes)  # type: ignore[attr-defined]
    assert any(random_fbas(seed).nodes[0].qset and random_fbas(seed).nodes[0].qset.inner_sets for seed in SEEDS)


def symmetric_fbas(seed: int) -> Fbas:
    """Organisations of interchangeable nodes sharing one quorum set (twins), plus a random outsider."""
    rng = random.Random(seed)
    orgs, per_org = rng.choice([(2, 2), (3, 2), (2, 3)])
    names = [[f"n{o * per_org + i}" for i in range(per_org)] for o in range(orgs)]
    inner = tuple(QSet(rng.randint(1, per_org), tuple(org)) for org in names)
    shared = QSet(rng.randint(1, orgs), (), inner)
    nodes = [Node(key, shared) for org in names for key in org]
    n = len(nodes)
    nodes.append(Node(f"n{n}", random_qset(rng, n, 1)))
    return Fbas(tuple(nodes))


@pytest.mark.parametrize("seed", range(60))
def test_splitting_sets_with_twins_match_brute_force(seed: int) -> None:
    fbas = symmetric_fbas(seed)
    expected = brute(fbas)
    engine = Engine.build(fbas)
    assert as_sets(engine, minimal_quorums(engine)) == expected["minimal_quorums"]
    assert (bool(expected["minimal_quorums"]) and disjoint_quorums(engine) is None) == expected["intersection"]
    assert as_sets(engine, minimal_splitting_sets(engine)) == expected["splitting"]


def test_symmetric_networks_do_have_twins() -> None:
    from scpd.analysis.splitting import _twins

    with_twins = 0
    for seed in range(60):
        engine = Engine.build(symmetric_fbas(seed))
        with_twins += bool(_twins(engine, engine.capable, list(range(engine.size))))
    assert with_twins >= 20
