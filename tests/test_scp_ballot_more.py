"""More core5 ballot scenarios: switching p/p', starting from nothing, normal round, range check,
timeouts with and without h, timeouts from several nodes, a watcher, restoring state, and
the implicit statements of CONFIRM and EXTERNALIZE (ported from stellar-core's SCPTests.cpp)."""

from __future__ import annotations

import pytest
from scp_harness import INF, Network
from test_scp_ballot import (
    A1,
    A2,
    A3,
    A4,
    A5,
    AINF,
    B1,
    B2,
    B3,
    BIG2,
    BINF,
    MID2,
    X,
    Y,
    Z,
    assert_last_confirm,
    assert_last_externalize,
    assert_last_prepare,
    conf,
    core5,
    ext,
    prep,
    prepared_a1,
    start_a1,
)

from scpd.base.types import SCPBallot
from scpd.scp import TimerId
from scpd.scp.slot import SlotEffort


def nodes_all_pledge_to_commit(net: Network) -> None:
    """v0 on <1,x>; a quorum prepares, then confirms prepared, so v0 votes to commit <1,x>."""
    b = SCPBallot(1, X)
    assert net.scp.bump_state(0, X)
    assert net.emitted_pledges() == [net.my_prepare(b)]
    net.receive(net.prepare(1, b))
    net.receive(net.prepare(2, b))
    assert len(net.emitted) == 1
    assert net.driver.hook_calls("ballot_did_hear_from_quorum") == []
    net.receive(net.prepare(3, b))
    assert len(net.emitted) == 2
    assert net.driver.hook_calls("ballot_did_hear_from_quorum") == [b]
    assert_last_prepare(net, b, b)
    net.receive(net.prepare(4, b))
    assert len(net.emitted) == 2
    net.receive(net.prepare(4, b, b), net.prepare(3, b, b))
    assert len(net.emitted) == 2
    net.receive(net.prepare(2, b, b))
    assert len(net.emitted) == 3
    assert_last_prepare(net, b, b, 1, 1)
    net.receive(net.prepare(1, b, b))
    assert len(net.emitted) == 3


# -- switching p and p' -------------------------------------------------------


def switch_prepared_b1_from_a1(net: Network) -> None:
    prepared_a1(net)
    net.recv_vblocking(prep(net, B1, B1))
    assert len(net.emitted) == 3
    assert_last_prepare(net, A1, B1, 0, 0, A1)
    assert not net.has_ballot_timer_upcoming()
    # v-blocking at counter 2: bump n, keep our value.
    net.recv_vblocking(prep(net, B2))
    assert len(net.emitted) == 4
    assert_last_prepare(net, A2, B1, 0, 0, A1)
    net.recv_vblocking(prep(net, B2, B2))
    assert len(net.emitted) == 5
    assert_last_prepare(net, A2, B2, 0, 0, A1)
    assert not net.has_ballot_timer()


def test_vblocking_switches_p_and_keeps_old_p_as_p_prime() -> None:
    net = core5()
    switch_prepared_b1_from_a1(net)
    net.recv_vblocking(prep(net, B3))
    assert len(net.emitted) == 6
    assert_last_prepare(net, A3, B2, 0, 0, A1)
    assert not net.has_ballot_timer()
    # A v-blocking set says B1 is prepared, but p is B2 already.
    net.recv_vblocking(prep(net, B3, B1), with_checks=False)
    assert len(net.emitted) == 6
    assert not net.has_ballot_timer()


def test_vblocking_switches_p_prime_to_mid2() -> None:
    net = core5()
    switch_prepared_b1_from_a1(net)
    net.recv_vblocking(prep(net, B2, B2, 0, 0, MID2))
    assert len(net.emitted) == 6
    assert_last_prepare(net, A2, B2, 0, 0, MID2)
    assert not net.has_ballot_timer()


def test_vblocking_moves_both_p_and_p_prime() -> None:
    net = core5()
    switch_prepared_b1_from_a1(net)
    net.recv_vblocking(prep(net, B2, BIG2, 0, 0, B2))
    assert len(net.emitted) == 6
    assert_last_prepare(net, A2, BIG2, 0, 0, B2)
    assert not net.has_ballot_timer()


