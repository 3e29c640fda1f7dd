"""Nomination scenarios on a 5-node 4-of-5 set (ported from stellar-core's "nomination tests core5").

Leader selection is pinned the way stellar-core's tests pin it: every node is
a neighbor and ``priority`` decides who leads a round; ``value_hash`` orders
values so the value echoed from a leader is predictable.
"""

from __future__ import annotations

from collections.abc import Iterable

from scp_harness import Network

from scpd.base.types import NodeID, SCPBallot
from scpd.scp import TimerId, ValidationLevel

X, Y, Z, ZZ, K = b"x", b"y", b"z", b"zz", b"k"


def core5(top: int = 0) -> Network:
    net = Network(5, 4)
    lead(net, top)
    net.driver.value_hash = {}
    return net


def lead(net: Network, top: int) -> None:
    """Make node ``top`` the highest-priority neighbor from now on."""
    net.driver.priority = {n: (1000 if n == net.ids[top] else 1) for n in net.ids}


def leaders(net: Network) -> set[NodeID]:
    snap = net.scp.snapshot(0)
    assert snap is not None
    return {NodeID.from_strkey(s) for s in snap["nomination"]["round_leaders"]}


def composite_is(net: Network, value: bytes, expected_candidates: Iterable[bytes] | None = None) -> None:
    def combine(candidates: frozenset[bytes]) -> bytes:
        if expected_candidates is not None:
            assert candidates == frozenset(expected_candidates)
        return value

    net.driver.composite = combine


# -- v0 is the top leader ---------------------------------------------------------


def v0_nominates_x(net: Network) -> None:
    assert net.scp.nominate(0, X, b"prev")
    assert leaders(net) == {net.ids[0]}
    assert net.emitted_pledges() == [net.my_nominate([X])]


def test_top_leader_votes_for_its_value_then_prepares_it() -> None:
    net = core5()
    v0_nominates_x(net)
    net.receive(net.nominate(1, [X]), net.nominate(2, [X]))
    assert len(net.emitted) == 1
    net.receive(net.nominate(3, [X]))  # quorum votes x: accept
    assert len(net.emitted) == 2
    assert net.last_pledges() == net.my_nominate([X], [X])
    net.receive(net.nominate(4, [X]))
    assert len(net.emitted) == 2
    composite_is(net, X, [X])
    net.receive(net.nominate(1, [X], [X]), net.nominate(2, [X], [X]))
    assert len(net.emitted) == 2
    assert net.driver.has_timer(0, TimerId.NOMINATION)
    net.receive(net.nominate(3, [X], [X]))  # quorum accepted x: candidate, start balloting
    assert len(net.emitted) == 3
    assert net.last_pledges() == net.my_prepare(SCPBallot(1, X))
    assert not net.driver.has_timer(0, TimerId.NOMINATION)
    assert net.driver.hook_calls("updated_candidate_value") == [X]
    net.receive(net.nominate(4, [X], [X]))
    assert len(net.emitted) == 3


def test_later_candidates_update_composite_without_preparing_it() -> None:
    net = core5()
    v0_nominates_x(net)
    composite_is(net, X)
    net.receive(*(net.nominate(i, [X]) for i in (1, 2, 3, 4)))
    net.receive(*(net.nominate(i, [X], [X]) for i in (1, 2, 3, 4)))
    assert len(net.emitted) == 3
    net.receive(net.nominate(1, [X, Y], [X, Y]))
    assert len(net.emitted) == 3
    net.receive(net.nominate(2, [X, Y], [X, Y]))  # v-blocking accepted y
    assert len(net.emitted) == 4
    assert net.last_pledges() == net.my_nominate([X, Y], [X, Y])
    composite_is(net, K, [X, Y])
    net.receive(net.nominate(3, [X, Y], [X, Y]))
    assert len(net.emitted) == 4  # ballot protocol already running: no new PREPARE
    snap = net.scp.snapshot(0)
    assert snap is not None and snap["nomination"]["latest_composite"] == K.hex()
    net.receive(net.nominate(4, [X, Y], [X, Y]))
    assert len(net.emitted) == 4


