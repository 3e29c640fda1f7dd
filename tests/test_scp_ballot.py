"""Ballot protocol scenarios on a 5-node 4-of-5 set (ported from stellar-core's "ballot protocol core5").

The local node is v0. A v-blocking set is any 2 peers; a quorum including
v0 is v0 plus any 3 peers. Each test walks the protocol to a state (the
nested SECTIONs of the original become chained setup helpers) and pins down
exactly which statement v0 emits next, and whether its ballot timer runs.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from scp_harness import INF, Network

from scpd.base.types import SCPBallot, SCPEnvelope

X, Y, Z, ZZ = b"x", b"y", b"z", b"zz"
# "start <1,x>": A is the value we start with, B a bigger competing value.
A, B, MID, BIG = X, Z, Y, ZZ
A1, A2, A3, A4, A5 = (SCPBallot(n, A) for n in range(1, 6))
B1, B2, B3 = (SCPBallot(n, B) for n in range(1, 4))
MID1, MID2 = SCPBallot(1, MID), SCPBallot(2, MID)
BIG1, BIG2 = SCPBallot(1, BIG), SCPBallot(2, BIG)
AINF, BINF = SCPBallot(INF, A), SCPBallot(INF, B)

Gen = Callable[[int], SCPEnvelope]


def core5() -> Network:
    return Network(5, 4)


def prep(
    net: Network,
    b: SCPBallot,
    p: SCPBallot | None = None,
    nc: int = 0,
    nh: int = 0,
    p_prime: SCPBallot | None = None,
) -> Gen:
    return lambda i: net.prepare(i, b, p, nc, nh, p_prime)


def conf(net: Network, n_prepared: int, b: SCPBallot, nc: int, nh: int) -> Gen:
    return lambda i: net.confirm(i, b, n_prepared, nc, nh)


def ext(net: Network, commit: SCPBallot, nh: int) -> Gen:
    return lambda i: net.externalize(i, commit, nh)


def assert_last_prepare(
    net: Network,
    b: SCPBallot,
    p: SCPBallot | None = None,
    nc: int = 0,
    nh: int = 0,
    p_prime: SCPBallot | None = None,
) -> None:
    assert net.last_pledges() == net.my_prepare(b, p, nc, nh, p_prime)


def assert_last_confirm(net: Network, n_prepared: int, b: SCPBallot, nc: int, nh: int) -> None:
    assert net.last_pledges() == net.my_confirm(b, n_prepared, nc, nh)


def assert_last_externalize(net: Network, commit: SCPBallot, nh: int) -> None:
    assert net.last_pledges() == net.my_externalize(commit, nh)


# -- the path to each state -------------------------------------------------


def start_a1(net: Network) -> None:
    assert not net.has_ballot_timer()
    assert net.scp.bump_state(0, A)
    assert len(net.emitted) == 1
    assert_last_prepare(net, A1)
    assert not net.has_ballot_timer()


def prepared_a1(net: Network) -> None:
    start_a1(net)
    net.recv_quorum_ex(prep(net, A1), True)
    assert len(net.emitted) == 2
    assert_last_prepare(net, A1, A1)


def bump_prepared_a2(net: Network) -> None:
    prepared_a1(net)
    net.driver.bump_timer_offset()
    assert net.scp.bump_state(0, A)
    assert len(net.emitted) == 3
    assert_last_prepare(net, A2, A1)
    assert not net.has_ballot_timer()
    net.recv_quorum_ex(prep(net, A2), True)
    assert len(net.emitted) == 4
    assert_last_prepare(net, A2, A2)


def confirm_prepared_a2(net: Network) -> None:
    bump_prepared_a2(net)
    net.recv_quorum(prep(net, A2, A2))
    assert len(net.emitted) == 5
    assert_last_prepare(net, A2, A2, 2, 2)
    assert not net.has_ballot_timer_upcoming()


def accept_commit_quorum_a2(net: Network) -> None:
    confirm_prepared_a2(net)
    net.recv_quorum(prep(net, A2, A2, 2, 2))
    assert len(net.emitted) == 6
    assert_last_confirm(net, 2, A2, 2, 2)
    assert not net.has_ballot_timer_upcoming()


def quorum_prepared_a3(net: Network) -> None:
    accept_commit_quorum_a2(net)
    net.recv_vblocking(prep(net, A3, A2, 2, 2))
    assert len(net.emitted) == 7
    assert_last_confirm(net, 2, A3, 2, 2)
    assert not net.has_ballot_timer()
    net.recv_quorum_ex(prep(net, A3, A2, 2, 2), True)
    assert len(net.emitted) == 8
    assert_last_confirm(net, 3, A3, 2, 2)


# -- tests ------------------------------------------------------------------


def test_bump_state_emits_prepare_1_x() -> None:
    net = core5()
    assert net.scp.bump_state(0, X)
    assert net.emitted_pledges() == [net.my_prepare(SCPBallot(1, X))]


def test_normal_round_from_start_to_externalize() -> None:
    net = core5()
    quorum_prepared_a3(net)
    net.recv_quorum(prep(net, A3, A3, 2, 3))
    assert len(net.emitted) == 9
    assert_last_confirm(net, 3, A3, 2, 3)
    assert not net.has_ballot_timer_upcoming()
    assert net.driver.externalized == []
    net.recv_quorum(conf(net, 3, A3, 2, 3))
    assert len(net.emitted) == 10
    assert_last_externalize(net, A2, 3)
    assert not net.has_ballot_timer()
    assert net.driver.externalized == [(0, A)]
    assert net.scp.get_externalized_value(0) == A


def test_externalize_fires_once_even_with_more_confirms() -> None:
    net = core5()
    quorum_prepared_a3(net)
    net.recv_quorum(prep(net, A3, A3, 2, 3))
    net.recv_quorum(conf(net, 3, A3, 2, 3))
    net.receive(net.externalize(1, A2, 3), net.externalize(2, A2, 3), net.externalize(3, A2, 3))
    assert net.driver.externalized == [(0, A)]
    assert len(net.emitted) == 10


def test_timer_armed_once_quorum_at_counter() -> None:
    net = core5()
    start_a1(net)
    net.receive(net.prepare(1, A1), net.prepare(2, A1))
    assert not net.has_ballot_timer()
    net.receive(net.prepare(3, A1))
    assert net.has_ballot_timer()
    assert net.driver.hook_calls("ballot_did_hear_from_quorum") == [A1]


@pytest.mark.parametrize(
    ("gen", "expected"),
    [
        (lambda net: conf(net, 3, A3, 2, 3), (3, A3, 2, 3)),
        (lambda net: ext(net, A2, 3), (INF, AINF, 2, INF)),
        (lambda net: conf(net, 3, A5, 4, 5), (3, A5, 4, 5)),
        (lambda net: ext(net, A4, 5), (INF, AINF, 4, INF)),
    ],
    ids=["confirm-A3", "externalize-A3", "confirm-A4..5", "externalize-A4..5"],
)
def test_vblocking_accepts_more_commit_from_confirm(
    gen: Callable[[Network], Gen], expected: tuple[int, SCPBallot, int, int]
) -> None:
    net = core5()
    quorum_prepared_a3(net)
    net.recv_vblocking(gen(net))
    assert len(net.emitted) == 9
    assert_last_confirm(net, *expected)
    if expected[0] == INF or expected[1] == A5:
        assert not net.has_ballot_timer()
    else:
        assert not net.has_ballot_timer_upcoming()


@pytest.mark.parametrize(
    "gen",
    [
        lambda net: prep(net, A3, A3, 2, 2),
        lambda net: prep(net, A3, B3, 2, 2, A3),
        lambda net: conf(net, 3, A3, 2, 2),
    ],
    ids=["prepared-A3", "prepared-A3+B3", "confirm-A3"],
)
def test_vblocking_in_confirm_moves_p_up(gen: Callable[[Network], Gen]) -> None:
    net = core5()
    accept_commit_quorum_a2(net)
    net.recv_vblocking(gen(net))
    assert len(net.emitted) == 7
    assert_last_confirm(net, 3, A3, 2, 2)
    assert not net.has_ballot_timer()


def test_confirm_does_not_switch_to_b_on_network_externalize() -> None:
    net = core5()
    accept_commit_quorum_a2(net)
    # EXTERNALIZE has an infinite counter: we jump b to it but keep our value.
    net.recv_vblocking(ext(net, B2, 3))
    assert len(net.emitted) == 7
    assert_last_confirm(net, 2, AINF, 2, 2)
    assert not net.has_ballot_timer()
    net.recv_quorum_checks(ext(net, B2, 3), False, False)
    assert len(net.emitted) == 7
    assert net.driver.externalized == []
    assert net.has_ballot_timer_upcoming()


def test_confirm_does_not_switch_when_network_confirms_b_at_same_counter() -> None:
    net = core5()
    accept_commit_quorum_a2(net)
    net.recv_quorum_checks(conf(net, 3, B2, 2, 3), False, False)
    assert len(net.emitted) == 6
    assert net.driver.externalized == []
    assert not net.has_ballot_timer_upcoming()


def test_confirm_does_not_switch_when_network_confirms_b_at_higher_counter() -> None:
    net = core5()
    accept_commit_quorum_a2(net)
    net.recv_vblocking(conf(net, 3, B3, 3, 3))
    assert len(net.emitted) == 7
    assert_last_confirm(net, 2, A3, 2, 2)
    assert not net.has_ballot_timer()
    net.recv_quorum_checks(conf(net, 3, B3, 3, 3), False, False)
    assert len(net.emitted) == 7
    assert net.driver.externalized == []
    assert net.has_ballot_timer_upcoming()


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
def test_vblocking_confirm_or_externalize_moves_to_confirm(
    gen: Callable[[Network], Gen], expected: tuple[int, SCPBallot, int, int]
) -> None:
    net = core5()
    confirm_prepared_a2(net)
    net.recv_vblocking(gen(net))
    assert len(net.emitted) == 6
    assert_last_confirm(net, *expected)
    if expected[1].counter in (INF, 4):
        assert not net.has_ballot_timer()
    else:
        assert not net.has_ballot_timer_upcoming()


def test_conflicting_prepared_b_at_same_counter() -> None:
    net = core5()
    confirm_prepared_a2(net)
    net.recv_vblocking(prep(net, B2, B2))
    assert len(net.emitted) == 6
    assert_last_prepare(net, A2, B2, 0, 2, A2)
    assert not net.has_ballot_timer_upcoming()
    net.recv_quorum(prep(net, B2, B2, 2, 2))
    assert len(net.emitted) == 7
    assert_last_confirm(net, 2, B2, 2, 2)
    assert not net.has_ballot_timer_upcoming()


def test_conflicting_prepared_b_at_higher_counter() -> None:
    net = core5()
    confirm_prepared_a2(net)
    net.recv_vblocking(prep(net, B3, B2, 2, 2))
    assert len(net.emitted) == 6
    assert_last_prepare(net, A3, B2, 0, 2, A2)
    assert not net.has_ballot_timer()
    net.recv_quorum_checks_ex(prep(net, B3, B2, 2, 2), True, True, True)
    assert len(net.emitted) == 7
    assert_last_confirm(net, 3, B3, 2, 2)


def test_conflicting_prepared_higher_counter_mixed() -> None:
    net = core5()
    confirm_prepared_a2(net)
    net.recv_vblocking(prep(net, A3, B3, 0, 2, A2))
    assert len(net.emitted) == 6
    # h still A2; p = B3, p' = A2; b = A3 (same value as h); c reset.
    assert_last_prepare(net, A3, B3, 0, 2, A2)
    net.recv_quorum_ex(prep(net, A3, B3, 0, 2, A2), True)
    # p = B3, p' = A3; h = B3 confirmed; b moves to h = B3; c = h = B3.
    assert len(net.emitted) == 7
    assert_last_prepare(net, B3, B3, 3, 3, A3)


def test_confirm_prepared_mixed_a2_sets_h_without_c() -> None:
    net = core5()
    bump_prepared_a2(net)
    net.recv_vblocking(prep(net, B2, B2, 0, 0, A2))
    assert len(net.emitted) == 5
    assert_last_prepare(net, A2, B2, 0, 0, A2)
    assert not net.has_ballot_timer_upcoming()
    net.driver.bump_timer_offset()
    net.receive(net.prepare(3, A2, A2))
    assert len(net.emitted) == 6
    # h = A2 but c stays 0, as p = B2 is above h with another value.
    assert_last_prepare(net, A2, B2, 0, 2, A2)
    assert not net.has_ballot_timer_upcoming()
    net.driver.bump_timer_offset()
    net.receive(net.prepare(4, A2, A2))
    assert len(net.emitted) == 6
    assert not net.has_ballot_timer_upcoming()


def test_confirm_prepared_mixed_b2_sets_h_and_c_to_b2() -> None:
    net = core5()
    bump_prepared_a2(net)
    net.recv_vblocking(prep(net, B2, B2, 0, 0, A2))
    net.driver.bump_timer_offset()
    net.receive(net.prepare(3, B2, B2))
    assert len(net.emitted) == 6
    assert_last_prepare(net, B2, B2, 2, 2, A2)
    assert not net.has_ballot_timer_upcoming()
