"""Ballot scenarios on a 3-node 2-of-3 set, where a v-blocking set and a quorum can coincide
(ported from stellar-core's "ballot protocol core3")."""

from __future__ import annotations

from collections.abc import Callable

from scp_harness import Network

from scpd.base.types import SCPBallot, SCPEnvelope

X, Y, Z = b"x", b"y", b"z"
# Here A is the bigger value and B the smaller one.
A1, A2 = SCPBallot(1, Z), SCPBallot(2, Z)
B1, B2 = SCPBallot(1, X), SCPBallot(2, X)

Gen = Callable[[int], SCPEnvelope]


def core3() -> Network:
    return Network(3, 2)


def recv_quorum_checks_ex2(
    net: Network, gen: Gen, with_checks: bool, delayed_quorum: bool, check_upcoming: bool, min_quorum: bool
) -> None:
    """v1 (already a quorum with us), then v2 unless ``min_quorum``."""
    e1, e2 = gen(1), gen(2)
    net.driver.bump_timer_offset()
    i = len(net.emitted) + 1
    net.receive(e1)
    if with_checks and not delayed_quorum:
        assert len(net.emitted) == i
    if check_upcoming:
        assert net.has_ballot_timer_upcoming()
    if not min_quorum:
        net.receive(e2)
        if with_checks:
            assert len(net.emitted) == i


def recv_quorum_checks(net: Network, gen: Gen, with_checks: bool, delayed_quorum: bool) -> None:
    recv_quorum_checks_ex2(net, gen, with_checks, delayed_quorum, False, False)


def prep(
    net: Network, b: SCPBallot, p: SCPBallot | None = None, nc: int = 0, nh: int = 0, pp: SCPBallot | None = None
) -> Gen:
    return lambda i: net.prepare(i, b, p, nc, nh, pp)


def test_quorum_votes_b1_while_local_is_on_a() -> None:
    net = core3()
    assert net.scp.bump_state(0, Z)
    assert len(net.emitted) == 1
    assert not net.has_ballot_timer()
    net.driver.bump_timer_offset()
    recv_quorum_checks(net, prep(net, B1), True, True)
    assert len(net.emitted) == 2
    assert net.last_pledges() == net.my_prepare(A1, B1)
    assert net.has_ballot_timer_upcoming()

    # A quorum prepared B1: h would be B1, but b = A1 > B1, so neither h nor c move.
    net.driver.bump_timer_offset()
    recv_quorum_checks(net, prep(net, B1, B1), False, False)
    assert len(net.emitted) == 2
    assert not net.has_ballot_timer_upcoming()

    # The quorum moves to A1: p = A1, p' = B1; h still unset as b > computed h.
    net.driver.bump_timer_offset()
    recv_quorum_checks_ex2(net, prep(net, A1, B1), False, False, False, True)
    assert len(net.emitted) == 3
    assert net.last_pledges() == net.my_prepare(A1, A1, 0, 0, B1)
    assert not net.has_ballot_timer_upcoming()

    # The quorum commits A1.
    net.driver.bump_timer_offset()
    recv_quorum_checks_ex2(net, prep(net, A2, A1, 1, 1, B1), False, False, False, True)
    assert len(net.emitted) == 4
    assert net.last_pledges() == net.my_confirm(A1, 2, 1, 1)
    assert not net.has_ballot_timer_upcoming()


def test_prepared_a1_with_timeout() -> None:
    net = core3()
    assert net.scp.bump_state(0, X)  # the smallest value
    assert len(net.emitted) == 1
    recv_quorum_checks(net, prep(net, A1, A1, 0, 1), False, False)
    assert len(net.emitted) == 2
    assert net.last_pledges() == net.my_prepare(A1, A1, 1, 1)
    recv_quorum_checks(net, prep(net, A2, B2, 0, 1, A1), True, True)
    assert len(net.emitted) == 3
    # p = B2, p' = A1 then A2; b jumps to the v-blocking counter 2 with h's
    # value... h = B2 once b is compatible; c stays 0.
    assert net.last_pledges() == net.my_prepare(B2, A2, 0, 2, B2)


def test_node_outside_its_quorum_set_follows_on_quorum_timeout() -> None:
    net = Network(3, 2, local_outside=True)
    net.receive(net.prepare(1, A2, B2, 0, 1, A1))
    net.receive(net.prepare(2, A1, A1, 1, 1))
    assert len(net.emitted) == 1
    assert net.last_pledges() == net.my_prepare(A1, A1, 1, 1)
    net.receive(net.prepare(0, A2, B2, 0, 1, A1))
    assert len(net.emitted) == 2
    assert net.last_pledges() == net.my_prepare(B2, A2, 0, 2, B2)