def restored_nomination(prepare_on_k: bool) -> Network:
    net = core5()
    me = core5()
    net.scp.set_state_from_envelope(0, me.sign(0, me.my_nominate([X], [X])))
    if prepare_on_k:
        net.scp.set_state_from_envelope(0, me.sign(0, me.my_prepare(SCPBallot(1, K))))
    # A leader with votes already does not add its new value.
    assert not net.scp.nominate(0, Y, b"prev")
    assert leaders(net) == {net.ids[0]}
    assert net.emitted == []
    net.receive(net.nominate(1, [X]), net.nominate(2, [X]))
    assert net.emitted == []
    net.receive(net.nominate(3, [X]))  # x accepted already in the restored state: nothing new
    composite_is(net, X, [X])
    net.receive(net.nominate(1, [X], [X]), net.nominate(2, [X], [X]))
    assert net.emitted == []
    net.receive(net.nominate(3, [X], [X]))
    return net


def test_restored_nomination_starts_ballot_protocol() -> None:
    net = restored_nomination(prepare_on_k=False)
    assert net.emitted_pledges() == [net.my_prepare(SCPBallot(1, X))]


def test_restored_nomination_with_ballot_already_on_k_does_nothing() -> None:
    net = restored_nomination(prepare_on_k=True)
    assert net.emitted == []


def test_timeout_switches_to_another_leader_and_echoes_its_value() -> None:
    net = core5()
    v0_nominates_x(net)
    net.receive(net.nominate(1, [K]), net.nominate(2, [Y]))
    assert len(net.emitted) == 1
    lead(net, 1)
    net.driver.fire_timer(0, TimerId.NOMINATION)
    assert leaders(net) == {net.ids[0], net.ids[1]}
    assert len(net.emitted) == 2
    assert net.last_pledges() == net.my_nominate([X, K])


def test_leaders_accepted_value_taken_over_its_votes_before_timeout() -> None:
    net = core5()
    v0_nominates_x(net)
    lead(net, 1)
    net.receive(net.nominate(1, [Y, Z], [Y]))
    assert len(net.emitted) == 1  # v1 is not a leader yet
    assert net.scp.nominate(0, X, b"prev")  # next round: v1 leads, echo its accepted y
    assert len(net.emitted) == 2
    assert net.last_pledges() == net.my_nominate([X, Y])
    # v1 votes more, but it has an accepted value we already vote for: nothing new.
    net.receive(net.nominate(1, [Y, Z, ZZ], [Y]))
    assert len(net.emitted) == 2


def test_leaders_accepted_value_taken_over_its_votes_after_timeout() -> None:
    net = core5()
    v0_nominates_x(net)
    lead(net, 1)
    net.driver.fire_timer(0, TimerId.NOMINATION)
    assert len(net.emitted) == 1  # nothing from v1 yet
    net.receive(net.nominate(1, [Y, Z], [Y]))
    assert len(net.emitted) == 2
    assert net.last_pledges() == net.my_nominate([X, Y])
    assert net.driver.hook_calls("nominating_value") == [X, Y]


def test_others_vote_y_then_quorum_accepts_it() -> None:
    net = core5()
    assert net.scp.nominate(0, X, b"prev")
    net.receive(*(net.nominate(i, [Y]) for i in (1, 2, 3)))
    assert len(net.emitted) == 1
    net.receive(net.nominate(4, [Y]))  # quorum v1..v4 voted y
    assert len(net.emitted) == 2
    assert net.last_pledges() == net.my_nominate([X, Y], [Y])


def test_others_accepted_y_vblocking_then_prepare_y() -> None:
    net = core5()
    assert net.scp.nominate(0, X, b"prev")
    net.receive(net.nominate(1, [Y], [Y]))
    assert len(net.emitted) == 1
    net.receive(net.nominate(2, [Y], [Y]))  # v-blocking accepted y
    assert len(net.emitted) == 2
    assert net.last_pledges() == net.my_nominate([X, Y], [Y])
    composite_is(net, Y, [Y])
    net.receive(net.nominate(3, [Y], [Y]))
    assert len(net.emitted) == 3
    assert net.last_pledges() == net.my_prepare(SCPBallot(1, Y))
    net.receive(net.nominate(4, [Y], [Y]))
    assert len(net.emitted) == 3


# -- v1 is the top leader ---------------------------------------------------------


def core5_v1_top() -> Network:
    net = core5(top=1)
    # Value hashes follow byte order: k < x < y.
    net.driver.value_hash = {K: 1, X: 2, Y: 3}
    return net