def test_quorum_preparing_other_value_makes_it_p() -> None:
    net = core5()
    prepared_a1(net)
    net.recv_quorum_checks(prep(net, B1), True, True)
    assert len(net.emitted) == 3
    assert_last_prepare(net, A1, B1, 0, 0, A1)
    assert not net.has_ballot_timer_upcoming()


def test_vblocking_at_higher_counters_bumps_counter() -> None:
    net = core5()
    prepared_a1(net)
    net.recv_vblocking(prep(net, B2))
    assert len(net.emitted) == 3
    assert_last_prepare(net, A2, A1)
    assert not net.has_ballot_timer()
    net.recv_vblocking(prep(net, B3))
    assert len(net.emitted) == 4
    assert_last_prepare(net, A3, A1)
    assert not net.has_ballot_timer()


def test_start_x_with_vblocking_prepared_y() -> None:
    net = core5()
    start_a1(net)
    net.recv_vblocking(prep(net, B1, B1))
    assert len(net.emitted) == 2
    assert_last_prepare(net, A1, B1)
    assert not net.has_ballot_timer()


def test_start_x_with_quorum_preparing_y() -> None:
    """Start from <1,x> while a quorum prepares <1,z>: we accept <1,z> prepared."""
    net = core5()
    start_a1(net)
    net.recv_quorum_checks_ex(prep(net, B1), True, True, True)
    assert len(net.emitted) == 2
    assert_last_prepare(net, A1, B1)


def test_vblocking_confirm_moves_to_confirm_from_start() -> None:
    net = core5()
    start_a1(net)
    net.driver.bump_timer_offset()
    net.receive(net.confirm(1, A3, 3, 3, 3), net.confirm(2, A4, 4, 2, 4))
    assert len(net.emitted) == 2
    assert_last_confirm(net, 3, A3, 3, 3)
    assert not net.has_ballot_timer()


def test_vblocking_externalize_moves_to_confirm_infinite_from_start() -> None:
    net = core5()
    start_a1(net)
    net.receive(net.externalize(1, A2, 4), net.externalize(2, A3, 5))
    assert len(net.emitted) == 2
    assert_last_confirm(net, INF, AINF, 3, INF)
    assert not net.has_ballot_timer()


# -- starting from nothing (no bump_state) --------------------------------------


def pristine_prepared_a1(net: Network) -> None:
    net.recv_quorum_checks(prep(net, A1), False, False)
    assert net.emitted == []


def test_pristine_quorum_a2_confirms_prepared() -> None:
    net = core5()
    pristine_prepared_a1(net)
    net.recv_vblocking(prep(net, A2, A2), with_checks=False)
    assert net.emitted == []
    net.recv_quorum(prep(net, A2, A2))
    assert len(net.emitted) == 1
    assert_last_prepare(net, A2, A2, 1, 2)


def test_pristine_quorum_b2_after_a2() -> None:
    net = core5()
    pristine_prepared_a1(net)
    net.recv_vblocking(prep(net, A2, A2), with_checks=False)
    net.recv_vblocking(prep(net, B2, B2), with_checks=False)
    assert net.emitted == []
    net.recv_quorum(prep(net, B2, B2))
    assert len(net.emitted) == 1
    assert_last_prepare(net, B2, B2, 2, 2, A2)


@pytest.mark.parametrize("value", [A2, B2], ids=["A2", "B2"])
def test_pristine_quorum_accepts_commit(value: SCPBallot) -> None:
    net = core5()
    pristine_prepared_a1(net)
    net.recv_vblocking(prep(net, A2, A2), with_checks=False)
    net.recv_quorum(prep(net, value, value, 2, 2))
    assert len(net.emitted) == 1
    assert_last_confirm(net, 2, value, 2, 2)


