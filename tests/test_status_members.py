"""Each quorum member's state, classified from what the consensus core holds: no processes, no clock.

The states are the ones ``/quorum``, the quorum log line and
``scpd_quorum_members`` report (scpd.operator.status).
"""

from __future__ import annotations

from typing import cast

from scpd.base.keys import Keypair
from scpd.base.types import (
    NodeID,
    SCPBallot,
    SCPConfirm,
    SCPEnvelope,
    SCPExternalize,
    SCPNomination,
    SCPPrepare,
    SCPQuorumSet,
    SCPStatement,
)
from scpd.operator.status import MemberState, QuorumMember, quorum_members, stale_after, state_counts
from scpd.scp.scp import SCP

NODES = [Keypair(bytes([0x40 + i]) * 32).public_key for i in range(7)]
LOCAL = NODES[0]
OURS, THEIRS = b"ours", b"theirs"
LAST = 9  # the last closed slot
NOW = 1000.0
STALE = 15.0


class FakeCore:
    """What ``quorum_members`` asks of the consensus core, and nothing else."""

    def __init__(self, latest: dict[NodeID, SCPEnvelope], committed: list[SCPEnvelope]) -> None:
        self.quorum_set = SCPQuorumSet(4, tuple(NODES))
        self._latest = latest
        self._committed = committed

    def get_externalized_value(self, slot: int) -> bytes | None:
        return OURS if slot == LAST else None

    def get_externalizing_state(self, slot: int) -> list[SCPEnvelope]:
        return self._committed if slot == LAST else []

    def get_latest_message(self, node: NodeID) -> SCPEnvelope | None:
        return self._latest.get(node)


def env(node: NodeID, slot: int, pledges: SCPPrepare | SCPConfirm | SCPExternalize | SCPNomination) -> SCPEnvelope:
    return SCPEnvelope(SCPStatement(node, slot, pledges), b"")


def classify(
    latest: dict[NodeID, SCPEnvelope],
    heard: dict[NodeID, float],
    committed: list[SCPEnvelope] | None = None,
    equivocating: frozenset[NodeID] = frozenset(),
) -> dict[NodeID, QuorumMember]:
    core = cast(SCP, FakeCore(latest, committed or []))
    members = quorum_members(core, LOCAL, LAST, heard, NOW, STALE, equivocating)
    return {m.node_id: m for m in members}


def test_each_member_state_from_the_core_and_the_clock() -> None:
    a, b, c, d, e, f = NODES[1:]
    h = bytes(32)
    committed = env(b, LAST, SCPExternalize(SCPBallot(1, OURS), 1, h))
    latest = {
        a: env(a, LAST + 1, SCPNomination(h, (OURS,), ())),  # speaks about the current slot
        b: committed,  # committed our value for the last slot
        c: env(c, LAST, SCPPrepare(h, SCPBallot(1, OURS))),  # still preparing the last slot
        d: env(d, LAST, SCPConfirm(SCPBallot(1, THEIRS), 1, 1, 1, h)),  # confirmed another value
        e: env(e, LAST + 1, SCPNomination(h, (OURS,), ())),  # current, but silent for too long
        f: env(f, LAST + 1, SCPNomination(h, (OURS,), ())),  # current, but caught signing twice
    }
    heard = {a: NOW - 1, b: NOW - 1, c: NOW - 1, d: NOW - 1, e: NOW - STALE - 1, f: NOW - 1}
    got = classify(latest, heard, [committed], frozenset({f}))
    assert {n: m.state for n, m in got.items()} == {
        LOCAL: MemberState.AGREE,
        a: MemberState.AGREE,
        b: MemberState.AGREE,
        c: MemberState.DELAYED,
        d: MemberState.DISAGREE,
        e: MemberState.MISSING,
        f: MemberState.EQUIVOCATING,
    }
    assert got[a].heard_seconds_ago == 1.0 and got[a].latest == latest[a]
    assert state_counts(got.values()) == {"agree": 3, "delayed": 1, "missing": 1, "disagree": 1, "equivocating": 1}


def test_never_heard_of_is_missing_and_the_local_node_always_agrees() -> None:
    got = classify({}, {})
    assert got[LOCAL].state is MemberState.AGREE
    assert all(m.state is MemberState.MISSING and m.heard_seconds_ago is None for n, m in got.items() if n != LOCAL)
    # A statement with no sign of life from its node (a re-flooded copy) keeps nobody alive.
    a = NODES[1]
    got = classify({a: env(a, LAST + 1, SCPNomination(bytes(32), (OURS,), ()))}, {})
    assert got[a].state is MemberState.MISSING


def test_counts_name_every_state_even_when_empty() -> None:
    assert state_counts([]) == {s.value: 0 for s in MemberState}


def test_stale_after_is_three_slots_and_at_least_ten_seconds() -> None:
    assert stale_after(1.0) == 10.0
    assert stale_after(5.0) == 15.0
