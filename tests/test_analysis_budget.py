"""``scpd quorum analyze`` on networks whose figures would take hours: past its budget of search steps
the report keeps what it found, the top tier and the intersection check, and names the step that stopped.
(25 symmetric validators have C(25, 17) = 1,081,575 minimal quorums: the old report never finished.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scpd.analysis.fbas import Fbas, Node, QSet
from scpd.analysis.report import analyze


def symmetric(n: int) -> Fbas:
    names = tuple(f"n{i}" for i in range(n))
    return Fbas(tuple(Node(k, QSet(n - (n - 1) // 3, names, ())) for k in names))


def test_past_the_budget_the_report_keeps_intersection_and_top_tier_and_names_the_step() -> None:
    result = analyze(symmetric(25), max_steps=2000)
    assert result.has_quorum_intersection is True
    assert result.top_tier == frozenset(range(25))
    assert result.incomplete == "minimal quorums"
    assert result.minimal_quorums is None and result.minimal_blocking_sets is None
    assert result.minimal_splitting_sets is None


def test_figures_found_before_the_budget_ran_out_are_kept() -> None:
    # 12 validators, 9 of 12: the 220 minimal quorums take 934 steps, their 495 blocking sets 715 more.
    result = analyze(symmetric(12), max_steps=1200)
    assert result.incomplete == "minimal blocking sets"
    assert result.minimal_quorums is not None and len(result.minimal_quorums.sets) == 220
    assert result.top_tier == frozenset(range(12))
    assert result.minimal_blocking_sets is None and result.minimal_splitting_sets is None
    complete = analyze(symmetric(12))
    assert complete.incomplete is None
    assert complete.minimal_blocking_sets is not None and len(complete.minimal_blocking_sets.sets) == 495
    # 924 splitting sets of 6 (2 * 9 - 12): any 6 liars let two quorums of 9 share only liars.
    assert complete.minimal_splitting_sets is not None and len(complete.minimal_splitting_sets.sets) == 924


def test_the_cli_past_its_budget_prints_what_it_has_and_one_line_on_stderr(tmp_path: Path) -> None:
    network = tmp_path / "sym25.json"
    names = [node.key for node in symmetric(25).nodes]
    qset = {"threshold": 17, "validators": names, "innerQuorumSets": []}
    network.write_text(json.dumps([{"publicKey": k, "quorumSet": qset} for k in names]))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "scpd", "quorum", "analyze", str(network), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    done = run("--max-steps", "2000")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["has_quorum_intersection"] is True and doc["top_tier_size"] == 25
    assert doc["complete"] is False and doc["incomplete"] == "minimal quorums"
    assert "minimal_quorums" not in doc
    assert done.stderr.count("\n") == 1 and "--max-steps" in done.stderr
    refused = run("--max-steps", "0")
    assert refused.returncode == 2 and "--max-steps" in refused.stderr
