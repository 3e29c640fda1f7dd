"""Statement sanity, statement ordering and the federated-voting predicates of the consensus core.

Every malformed statement the draft's invariants forbid is rejected as
INVALID and leaves no trace; statements older than the sender's last are
ignored; the fast quorum and v-blocking checks agree with the reference
predicates of ``scpd.base.quorum`` on random nested quorum sets.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scp_harness import INF, Network, keypair

from scpd.base import quorum
from scpd.base.types import (
    NodeID,
    SCPBallot,
    SCPEnvelope,
    SCPExternalize,
    SCPNomination,
    SCPPrepare,
    SCPQuorumSet,
    SCPStatement,
)
from scpd.scp import EnvelopeState, ValidationLevel
from scpd.scp.ballot import is_newer_ballot_statement, is_sane_ballot_statement
from scpd.scp.federated import LatestStatements, QuorumSetCache, is_quorum
from scpd.scp.local_node import LocalNode
from scpd.scp.nomination import is_newer_nomination, is_sane_nomination

X, Y, Z = b"x", b"y", b"z"
B = SCPBallot


def net5() -> Network:
    return Network(5, 4)


# -- ballot statement sanity ------------------------------------------------------


INSANE_BALLOT_STATEMENTS = {
    "prepare b.n = 0": lambda n: n.prepare(1, B(0, X)),
    "prepare p' without p": lambda n: n.prepare(1, B(2, X), None, 0, 0, B(1, Y)),
    "prepare p' above p": lambda n: n.prepare(1, B(3, X), B(1, X), 0, 0, B(2, Y)),
    "prepare p' same value as p": lambda n: n.prepare(1, B(3, X), B(2, X), 0, 0, B(1, X)),
    "prepare nH > p.n": lambda n: n.prepare(1, B(3, X), B(1, X), 0, 2),
    "prepare nH without p": lambda n: n.prepare(1, B(3, X), None, 0, 1),
    "prepare nC > nH": lambda n: n.prepare(1, B(3, X), B(3, X), 3, 2),
    "prepare nH > b.n": lambda n: n.prepare(1, B(2, X), B(3, X), 1, 3),
    "prepare nC without nH": lambda n: n.prepare(1, B(3, X), B(3, X), 1, 0),
    "confirm b.n = 0": lambda n: n.confirm(1, B(0, X), 0, 0, 0),
    "confirm nCommit > nH": lambda n: n.confirm(1, B(3, X), 3, 3, 2),
    "confirm nH > b.n": lambda n: n.confirm(1, B(2, X), 2, 1, 3),
    "externalize c.n = 0": lambda n: n.externalize(1, B(0, X), 1),
    "externalize nH < c.n": lambda n: n.externalize(1, B(3, X), 2),
}


@pytest.mark.parametrize("make", list(INSANE_BALLOT_STATEMENTS.values()), ids=list(INSANE_BALLOT_STATEMENTS))
def test_insane_ballot_statement_is_invalid_and_ignored(make) -> None:  # type: ignore[no-untyped-def]
    net = net5()
    net.scp.bump_state(0, X)
    env = make(net)
    assert not is_sane_ballot_statement(env.statement)
    assert net.scp.receive_envelope(env) == EnvelopeState.INVALID
    assert net.scp.get_latest_message(net.ids[1]) is None
    assert len(net.emitted) == 1


SANE_BALLOT_STATEMENTS = {
    "prepare minimal": lambda n: n.prepare(1, B(1, X)),
    "prepare p and p'": lambda n: n.prepare(1, B(3, X), B(2, X), 0, 0, B(1, Y)),
    "prepare p' same counter smaller value": lambda n: n.prepare(1, B(3, Z), B(2, Z), 0, 0, B(2, Y)),
    "prepare c = h = b": lambda n: n.prepare(1, B(3, X), B(3, X), 3, 3),
    "confirm": lambda n: n.confirm(1, B(3, X), 3, 1, 2),
    "confirm infinite": lambda n: n.confirm(1, B(INF, X), INF, 1, INF),
    "externalize": lambda n: n.externalize(1, B(2, X), 2),
}


@pytest.mark.parametrize("make", list(SANE_BALLOT_STATEMENTS.values()), ids=list(SANE_BALLOT_STATEMENTS))
def test_sane_ballot_statement_is_valid_and_recorded(make) -> None:  # type: ignore[no-untyped-def]
    net = net5()
    env = make(net)
    assert is_sane_ballot_statement(env.statement)
    assert net.scp.receive_envelope(env) == EnvelopeState.VALID
    assert net.scp.get_latest_message(net.ids[1]) == env


def test_invalid_value_makes_ballot_statement_invalid() -> None:
    net = net5()
    net.driver.validity[Y] = ValidationLevel.INVALID
    assert net.scp.receive_envelope(net.prepare(1, B(1, Y))) == EnvelopeState.INVALID
    assert net.scp.receive_envelope(net.prepare(1, B(1, X), B(1, Y))) == EnvelopeState.INVALID
    assert net.scp.get_latest_message(net.ids[1]) is None


def test_maybe_valid_value_is_followed_but_silences_the_node() -> None:
    net = net5()
    net.driver.validity[Y] = ValidationLevel.MAYBE_VALID
    net.scp.bump_state(0, X)
    assert net.scp.receive_envelope(net.prepare(1, B(1, Y))) == EnvelopeState.VALID
    assert not net.scp.is_slot_fully_validated(0)
    net.receive(*(net.prepare(i, B(1, X)) for i in (2, 3, 4)))
    assert len(net.emitted) == 1  # accepted <1,x> prepared, but no longer emits
    assert net.scp.get_latest_messages_send(0) == []


def test_insane_quorum_set_makes_statement_invalid() -> None:
    net = net5()
    bad = SCPQuorumSet(3, (net.ids[1], net.ids[2]))  # threshold above its entries
    bad_hash = net.add_qset(bad)
    env = net.prepare(1, B(1, X), qset_hash=bad_hash)
    assert net.scp.receive_envelope(env) == EnvelopeState.INVALID
    nom = net.nominate(1, [X], qset_hash=bad_hash)
    assert net.scp.receive_envelope(nom) == EnvelopeState.INVALID


def test_unknown_quorum_set_statement_is_kept_but_counts_in_no_quorum() -> None:
    net = net5()
    unknown = bytes(32)
    net.scp.bump_state(0, X)
    for i in (1, 2, 3):
        assert net.scp.receive_envelope(net.prepare(i, B(1, X), qset_hash=unknown)) == EnvelopeState.VALID
    assert len(net.emitted) == 1  # no quorum: their slices are unknown
    # Once the driver knows the set, the same statements count.
    net.driver.qsets[unknown] = net.qset
    net.receive(net.prepare(4, B(1, X)))
    assert len(net.emitted) == 2


def test_unknown_quorum_set_still_counts_for_v_blocking() -> None:
    net = net5()
    net.scp.bump_state(0, X)
    unknown = bytes(32)
    net.receive(*(net.prepare(i, B(1, X), B(1, X), qset_hash=unknown) for i in (1, 2)))
    assert net.last_pledges() == net.my_prepare(B(1, X), B(1, X))


# -- ordering of one node's statements ---------------------------------------------


def stmt(pledges: object) -> SCPStatement:
    return SCPStatement(keypair(1).node_id, 0, pledges)  # type: ignore[arg-type]


def test_ballot_statement_order_matches_the_draft() -> None:
    n = net5()
    ordered = [
        n.prepare(1, B(1, X)),
        n.prepare(1, B(1, Y)),
        n.prepare(1, B(2, X)),
        n.prepare(1, B(2, X), B(1, X)),
        n.prepare(1, B(2, X), B(2, X)),
        n.prepare(1, B(2, X), B(2, X), 0, 0, B(1, Y)),
        n.prepare(1, B(2, X), B(2, X), 0, 1, B(1, Y)),
        n.prepare(1, B(2, X), B(2, X), 1, 2, B(1, Y)),
        n.confirm(1, B(2, X), 2, 1, 2),
        n.confirm(1, B(3, X), 2, 1, 2),
        n.confirm(1, B(3, X), 3, 1, 2),
        n.confirm(1, B(3, X), 3, 1, 3),
        n.externalize(1, B(1, X), 3),
    ]
    for i, older in enumerate(ordered):
        for j, newer in enumerate(ordered):
            assert is_newer_ballot_statement(older.statement, newer.statement) == (i < j), (i, j)


def test_externalize_is_never_superseded() -> None:
    n = net5()
    a, b = n.externalize(1, B(1, X), 1), n.externalize(1, B(5, X), 9)
    assert not is_newer_ballot_statement(a.statement, b.statement)
    assert not is_newer_ballot_statement(b.statement, a.statement)


def test_older_ballot_statement_is_ignored() -> None:
    net = net5()
    newer, older = net.prepare(1, B(2, X)), net.prepare(1, B(1, X))
    assert net.scp.receive_envelope(newer) == EnvelopeState.VALID
    assert net.scp.receive_envelope(older) == EnvelopeState.VALID
    assert net.scp.get_latest_message(net.ids[1]) == newer


def test_nomination_order_requires_growth_without_shrinking() -> None:
    h = bytes(32)
    base = SCPNomination(h, (X,), ())
    assert is_newer_nomination(base, SCPNomination(h, (X, Y), ()))
    assert is_newer_nomination(base, SCPNomination(h, (X,), (X,)))
    assert not is_newer_nomination(base, SCPNomination(h, (X,), ()))
    assert not is_newer_nomination(base, SCPNomination(h, (Y,), (Y,)))  # dropped x
    assert not is_newer_nomination(SCPNomination(h, (X,), (X,)), SCPNomination(h, (X, Y), ()))


@pytest.mark.parametrize(
    ("votes", "accepted", "sane"),
    [
        ((X,), (), True),
        ((), (X,), True),
        ((X, Y), (X,), True),
        ((), (), False),
        ((Y, X), (), False),
        ((X, X), (), False),
        ((X,), (Y, X), False),
    ],
)
def test_nomination_sanity(votes: tuple[bytes, ...], accepted: tuple[bytes, ...], sane: bool) -> None:
    nom = SCPNomination(bytes(32), votes, accepted)
    assert is_sane_nomination(nom) == sane
    net = net5()
    env = net.sign(1, SCPNomination(net.qset_hash, votes, accepted))
    expected = EnvelopeState.VALID if sane else EnvelopeState.INVALID
    assert net.scp.receive_envelope(env) == expected


def test_nomination_with_invalid_value_is_invalid() -> None:
    net = net5()
    net.driver.validity[Y] = ValidationLevel.INVALID
    assert net.scp.receive_envelope(net.nominate(1, [X, Y])) == EnvelopeState.INVALID
    assert net.scp.receive_envelope(net.nominate(1, [X])) == EnvelopeState.VALID


def test_shrinking_nomination_is_ignored() -> None:
    net = net5()
    first = net.nominate(1, [X, Y])
    net.receive(first)
    assert net.scp.receive_envelope(net.nominate(1, [X])) == EnvelopeState.VALID
    assert net.scp.get_latest_message(net.ids[1]) == first


def test_statement_for_another_network_key_is_just_another_node() -> None:
    """The core trusts its caller for signatures; a stranger's statements count in no quorum of ours."""
    net = net5()
    net.scp.bump_state(0, X)
    stranger = keypair(42)
    env = SCPEnvelope(SCPStatement(stranger.node_id, 0, SCPPrepare(net.qset_hash, B(5, X))), b"")
    assert net.scp.receive_envelope(env) == EnvelopeState.VALID
    assert len(net.emitted) == 1