@pytest.mark.parametrize(
    ("gen", "expected"),
    [
        (lambda net: conf(net, 2, A2, 2, 2), (2, A2, 2, 2)),
        (lambda net: conf(net, 4, A4, 3, 4), (4, A4, 3, 4)),
        (lambda net: conf(net, 2, B2, 2, 2), (2, B2, 2, 2)),
        (lambda net: ext(net, A2, 2), (INF, AINF, 2, INF)),
        (lambda net: ext(net, B2, 2), (INF, BINF, 2, INF)),
    ],
    ids=["confirm-A2", "confirm-A3..4", "confirm-B2", "externalize-A2", "externalize-B2"],
)
def test_pristine_vblocking_confirm_or_externalize(gen, expected) -> None:  # type: ignore[no-untyped-def]
    net = core5()
    pristine_prepared_a1(net)
    net.recv_vblocking(prep(net, A2, A2), with_checks=False)
    net.recv_vblocking(gen(net))
    assert len(net.emitted) == 1
    assert_last_confirm(net, *expected)


@pytest.mark.parametrize(
    ("sender3", "expected"), [(A2, (A2, B2, 0, 2, A2)), (B2, (B2, B2, 2, 2, A2))], ids=["mixed-A2", "mixed-B2"]
)
def test_pristine_confirm_prepared_mixed(sender3: SCPBallot, expected: tuple) -> None:  # type: ignore[type-arg]
    net = core5()
    pristine_prepared_a1(net)
    net.recv_vblocking(prep(net, A2, A2), with_checks=False)
    net.recv_vblocking(prep(net, A2, B2, 0, 0, A2), with_checks=False)
    assert net.emitted == []
    net.receive(net.prepare(3, sender3, sender3))
    assert len(net.emitted) == 1
    assert_last_prepare(net, *expected)
    net.receive(net.prepare(4, sender3, sender3))
    assert len(net.emitted) == 1


def test_pristine_vblocking_prepared_b_emits_nothing() -> None:
    net = core5()
    net.recv_vblocking(prep(net, B1, B1), with_checks=False)
    assert net.emitted == []


def test_pristine_vblocking_confirm_and_externalize() -> None:
    net = core5()
    net.receive(net.confirm(1, A3, 3, 3, 3), net.confirm(2, A4, 4, 2, 4))
    assert len(net.emitted) == 1
    assert_last_confirm(net, 3, A3, 3, 3)
    other = core5()
    other.receive(other.externalize(1, A2, 4), other.externalize(2, A3, 5))
    assert len(other.emitted) == 1
    assert_last_confirm(other, INF, AINF, 3, INF)


# -- normal round and range check -----------------------------------------------


def normal_round_externalized(net: Network) -> None:
    nodes_all_pledge_to_commit(net)
    b = SCPBallot(1, X)
    net.receive(net.prepare(1, b, b, 1, 1), net.prepare(2, b, b, 1, 1))
    assert len(net.emitted) == 3
    net.receive(net.prepare(3, b, b, 1, 1))
    assert len(net.emitted) == 4
    assert_last_confirm(net, 1, b, 1, 1)
    net.receive(net.confirm(1, b, 1, 1, 1), net.confirm(2, b, 1, 1, 1))
    assert len(net.emitted) == 4
    net.receive(net.confirm(3, b, 1, 1, 1))
    assert len(net.emitted) == 5
    assert net.driver.externalized == [(0, X)]
    assert_last_externalize(net, b, 1)
    net.receive(net.confirm(4, b, 1, 1, 1))
    net.receive(net.confirm(2, b, 1, 1, 1))
    assert len(net.emitted) == 5
    assert net.driver.externalized == [(0, X)]


def test_normal_round_1_x() -> None:
    net = core5()
    normal_round_externalized(net)
    assert all(not net.driver.has_timer(0, t) for t in TimerId)


@pytest.mark.parametrize("b2", [SCPBallot(1, Z), SCPBallot(2, X), SCPBallot(2, Z)], ids=["value", "counter", "both"])
def test_no_ballot_change_once_externalized(b2: SCPBallot) -> None:
    net = core5()
    normal_round_externalized(net)
    for i in range(1, 5):
        net.receive(net.confirm(i, b2, b2.counter, b2.counter, b2.counter))
    assert len(net.emitted) == 5
    assert net.driver.externalized == [(0, X)]


