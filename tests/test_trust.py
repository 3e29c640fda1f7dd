"""Trust follows the quorum: the transitive closure of our quorum set over the quorum sets we know."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scp_harness import keypair

from scpd.base.types import SCPQuorumSet
from scpd.nodecore.trust import TrustedQuorum

ME, A, B, C, D, STRANGER = (keypair(i).node_id for i in range(6))


def test_at_first_only_we_and_our_validators_are_trusted() -> None:
    t = TrustedQuorum(ME, SCPQuorumSet(2, (A, B)))
    assert ME in t and A in t and B in t
    assert C not in t and STRANGER not in t
    assert (t.distance(ME), t.distance(A), t.distance(STRANGER)) == (0, 1, None)


def test_a_members_quorum_set_extends_trust_and_a_strangers_does_not() -> None:
    t = TrustedQuorum(ME, SCPQuorumSet(2, (A, B)))
    assert not t.note(STRANGER, SCPQuorumSet(1, (D,)))
    assert D not in t and t.quorum_set_of(STRANGER) is None
    assert t.note(A, SCPQuorumSet(1, (C,), (SCPQuorumSet(1, (A,)),)))
    assert C in t and t.distance(C) == 2
    assert not t.note(A, SCPQuorumSet(1, (C,), (SCPQuorumSet(1, (A,)),)))  # the same set again: nothing new
    assert t.note(C, SCPQuorumSet(1, (D,)))
    assert t.distance(D) == 3


def test_a_member_that_changes_its_quorum_set_takes_the_old_dependents_out() -> None:
    t = TrustedQuorum(ME, SCPQuorumSet(1, (A,)))
    t.note(A, SCPQuorumSet(1, (C,)))
    t.note(C, SCPQuorumSet(1, (D,)))
    assert D in t
    assert t.note(A, SCPQuorumSet(1, (B,)))
    assert B in t and C not in t and D not in t
    assert t.quorum_set_of(C) is None  # its declaration is forgotten too: memory follows the closure
    assert not t.note(C, SCPQuorumSet(1, (D,)))


def test_the_closure_is_capped_keeping_the_nearest_nodes() -> None:
    many = tuple(keypair(100 + i).node_id for i in range(50))
    t = TrustedQuorum(ME, SCPQuorumSet(1, (A,)), max_nodes=10)
    t.note(A, SCPQuorumSet(1, many))
    assert len(t) == 10 and ME in t and A in t
    assert all(t.distance(n) in (None, 2) for n in many)


NODES = [keypair(i).node_id for i in range(12)]
declarations = st.lists(
    st.tuples(st.integers(0, 11), st.lists(st.integers(0, 11), min_size=1, max_size=5, unique=True)),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(declarations, st.integers(2, 12))
def test_the_closure_is_what_a_fresh_walk_over_every_declaration_finds(
    declared: list[tuple[int, list[int]]], max_nodes: int
) -> None:
    # note() skips the walk when a first declaration cannot change it; the result must be the same
    # as walking again after every declaration.
    t = TrustedQuorum(NODES[0], SCPQuorumSet(1, (NODES[1], NODES[2])), max_nodes)
    for node, members in declared:
        qset = SCPQuorumSet(1, tuple(NODES[m] for m in members))
        t.note(NODES[node], qset)
        fresh = {n: t.distance(n) for n in NODES}
        t._rebuild()
        assert {n: t.distance(n) for n in NODES} == fresh