# -- predicates ---------------------------------------------------------------------


NODES = [keypair(i).node_id for i in range(9)]


@st.composite
def qsets(draw: st.DrawFn, depth: int = 0) -> SCPQuorumSet:
    pool = draw(st.permutations(NODES))
    n_validators = draw(st.integers(0, 4))
    validators = tuple(pool[:n_validators])
    inner: tuple[SCPQuorumSet, ...] = ()
    if depth < 2:
        inner = tuple(draw(st.lists(qsets(depth + 1), max_size=2)))
    entries = len(validators) + len(inner)
    threshold = draw(st.integers(0, max(entries, 1)))
    return SCPQuorumSet(threshold, validators, inner)


@st.composite
def sane_qsets(draw: st.DrawFn, depth: int = 0, pool: list[NodeID] | None = None) -> SCPQuorumSet:
    """Nested quorum sets the core accepts: no validator twice, 1 <= threshold <= entries."""
    if pool is None:
        pool = list(draw(st.permutations(NODES)))
    validators = [pool.pop() for _ in range(draw(st.integers(0, min(3, len(pool)))))]
    inner: list[SCPQuorumSet] = []
    for _ in range(draw(st.integers(0, 2)) if depth < 2 else 0):
        if pool:
            inner.append(draw(sane_qsets(depth + 1, pool)))
    if not validators and not inner:
        validators.append(pool.pop())
    return SCPQuorumSet(draw(st.integers(1, len(validators) + len(inner))), tuple(validators), tuple(inner))


