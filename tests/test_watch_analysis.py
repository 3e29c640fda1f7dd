"""The running node's quorum analysis (``GET /quorum``'s ``transitive``) stays cheap on big networks and
bounded on any: a symmetric network of 25 validators made every node's analysis thread list C(25, 17)
minimal quorums, starving its event loop for minutes."""

from __future__ import annotations

import pytest
import structlog
from scp_harness import keypair

from scpd.base.types import NodeID, SCPQuorumSet
from scpd.operator import watch


def symmetric(n: int) -> tuple[NodeID, SCPQuorumSet, dict[NodeID, SCPQuorumSet]]:
    nodes = tuple(keypair(i).public_key for i in range(n))
    qset = SCPQuorumSet(n - (n - 1) // 3, nodes)
    return nodes[0], qset, {node: qset for node in nodes[1:]}


def test_the_top_tier_of_25_symmetric_validators_is_found_within_the_budget() -> None:
    local, qset, known = symmetric(25)
    result = watch.analyse(local, qset, known, str)
    assert result["intersection"] is True
    assert result["problems"] == []
    assert {entry["node"] for entry in result["top_tier"]} == {str(n) for n in [local, *known]}


def test_an_analysis_past_its_budget_reports_not_known_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "ANALYSIS_STEPS", 3)
    local, qset, known = symmetric(25)
    with structlog.testing.capture_logs() as logs:
        result = watch.analyse(local, qset, known, str)
    assert result["intersection"] is None and result["top_tier"] is None
    assert result["problems"] == ["quorum intersection not known: the network is too large to search within the budget"]
    assert [entry["event"] for entry in logs] == ["quorum analysis incomplete"]
