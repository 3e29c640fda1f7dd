"""Quorum predicates against brute-force references that enumerate every slice.

The compiled form (``SlicePredicate``) and the quorum closure (``max_quorum``)
are checked against the same references.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from scpd.base.quorum import (
    SlicePredicate,
    all_validators,
    check_sanity,
    closest_v_blocking,
    find_quorum,
    is_quorum,
    is_quorum_slice,
    is_v_blocking,
    max_quorum,
    node_weight,
    normalize,
    quorum_set_hash,
    sanity_violations,
    singleton_quorum_set,
)
from scpd.base.types import PublicKey, SCPQuorumSet
from scpd.errors import QuorumSetError

NODES = [PublicKey(bytes([i]) * 32) for i in range(7)]


def subsets(pool: list[PublicKey]) -> list[frozenset[PublicKey]]:
    return [frozenset(c) for r in range(len(pool) + 1) for c in itertools.combinations(pool, r)]


ALL_SUBSETS = subsets(NODES)


def slices(qset: SCPQuorumSet) -> set[frozenset[PublicKey]]:
    """Every slice, built literally: pick `threshold` entries, union one slice of each."""
    entries: list[set[frozenset[PublicKey]]] = [{frozenset([v])} for v in qset.validators]
    entries += [slices(inner) for inner in qset.inner_sets]
    result: set[frozenset[PublicKey]] = set()
    for chosen in itertools.combinations(entries, qset.threshold):
        for parts in itertools.product(*chosen):
            result.add(frozenset().union(*parts))
    return result


def ref_is_slice(qset: SCPQuorumSet, nodes: frozenset[PublicKey]) -> bool:
    return any(s <= nodes for s in slices(qset))


def ref_is_v_blocking(qset: SCPQuorumSet, nodes: frozenset[PublicKey]) -> bool:
    return all(s & nodes for s in slices(qset))


def ref_weight(qset: SCPQuorumSet, node: PublicKey) -> Fraction:
    """Probability that `node` is in a slice drawn by picking `threshold` entries uniformly at each level."""
    entries: list[PublicKey | SCPQuorumSet] = [*qset.validators, *qset.inner_sets]
    combos = list(itertools.combinations(entries, qset.threshold))
    total = Fraction(0)
    for chosen in combos:
        hit = Fraction(0)
        for e in chosen:
            if e == node:
                hit = Fraction(1)
            elif isinstance(e, SCPQuorumSet) and node in all_validators(e):
                hit = ref_weight(e, node)
        total += hit
    return total / len(combos)


@st.composite
def qsets(draw: st.DrawFn, depth: int = 1, pool: list[PublicKey] | None = None) -> SCPQuorumSet:
    """Sane quorum sets over NODES, no validator twice, up to 3 levels."""
    if pool is None:
        pool = list(draw(st.permutations(NODES)))
    n_validators = draw(st.integers(0, min(3, len(pool))))
    validators = tuple(pool.pop() for _ in range(n_validators))
    inner: list[SCPQuorumSet] = []
    if depth < 3:
        for _ in range(draw(st.integers(0, 2))):
            if pool:
                inner.append(draw(qsets(depth + 1, pool)))
    if not validators and not inner:
        validators = (pool.pop(),) if pool else (NODES[0],)
    entries = len(validators) + len(inner)
    return SCPQuorumSet(draw(st.integers(1, entries)), validators, tuple(inner))


def test_flat_three_of_four() -> None:
    q = SCPQuorumSet(3, tuple(NODES[:4]))
    assert is_quorum_slice(q, set(NODES[:3]))
    assert not is_quorum_slice(q, set(NODES[:2]))
    assert is_v_blocking(q, set(NODES[:2]))
    assert not is_v_blocking(q, {NODES[0]})


def test_threshold_zero_is_trivially_satisfied_and_never_blocked() -> None:
    q = SCPQuorumSet(0, (NODES[0],))
    assert is_quorum_slice(q, set())
    assert not is_v_blocking(q, set(NODES))


@settings(max_examples=150, deadline=None)
@given(qsets())
def test_slice_and_v_blocking_match_brute_force(q: SCPQuorumSet) -> None:
    all_slices = slices(q)
    for s in ALL_SUBSETS:
        assert is_quorum_slice(q, s) == any(sl <= s for sl in all_slices), s
        assert is_v_blocking(q, s) == all(sl & s for sl in all_slices), s


@settings(max_examples=150, deadline=None)
@given(qsets())
def test_compiled_predicate_answers_as_the_reference(q: SCPQuorumSet) -> None:
    compiled = SlicePredicate(q)
    for s in ALL_SUBSETS:
        assert compiled.satisfied_by(s) == is_quorum_slice(q, s), s
        assert compiled.blocked_by(s) == is_v_blocking(q, s), s


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_find_quorum_is_the_union_of_all_quorums(data: st.DataObject) -> None:
    pool = NODES[:5]
    assigned = {n: data.draw(qsets()) for n in pool}
    local = data.draw(qsets())
    candidates = data.draw(st.sets(st.sampled_from(pool), min_size=1))

    def qset_of(n: PublicKey) -> SCPQuorumSet | None:
        return assigned.get(n)

    quorums = [s for s in subsets(sorted(candidates)) if s and all(ref_is_slice(assigned[m], s) for m in s)]
    union = frozenset().union(*quorums) if quorums else frozenset()
    expected = union if ref_is_slice(local, union) else frozenset()
    assert max_quorum(candidates, qset_of) == union
    assert find_quorum(local, candidates, qset_of) == expected
    assert is_quorum(local, candidates, qset_of) == bool(expected)


def test_unknown_quorum_set_drops_the_node() -> None:
    q = SCPQuorumSet(2, tuple(NODES[:2]))
    known = {NODES[0]: q}
    assert not is_quorum(q, set(NODES[:2]), known.get)
    known[NODES[1]] = q
    assert find_quorum(q, set(NODES[:3]), known.get) == frozenset(NODES[:2])


@settings(max_examples=150, deadline=None)
@given(qsets())
def test_weight_matches_the_slice_drawing_probability(q: SCPQuorumSet) -> None:
    for n in NODES:
        assert node_weight(q, n) == ref_weight(q, n)
    assert node_weight(q, NODES[0], local_node=NODES[0]) == 1


def test_weight_of_nested_member_is_product_of_ratios() -> None:
    inner = SCPQuorumSet(2, tuple(NODES[3:6]))
    q = SCPQuorumSet(2, (NODES[0], NODES[1]), (inner,))
    assert node_weight(q, NODES[0]) == Fraction(2, 3)
    assert node_weight(q, NODES[4]) == Fraction(2, 3) * Fraction(2, 3)
    assert node_weight(q, NODES[6]) == 0


@settings(max_examples=150, deadline=None)
@given(qsets())
def test_normalize_preserves_the_predicate(q: SCPQuorumSet) -> None:
    norm = normalize(q)
    assert normalize(norm) == norm
    for s in ALL_SUBSETS:
        assert is_quorum_slice(norm, s) == is_quorum_slice(q, s)


@settings(max_examples=150, deadline=None)
@given(qsets(), st.sampled_from(NODES))
def test_normalize_removing_a_node_treats_it_as_present(q: SCPQuorumSet, removed: PublicKey) -> None:
    norm = normalize(q, remove=removed)
    assert removed not in all_validators(norm)
    for s in ALL_SUBSETS:
        assert is_quorum_slice(norm, s - {removed}) == is_quorum_slice(q, s | {removed})


def test_normalize_collapses_and_sorts() -> None:
    a, b, c = NODES[2], NODES[1], NODES[0]
    q = SCPQuorumSet(1, (), (SCPQuorumSet(2, (a, b, c)),))
    assert normalize(q) == SCPQuorumSet(2, (c, b, a))
    nested = SCPQuorumSet(2, (a,), (SCPQuorumSet(1, (b,)), SCPQuorumSet(1, (c,))))
    assert normalize(nested) == SCPQuorumSet(2, (c, b, a))


def test_hash_is_sha256_of_xdr_and_differs_by_content() -> None:
    import hashlib

    q = SCPQuorumSet(2, tuple(NODES[:3]))
    assert quorum_set_hash(q) == hashlib.sha256(q.to_xdr()).digest()
    assert quorum_set_hash(q) != quorum_set_hash(SCPQuorumSet(3, tuple(NODES[:3])))


def test_singleton_is_satisfied_only_by_its_node() -> None:
    q = singleton_quorum_set(NODES[0])
    assert is_quorum_slice(q, {NODES[0]})
    assert not is_quorum_slice(q, set(NODES[1:]))


@pytest.mark.parametrize(
    ("qset", "name"),
    [
        (SCPQuorumSet(0, tuple(NODES[:2])), "threshold-zero"),
        (SCPQuorumSet(3, tuple(NODES[:2])), "threshold-above-entries"),
        (SCPQuorumSet(1, ()), "no-validators"),
        (SCPQuorumSet(2, (NODES[0], NODES[0])), "duplicate-validator"),
        (SCPQuorumSet(1, (NODES[0],), (SCPQuorumSet(1, (NODES[0],)),)), "duplicate-validator"),
        (
            SCPQuorumSet(
                1,
                (),
                (SCPQuorumSet(1, (), (SCPQuorumSet(1, (), (SCPQuorumSet(1, (), (SCPQuorumSet(1, (NODES[0],)),)),)),)),),
            ),
            "nesting-too-deep",
        ),
        (SCPQuorumSet(1, tuple(PublicKey(i.to_bytes(32, "big")) for i in range(1001))), "too-many-validators"),
    ],
)
def test_each_sanity_rule_is_reported_by_name(qset: SCPQuorumSet, name: str) -> None:
    assert name in {v.name for v in sanity_violations(qset)}
    with pytest.raises(QuorumSetError, match=name):
        check_sanity(qset)


def test_majority_rule_only_with_extra_checks() -> None:
    q = SCPQuorumSet(2, tuple(NODES[:4]))
    assert sanity_violations(q) == []
    assert [v.name for v in sanity_violations(q, extra_checks=True)] == ["threshold-not-majority"]


@settings(max_examples=100, deadline=None)
@given(qsets())
def test_generated_sets_are_sane(q: SCPQuorumSet) -> None:
    check_sanity(q)


def test_four_levels_are_allowed() -> None:
    q = SCPQuorumSet(1, (), (SCPQuorumSet(1, (), (SCPQuorumSet(1, (), (SCPQuorumSet(1, (NODES[0],)),)),)),))
    assert sanity_violations(q) == []


def ref_closest_v_blocking(
    qset: SCPQuorumSet, alive: frozenset[PublicKey], excluded: PublicKey | None
) -> frozenset[PublicKey] | None:
    """The smallest subset of ``alive`` whose failure, with every node outside ``alive``, blocks ``qset``.

    ``excluded`` never fails, alive or not.
    """
    failed = frozenset(NODES) - alive - {excluded}
    for candidate in subsets(sorted(alive - failed - {excluded})):
        if ref_is_v_blocking(qset, failed | candidate):
            return candidate
    return None


@settings(max_examples=300, deadline=None)
@given(qsets(), st.sets(st.sampled_from(NODES)), st.none() | st.sampled_from(NODES))
def test_closest_v_blocking_is_a_smallest_blocking_set(
    q: SCPQuorumSet, alive: set[PublicKey], excluded: PublicKey | None
) -> None:
    assume(not sanity_violations(q))
    got = closest_v_blocking(q, alive, excluded)
    want = ref_closest_v_blocking(q, frozenset(alive), excluded)
    if want is None:
        assert got is None
        return
    assert got is not None
    assert len(got) == len(want)
    assert got <= alive and excluded not in got
    assert ref_is_v_blocking(q, (frozenset(NODES) - frozenset(alive) - {excluded}) | got)


def test_closest_v_blocking_of_a_nested_set() -> None:
    a, b, c, d, e, f, g = NODES
    # 2 of {a, 2-of-{b, c, d}, 2-of-{e, f, g}}: a alone, then one more node from an inner set.
    q = SCPQuorumSet(2, (a,), (SCPQuorumSet(2, (b, c, d), ()), SCPQuorumSet(2, (e, f, g), ())))
    everyone = set(NODES)
    assert closest_v_blocking(q, everyone) == frozenset({a, b, c})  # a + two of the first inner set
    assert closest_v_blocking(q, everyone - {a}) == frozenset({b, c})
    assert closest_v_blocking(q, everyone - {a, b}) == frozenset({c})
    assert closest_v_blocking(q, everyone - {a, b, c}) == frozenset()
    # The local node never fails: with a excluded, both inner sets must be blocked.
    assert closest_v_blocking(q, everyone, excluded=a) == frozenset({b, c, e, f})
    assert closest_v_blocking(SCPQuorumSet(1, (a,), ()), everyone, excluded=a) is None
