"""The periodic quorum line, lost sync / back in sync, and dial failures a node with no peer shows."""

from __future__ import annotations

from pathlib import Path

from netutil import Network, Node, wait_for

from scpd.base.keys import Keypair
from scpd.base.quorum import closest_v_blocking
from scpd.base.types import NodeID, SCPQuorumSet
from scpd.operator.quorum_log import SYNCED_INTERVAL, LogLine, QuorumLog
from scpd.operator.status import MemberState, NodeStatus, QuorumMember

L, A, B, C = (Keypair(bytes([0x60 + i]) * 32).public_key for i in range(4))
QSET = SCPQuorumSet(3, (L, A, B, C))
NAMES = {L: "local", A: "a", B: "b", C: "c"}
SLOT = 5.0


def status(state: str, **members: MemberState) -> NodeStatus:
    """As scpd.operator.status computes it: fail_with from the members still up."""
    states = {L: MemberState.AGREE, **{k: members.get(NAMES[k], MemberState.AGREE) for k in (A, B, C)}}
    up = {n for n, s in states.items() if s not in (MemberState.MISSING, MemberState.DISAGREE)}
    fail_with = closest_v_blocking(QSET, up, L)
    return NodeStatus(state, [QuorumMember(n, s, None, 0.0) for n, s in states.items()], True, False, 0.0, fail_with)


def label(node: NodeID) -> str:
    return NAMES[node]


def events(lines: list[LogLine]) -> list[tuple[str, str]]:
    return [(line.level, line.event) for line in lines]


def quorum_log() -> QuorumLog:
    return QuorumLog(label, SLOT, joining_grace=3 * SLOT)


def test_a_synced_node_says_so_once_then_every_minute() -> None:
    q = quorum_log()
    first = q.lines(status("synced"), 10, 1000.0)
    assert events(first) == [("info", "in sync"), ("info", "quorum")]
    summary = first[1].fields
    assert summary["agree"] == 4 and summary["missing"] == summary["delayed"] == summary["disagree"] == 0
    # Two of a, b, c failing leave no slice of 3 of 4: two more failures would block us.
    assert summary["fail_at"] == 2
    assert len(summary["fail_with"]) == 2  # type: ignore[arg-type]
    assert q.lines(status("synced"), 11, 1000.0 + SLOT) == []
    assert q.lines(status("synced"), 20, 1000.0 + SYNCED_INTERVAL - 0.1) == []
    assert events(q.lines(status("synced"), 21, 1000.0 + SYNCED_INTERVAL)) == [("info", "quorum")]


def test_losing_the_quorum_is_said_at_once_then_every_slot_and_recovery_too() -> None:
    q = quorum_log()
    q.lines(status("synced"), 10, 0.0)
    lost = q.lines(status("stuck", a=MemberState.MISSING, b=MemberState.DISAGREE), 10, 1.0)
    assert events(lost) == [("warning", "lost sync"), ("warning", "quorum")]
    summary = lost[1].fields
    assert (summary["agree"], summary["missing"], summary["disagree"]) == (2, 1, 1)
    assert summary["missing_nodes"] == ["a"] and summary["disagree_nodes"] == ["b"]
    assert summary["fail_at"] == 0 and summary["fail_with"] == []  # already blocked
    stuck = status("stuck", a=MemberState.MISSING, b=MemberState.DELAYED)
    assert q.lines(stuck, 10, 1.0 + SLOT - 0.1) == []
    again = q.lines(stuck, 10, 1.0 + SLOT)
    assert events(again) == [("warning", "quorum")]
    # Delayed members are still with us: one more failure (b or c) blocks us.
    assert again[0].fields["delayed"] == 1 and again[0].fields["fail_at"] == 1
    assert events(q.lines(status("synced"), 11, 12.0)) == [("info", "back in sync"), ("info", "quorum")]


def test_a_quorum_no_failure_can_block_reports_no_fail_at() -> None:
    q = QuorumLog(label, SLOT, joining_grace=0.0)
    alone = NodeStatus("synced", [QuorumMember(L, MemberState.AGREE, None, 0.0)], True, False, 0.0, None)
    line = q.lines(alone, 1, 0.0)
    assert line[-1].fields["fail_at"] is None and line[-1].fields["fail_with"] is None


def test_a_joining_node_is_quiet_for_the_grace_then_says_so_every_slot() -> None:
    q = quorum_log()
    joining = status("joining", a=MemberState.MISSING, b=MemberState.MISSING, c=MemberState.MISSING)
    assert q.lines(joining, 0, 100.0) == []
    assert q.lines(joining, 0, 100.0 + 3 * SLOT - 0.1) == []
    first = q.lines(joining, 0, 100.0 + 3 * SLOT)
    assert events(first) == [("info", "quorum")]
    assert first[0].fields["missing"] == 3 and first[0].fields["fail_at"] == 0
    assert events(q.lines(joining, 0, 100.0 + 4 * SLOT)) == [("info", "quorum")]
    # Syncing within the grace is said at once.
    q = quorum_log()
    q.lines(joining, 0, 0.0)
    assert events(q.lines(status("synced"), 1, 1.0)) == [("info", "in sync"), ("info", "quorum")]


def records(node: Node, event: str) -> list[dict[str, object]]:
    node.poll_log()
    return [r for r in node.records if r.get("event") == event]


def test_a_node_without_peers_says_so_every_slot_and_warns_of_each_dial_failure(tmp_path: Path) -> None:
    net = Network(tmp_path, 4, slot_interval=0.5)
    alone = net.nodes[0]
    alone.start()
    try:
        wait_for(lambda: len(records(alone, "quorum")) >= 3, 30, "three quorum lines")
        line = records(alone, "quorum")[-1]
        assert line["level"] == "info"  # joining, not stuck: it never had a quorum
        assert (line["state"], line["missing"], line["agree"], line["fail_at"]) == ("joining", 3, 1, 0)
        # The first failure of an address may be a peer still starting; the next ones are warnings.
        wait_for(lambda: any(r["failures"] == 2 for r in records(alone, "dial failed")), 30, "a second dial failure")
        levels = {r["failures"]: r["level"] for r in records(alone, "dial failed")}
        assert levels[1] == "info" and levels[2] == "warning"
        retry_in = records(alone, "dial failed")[-1]["retry_in"]
        assert isinstance(retry_in, float) and retry_in > 0
    finally:
        alone.terminate()


def test_survivors_log_lost_sync_when_half_the_network_goes_and_back_in_sync_when_it_returns(
    tmp_path: Path,
) -> None:
    with Network(tmp_path, 4, slot_interval=0.5) as net:
        watcher, gone = net.nodes[0], net.nodes[2:]
        net.wait_slot(3)
        wait_for(lambda: bool(records(watcher, "in sync")), 30, "in sync")
        for node in gone:
            node.kill()
        wait_for(lambda: bool(records(watcher, "lost sync")), 60, "lost sync")
        wait_for(
            lambda: any(r["missing"] == 2 and r["fail_at"] == 0 for r in records(watcher, "quorum")),
            60,
            "a quorum line with the two killed members missing",
        )
        for node in gone:
            node.start()
        wait_for(lambda: bool(records(watcher, "back in sync")), 90, "back in sync")
        for node in net.nodes:
            assert node.terminate() == 0