def test_range_check_externalizes_the_common_interval() -> None:
    net = core5()
    nodes_all_pledge_to_commit(net)
    b = SCPBallot(1, X)
    net.receive(net.prepare(1, b, b, 1, 1), net.prepare(2, b, b, 1, 1))
    assert len(net.emitted) == 3
    net.receive(net.prepare(3, b, b, 1, 1))
    assert len(net.emitted) == 4
    assert_last_confirm(net, 1, b, 1, 1)
    net.receive(net.confirm(1, SCPBallot(4, X), 4, 2, 4))
    # v-blocking: b and p go to <4,x>, (c, h) to (2, 4).
    net.receive(net.confirm(2, SCPBallot(6, X), 6, 2, 6))
    assert len(net.emitted) == 5
    assert_last_confirm(net, 4, SCPBallot(4, X), 2, 4)
    # Quorum on the range [3, 4].
    net.receive(net.confirm(4, SCPBallot(6, X), 6, 3, 6))
    assert len(net.emitted) == 6
    assert net.driver.externalized == [(0, X)]
    assert_last_externalize(net, SCPBallot(3, X), 4)


# -- timeouts ------------------------------------------------------------------


def test_timeout_with_h_set_stays_locked_on_h() -> None:
    net = core5()
    bx = SCPBallot(1, X)
    assert net.scp.bump_state(0, X)
    net.recv_quorum(prep(net, bx, bx))
    assert len(net.emitted) == 3
    assert_last_prepare(net, bx, bx, 1, 1)
    # A timeout with another composite value keeps h's value.
    assert net.scp.bump_state(0, Y)
    assert len(net.emitted) == 4
    assert_last_prepare(net, SCPBallot(2, X), bx, 1, 1)


def test_timeout_with_h_unset_locally_votes_for_quorum_h() -> None:
    net = core5()
    by, bx = SCPBallot(1, Y), SCPBallot(1, X)
    assert net.scp.bump_state(0, Y)
    net.recv_vblocking(prep(net, bx, bx))
    assert len(net.emitted) == 2
    assert_last_prepare(net, by, bx)
    # A quorum confirms <1,x> prepared, but h cannot be set as b = <1,y> > <1,x>.
    net.recv_quorum_checks(prep(net, bx, bx), False, False)
    assert len(net.emitted) == 2
    assert net.scp.bump_state(0, Y)
    assert len(net.emitted) == 3
    # On timeout we move to the quorum's h value; c stays unset as b > h.
    assert_last_prepare(net, SCPBallot(2, X), bx, 0, 1)


def test_timeout_with_h_unset_uses_composite() -> None:
    net = core5()
    assert net.scp.bump_state(0, X)
    net.recv_quorum(prep(net, SCPBallot(1, X)))
    assert net.scp.bump_state(0, Y)
    assert_last_prepare(net, SCPBallot(2, Y), SCPBallot(1, X))


def test_timeout_from_multiple_nodes() -> None:
    net = core5()
    x1, x2 = SCPBallot(1, X), SCPBallot(2, X)
    assert net.scp.bump_state(0, X)
    assert net.emitted_pledges() == [net.my_prepare(x1)]
    net.recv_quorum(prep(net, x1))
    assert len(net.emitted) == 2
    assert_last_prepare(net, x1, x1)
    assert net.scp.bump_state(0, X)  # local timeout
    assert len(net.emitted) == 3
    assert_last_prepare(net, x2, x1)
    net.recv_quorum(prep(net, x1, x1))
    assert len(net.emitted) == 4
    assert_last_prepare(net, x2, x1, 0, 1)
    net.recv_vblocking(prep(net, x2, x2, 1, 1))
    assert len(net.emitted) == 5
    assert_last_prepare(net, x2, x2, 0, 1)
    net.recv_quorum(prep(net, x2, x2, 1, 1))
    # A quorum including us confirms <2,x> prepared (h = c = x2), and one
    # without us already voted commit on <1,x>: we accept commit [1, 1].
    assert len(net.emitted) == 7
    assert net.emitted[5].statement.pledges == net.my_prepare(x2, x2, 2, 2)
    assert_last_confirm(net, 2, x2, 1, 1)