class _TableDriver:
    def __init__(self, store: dict[bytes, SCPQuorumSet]) -> None:
        self.store = store

    def get_quorum_set(self, qset_hash: bytes) -> SCPQuorumSet | None:
        return self.store.get(qset_hash)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fast_quorum_search_matches_reference_on_random_nested_networks(data: st.DataObject) -> None:
    """The core's grouped quorum search answers as ``scpd.base.quorum.is_quorum``.

    Nodes share quorum sets (so groups hold several nodes), some sets are
    unknown (their nodes drop out), and one node has externalized (its
    singleton set is always satisfied while it is a member).
    """
    ids = NODES[:7]
    shared = data.draw(st.lists(sane_qsets(), min_size=1, max_size=3))
    assert not any(quorum.sanity_violations(q) for q in shared)
    own = {n: data.draw(st.sampled_from(shared)) for n in ids}
    local = ids[0]
    unknown = data.draw(st.sets(st.sampled_from(ids[1:]), max_size=2))
    externalized = data.draw(st.sampled_from(ids[1:]))
    store = {quorum.quorum_set_hash(q): q for q in own.values()}
    # A node whose statement names a set nobody has: bytes(32) is no set's hash.
    named = {n: bytes(32) if n in unknown else quorum.quorum_set_hash(own[n]) for n in ids}
    cache = QuorumSetCache(_TableDriver(store), LocalNode(local, True, own[local]))  # type: ignore[arg-type]
    latest = LatestStatements(cache.intern)
    for n in ids:
        if n == externalized:
            pledges: SCPPrepare | SCPExternalize = SCPExternalize(B(1, X), 1, bytes(32))
        else:
            pledges = SCPPrepare(named[n], B(1, X))
        latest.record(SCPEnvelope(SCPStatement(n, 0, pledges), b""))
    subset = data.draw(st.sets(st.sampled_from(ids)))

    def qset_of(n: NodeID) -> SCPQuorumSet | None:
        if n == externalized:
            return quorum.singleton_quorum_set(n)
        return store.get(named[n])

    expected = quorum.is_quorum(own[local], subset, qset_of)
    assert is_quorum(own[local], set(subset), latest, cache) == expected
