"""The analysis on every real network in the shared test data, with known figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from testdata import FBAS

from scpd.analysis.engine import Engine
from scpd.analysis.fbas import Fbas, QSet, load_fbas, load_organizations
from scpd.analysis.quorums import minimal_quorums
from scpd.analysis.report import analyze, merge_by_org, merge_nodes
from scpd.base.quorum import is_quorum_slice
from scpd.base.types import PublicKey, SCPQuorumSet

DATA = FBAS
NETWORKS = sorted(p for p in DATA.glob("*.json") if "organizations" not in p.name)
SNAPSHOT = DATA / "stellarbeat_nodes_2019-09-17.json"
ORGS = DATA / "stellarbeat_organizations_2019-09-17.json"


def test_every_shared_network_file_is_found() -> None:
    # The parametrised tests below run once per file: none must vanish silently.
    assert len(NETWORKS) == 5 and SNAPSHOT in NETWORKS and ORGS.exists()


# Known figures from fbas_analyzer for the 2019-09-17 snapshot (its test suite).
SNAPSHOT_TOP_TIER = {1, 4, 8, 23, 29, 36, 37, 43, 44, 52, 56, 69, 86, 105, 167, 168, 171}


def to_scp(qset: QSet) -> SCPQuorumSet:
    return SCPQuorumSet(
        qset.threshold, tuple(PublicKey.from_strkey(v) for v in qset.validators), tuple(map(to_scp, qset.inner_sets))
    )


def is_quorum_independently(fbas: Fbas, nodes: frozenset[int]) -> bool:
    """Every member has a slice inside ``nodes``, judged by scpd.base.quorum on real SCP types."""
    members = [PublicKey.from_strkey(fbas.nodes[i].key) for i in nodes]
    for i in nodes:
        qset = fbas.nodes[i].qset
        if qset is None or not is_quorum_slice(to_scp(qset), members):
            return False
    return bool(nodes)


def test_every_network_file_is_analysed() -> None:
    assert len(NETWORKS) >= 5
    expected = {
        "broken.json": False,
        "correct.json": True,
        "mobilecoin_nodes_2021-10-22.json": True,
        "stellarbeat_nodes_2019-09-17.json": True,
        "stellarbeat_nodes_2020-01-16_broken_by_hand.json": False,
    }
    for path in NETWORKS:
        result = analyze(load_fbas(path), intersection_only=True)
        assert result.has_quorum_intersection == expected[path.name], path.name


@pytest.mark.parametrize("name", [p.name for p in NETWORKS if "broken" in p.name])
def test_broken_networks_come_with_two_disjoint_quorums(name: str) -> None:
    fbas = load_fbas(DATA / name)
    result = analyze(fbas, intersection_only=True)
    assert not result.has_quorum_intersection
    assert result.evidence is not None
    a, b = result.evidence
    assert a and b and not a & b
    assert is_quorum_independently(fbas, a)
    assert is_quorum_independently(fbas, b)


def test_independent_check_rejects_a_non_quorum() -> None:
    fbas = load_fbas(DATA / "broken.json")
    a, _ = analyze(fbas, intersection_only=True).evidence or (frozenset(), frozenset())
    assert not is_quorum_independently(fbas, frozenset(list(a)[:1]))


def test_broken_json_matches_fbas_analyzer() -> None:
    result = analyze(load_fbas(DATA / "broken.json"))
    assert result.top_tier == {3, 4, 6, 10}
    assert result.minimal_blocking_sets is not None and result.minimal_splitting_sets is not None
    assert set(result.minimal_blocking_sets.sets) == {frozenset({3, 4}), frozenset({4, 10}), frozenset({3, 6, 10})}
    assert result.minimal_splitting_sets.sets == (frozenset(),)


def test_correct_json_matches_fbas_analyzer() -> None:
    result = analyze(load_fbas(DATA / "correct.json"))
    pairs = {frozenset({0, 1}), frozenset({0, 10}), frozenset({1, 10})}
    assert result.has_quorum_intersection
    assert result.minimal_quorums is not None and result.minimal_blocking_sets is not None
    assert set(result.minimal_quorums.sets) == pairs
    assert set(result.minimal_blocking_sets.sets) == pairs
    assert result.minimal_splitting_sets is not None
    # Inside the top tier; fbas_analyzer also lists {4}, a node outside it that can split it.
    assert set(result.minimal_splitting_sets.sets) == {frozenset({0}), frozenset({1}), frozenset({10})}


def test_snapshot_top_tier_and_quorums_match_fbas_analyzer() -> None:
    fbas = load_fbas(SNAPSHOT)
    engine = Engine.build(fbas)
    mqs = minimal_quorums(engine)
    top = frozenset().union(*(engine.to_original(q) for q in mqs))
    assert top == SNAPSHOT_TOP_TIER
    sizes = [q.bit_count() for q in mqs]
    assert (min(sizes), max(sizes)) == (8, 9)
    assert abs(sum(sizes) / len(sizes) - 8.930232558139535) < 1e-9


def test_snapshot_full_analysis_matches_fbas_analyzer() -> None:
    fbas = load_fbas(SNAPSHOT)
    result = analyze(fbas)
    assert result.has_quorum_intersection and result.evidence is None
    assert result.top_tier == SNAPSHOT_TOP_TIER
    assert result.minimal_blocking_sets is not None and result.minimal_splitting_sets is not None
    blocking = [len(s) for s in result.minimal_blocking_sets.sets]
    assert (min(blocking), max(blocking)) == (4, 5)
    assert abs(sum(blocking) / len(blocking) - 4.689655172413793) < 1e-9
    splitting = {len(s) for s in result.minimal_splitting_sets.sets}
    assert splitting == {3}

    orgs = load_organizations(ORGS, fbas)
    assert result.minimal_quorums is not None
    names = {orgs.names.index(n) for n in ["Stellar Development Foundation", "LOBSTR", "SatoshiPay", "Keybase"]}
    names.add(orgs.names.index("COINQVEST Limited"))
    assert merge_nodes(result.top_tier, orgs, len(fbas)) == names
    merged_q = merge_by_org(result.minimal_quorums, orgs, len(fbas))
    merged_b = merge_by_org(result.minimal_blocking_sets, orgs, len(fbas))
    merged_s = merge_by_org(result.minimal_splitting_sets, orgs, len(fbas))
    assert [len(s) for s in merged_q.sets] == [4] * 5
    assert [len(s) for s in merged_b.sets] == [2] * 10
    assert [len(s) for s in merged_s.sets] == [3] * 10


def test_cli_exit_codes_and_json(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scpd", "quorum", "analyze", *args], capture_output=True, text=True, timeout=120
        )

    ok = run(str(DATA / "correct.json"), "--list")
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert doc["has_quorum_intersection"] is True
    assert doc["minimal_quorums"]["sets"] == [[0, 1], [0, 10], [1, 10]]
    broken = run(str(DATA / "broken.json"), "--keys", "--intersection-only")
    assert broken.returncode == 1
    doc = json.loads(broken.stdout)
    assert all(k.startswith("G") for q in doc["disjoint_quorums"] for k in q)
    text = run(str(DATA / "broken.json"), "--format", "text")
    assert text.returncode == 1 and "quorum intersection      NO" in text.stdout
    bad = tmp_path / "bad.json"
    bad.write_text('[{"publicKey": "A", "quorumSet": {"threshold": -1, "validators": []}}]')
    err = run(str(bad))
    assert err.returncode == 2
    assert err.stderr.count("\n") == 1 and "threshold" in err.stderr
    assert "exit status" in run("--help").stdout