def test_timeout_after_prepare_then_old_messages_prepare() -> None:
    net = core5()
    x1, x2, x3 = (SCPBallot(n, X) for n in (1, 2, 3))
    assert net.scp.bump_state(0, X)
    net.receive(net.prepare(1, x1), net.prepare(2, x1), net.prepare(3, x1))
    assert len(net.emitted) == 2
    assert_last_prepare(net, x1, x1)
    assert net.scp.bump_state(0, X)
    assert_last_prepare(net, x2, x1)
    assert net.scp.bump_state(0, X)
    assert len(net.emitted) == 4
    assert_last_prepare(net, x3, x1)
    net.receive(net.prepare(1, x2, x2, 1, 2), net.prepare(2, x2, x2, 1, 2))
    assert len(net.emitted) == 5
    assert_last_prepare(net, x3, x2)
    net.receive(net.prepare(3, x2, x2, 1, 2))
    assert len(net.emitted) == 6
    assert_last_prepare(net, x3, x2, 0, 2)


def test_ballot_timer_fires_and_moves_to_next_counter() -> None:
    net = core5()
    start_a1(net)
    net.recv_quorum_ex(prep(net, A1), True)
    assert net.driver.timers[(0, TimerId.BALLOT)].timeout == net.driver.compute_timeout(1, False)
    net.driver.fire_timer(0, TimerId.BALLOT)
    assert_last_prepare(net, A2, A1)
    # Not heard from a quorum at counter 2 yet: no timer.
    assert not net.has_ballot_timer()
    net.recv_quorum(prep(net, A2))
    assert net.has_ballot_timer()
    assert net.driver.timers[(0, TimerId.BALLOT)].timeout == net.driver.compute_timeout(2, False)


def test_vblocking_ahead_jumps_to_lowest_counter_not_outrun() -> None:
    net = core5()
    start_a1(net)
    # v1 at 5, v2 at 3: the set {v1, v2} is v-blocking above 1 and 2, but
    # above 3 only v1 remains, so we jump to 3 at once.
    net.receive(net.prepare(1, SCPBallot(5, X)))
    assert len(net.emitted) == 1
    net.receive(net.prepare(2, SCPBallot(3, X)))
    assert len(net.emitted) == 2
    assert_last_prepare(net, A3)


# -- watcher and restore ---------------------------------------------------------


def test_watcher_follows_and_externalizes_without_emitting() -> None:
    """A watcher outside the quorum set (stellar-core's "non validator watching the network")."""
    net = Network(5, 4, is_validator=False, local_outside=True)
    b = SCPBallot(1, X)
    assert net.scp.bump_state(0, X)
    assert net.emitted == []
    assert net.own_pledges() == net.my_prepare(b)
    for i in (1, 2, 3):
        net.receive(net.externalize(i, b, 1))
    assert net.emitted == []
    assert net.own_pledges() == net.my_confirm(SCPBallot(INF, X), INF, 1, INF)
    assert net.driver.externalized == []
    net.receive(net.externalize(4, b, 1))
    assert net.emitted == []
    assert net.own_pledges() == net.my_externalize(b, INF)
    assert net.driver.externalized == [(0, X)]
    assert net.scp.get_latest_messages_send(0) == []


def test_watcher_inside_its_quorum_set_counts_itself() -> None:
    net = Network(5, 4, is_validator=False)
    b = SCPBallot(1, X)
    net.receive(*(net.externalize(i, b, 1) for i in (1, 2)))
    assert net.own_pledges() == net.my_confirm(SCPBallot(INF, X), INF, 1, INF)
    # Our own (never sent) CONFIRM plus three EXTERNALIZEs make a quorum.
    net.receive(net.externalize(3, b, 1))
    assert net.own_pledges() == net.my_externalize(b, INF)
    assert net.driver.externalized == [(0, X)]
    assert net.emitted == []


def test_watcher_never_signs() -> None:
    net = Network(5, 4, is_validator=False)
    signed: list[object] = []
    net.driver.sign_envelope = lambda st: signed.append(st)  # type: ignore[method-assign,assignment,return-value]
    net.scp.bump_state(0, X)
    assert signed == []


def restored(pledges_of: str) -> Network:
    net = core5()
    me = Network(5, 4)  # same keys: signs as v0 for building our own old envelope
    b = SCPBallot(2, X)
    if pledges_of == "prepare":
        env = me.sign(0, me.my_prepare(b))
    elif pledges_of == "confirm":
        env = me.sign(0, me.my_confirm(b, 2, 1, 2))
    else:
        env = me.sign(0, me.my_externalize(b, 2))
    net.scp.set_state_from_envelope(0, env)
    assert net.emitted == []
    assert net.scp.get_latest_messages_send(0) == [env]
    return net