def test_another_leader_candidate_stops_our_new_values() -> None:
    net = core5_v1_top()
    assert not net.scp.nominate(0, X, b"prev")
    assert leaders(net) == {net.ids[1]}
    assert net.emitted == []
    net.receive(net.nominate(1, [X]))  # the leader's value: echo it
    assert net.emitted_pledges() == [net.my_nominate([X])]
    net.receive(net.nominate(2, [X]), net.nominate(3, [X]))
    assert net.last_pledges() == net.my_nominate([X], [X])
    net.receive(net.nominate(1, [X], [X]), net.nominate(2, [X], [X]))
    assert len(net.emitted) == 2
    assert net.driver.has_timer(0, TimerId.NOMINATION)
    composite_is(net, X, [X])
    net.receive(net.nominate(3, [X], [X]))
    assert len(net.emitted) == 3
    assert not net.driver.has_timer(0, TimerId.NOMINATION)
    # We would lead now, but a candidate exists: no more votes.
    lead(net, 0)
    assert not net.scp.nominate(0, K, b"prev")


def test_nomination_waits_for_leader_then_dead_leader_timeout() -> None:
    net = core5_v1_top()
    assert not net.scp.nominate(0, X, b"prev")
    assert leaders(net) == {net.ids[1]}
    net.receive(net.nominate(2, [X, K]))  # not a leader: ignored for votes
    assert net.emitted == []
    net.receive(net.nominate(1, [X, Y]))  # the leader: echo its top value y
    assert net.emitted_pledges() == [net.my_nominate([Y])]
    net.receive(net.nominate(4, [X, K]))
    assert len(net.emitted) == 1
    composite_is(net, X, [X])
    # Timeout: v3 (dead) becomes leader too; we take another value from v1,
    # x, which v0, v1, v2 and v4 now vote for: accepted at once.
    lead(net, 3)
    net.driver.fire_timer(0, TimerId.NOMINATION)
    assert leaders(net) == {net.ids[1], net.ids[3]}
    assert len(net.emitted) == 2
    assert net.last_pledges() == net.my_nominate([X, Y], [X])


def test_dead_leader_then_we_become_leader() -> None:
    net = core5_v1_top()
    assert not net.scp.nominate(0, X, b"prev")
    net.receive(net.nominate(2, [X, K]))
    assert net.emitted == []
    lead(net, 0)
    assert net.scp.nominate(0, X, b"prev")
    assert leaders(net) == {net.ids[0], net.ids[1]}
    assert net.emitted_pledges() == [net.my_nominate([X])]


def test_dead_leader_then_v2_leads_and_we_echo_its_top_value() -> None:
    net = core5_v1_top()
    assert not net.scp.nominate(0, X, b"prev")
    net.receive(net.nominate(2, [X, K]))
    lead(net, 2)
    assert net.scp.nominate(0, X, b"prev")
    assert leaders(net) == {net.ids[1], net.ids[2]}
    assert net.emitted_pledges() == [net.my_nominate([max(X, K)])]


def test_dead_leader_then_another_dead_leader_does_nothing() -> None:
    net = core5_v1_top()
    assert not net.scp.nominate(0, X, b"prev")
    net.receive(net.nominate(2, [X, K]))
    lead(net, 3)
    assert not net.scp.nominate(0, X, b"prev")
    assert leaders(net) == {net.ids[1], net.ids[3]}
    assert net.emitted == []


def test_nomination_timeouts_escalate() -> None:
    net = core5_v1_top()
    net.scp.nominate(0, X, b"prev")
    first = net.driver.timers[(0, TimerId.NOMINATION)].timeout
    lead(net, 2)
    net.driver.fire_timer(0, TimerId.NOMINATION)
    second = net.driver.timers[(0, TimerId.NOMINATION)].timeout
    assert (first, second) == (1.0, 2.0)


def test_stop_nomination_stops_rounds() -> None:
    net = core5_v1_top()
    net.scp.nominate(0, X, b"prev")
    net.scp.stop_nomination(0)
    assert not net.driver.has_timer(0, TimerId.NOMINATION)
    net.receive(net.nominate(1, [Y]))
    assert net.emitted == []


def test_default_leader_selection_is_deterministic_and_includes_self_weight() -> None:
    """Without pinned priorities the draft's hashes pick the leaders; same inputs, same leaders."""
    a, b = Network(5, 4), Network(5, 4)
    a.scp.nominate(0, X, b"prev")
    b.scp.nominate(0, X, b"prev")
    assert leaders(a) == leaders(b) and len(leaders(a)) >= 1


def test_invalid_value_from_leader_is_not_echoed_but_extracted() -> None:
    net = core5_v1_top()
    net.driver.validity[Y] = ValidationLevel.MAYBE_VALID
    net.driver.extract_valid_value = lambda slot, v: K if v == Y else None  # type: ignore[method-assign]
    assert not net.scp.nominate(0, X, b"prev")
    net.receive(net.nominate(1, [Y]))
    assert net.emitted_pledges() == [net.my_nominate([K])]