def test_restore_from_prepare_continues_at_that_ballot() -> None:
    net = restored("prepare")
    snap = net.scp.snapshot(0)
    assert snap is not None and snap["ballot"]["phase"] == "PREPARE" and snap["ballot"]["b"] == [2, X.hex()]
    # Timing out moves on from the restored counter, never back.
    assert net.scp.bump_state(0, Y)
    assert_last_prepare(net, SCPBallot(3, Y))


def test_restore_from_confirm_keeps_value_and_commit() -> None:
    net = restored("confirm")
    snap = net.scp.snapshot(0)
    assert snap is not None and snap["ballot"]["phase"] == "CONFIRM"
    assert snap["ballot"]["c"] == [1, X.hex()] and snap["ballot"]["h"] == [2, X.hex()]
    net.recv_quorum(conf(net, 2, SCPBallot(2, X), 1, 2))
    assert_last_externalize(net, SCPBallot(1, X), 2)
    assert net.driver.externalized == [(0, X)]


def test_restore_from_externalize_is_decided_without_hook() -> None:
    net = restored("externalize")
    assert net.scp.get_externalized_value(0) == X
    assert net.driver.externalized == []
    net.recv_quorum_checks(conf(net, 3, SCPBallot(3, Z), 3, 3), False, False)
    assert net.emitted == []
    assert net.driver.externalized == []


def test_restore_rejects_someone_elses_envelope() -> None:
    from scpd.errors import ConsensusError

    net = core5()
    with pytest.raises(ConsensusError):
        net.scp.set_state_from_envelope(0, net.prepare(1, A1))


def test_restore_after_start_is_refused() -> None:
    from scpd.errors import ConsensusError

    net = core5()
    net.scp.bump_state(0, X)
    with pytest.raises(ConsensusError):
        net.scp.set_state_from_envelope(0, net.sign(0, net.my_prepare(A5)))


def test_get_externalizing_state_lists_helpers_of_the_decision() -> None:
    net = core5()
    normal_round_externalized(net)
    states = net.scp.get_externalizing_state(0)
    senders = {e.statement.node_id for e in states}
    assert senders == set(net.ids)
    assert net.scp.get_externalizing_state(1) == []


def test_snapshot_is_json_serializable() -> None:
    import json

    net = core5()
    normal_round_externalized(net)
    text = json.dumps(net.scp.snapshot(0))
    assert '"EXTERNALIZE"' in text
    assert net.scp.snapshot(7) is None


def test_effort_reports_the_committed_counter_and_nomination_rounds() -> None:
    net = restored("confirm")
    assert net.scp.effort(0) == SlotEffort(nomination_rounds=0, commit_counter=1)
    net = core5()
    normal_round_externalized(net)
    snap = net.scp.snapshot(0)
    assert snap is not None
    assert net.scp.effort(0) == SlotEffort(snap["nomination"]["round"], snap["ballot"]["c"][0]) == SlotEffort(0, 1)
    assert net.scp.effort(7) is None


def test_purge_slots_forgets_old_slots_and_stops_timers() -> None:
    net = core5()
    for slot in (1, 2, 3):
        net.slot = slot
        net.scp.bump_state(slot, X)
        net.receive(*(net.prepare(i, SCPBallot(1, X)) for i in (1, 2, 3)))
        assert net.driver.has_timer(slot, TimerId.BALLOT)
    net.scp.purge_slots(3)
    assert net.scp.known_slots() == [3]
    assert not net.driver.has_timer(1, TimerId.BALLOT) and not net.driver.has_timer(2, TimerId.BALLOT)
    assert net.driver.has_timer(3, TimerId.BALLOT)


def test_slots_are_independent() -> None:
    net = core5()
    net.scp.bump_state(0, X)
    net.slot = 1
    net.scp.bump_state(1, Z)
    assert [e.statement.slot_index for e in net.emitted] == [0, 1]
    assert net.emitted[1].statement.pledges == net.my_prepare(SCPBallot(1, Z))


# Unused imports kept meaningful: A5/B3 appear in other modules' scenarios.
_ = (A4, A5, B3)
