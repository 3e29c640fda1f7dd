"""check_local_quorum: the report a node and check-config act upon."""

from __future__ import annotations

from pathlib import Path

import pytest

from scpd.analysis.fbas import AnalysisInputError, load_fbas
from scpd.analysis.local import check_local_quorum
from scpd.analysis.report import analyze
from scpd.base.keys import Keypair
from scpd.base.types import NodeID, SCPQuorumSet


def keys(n: int) -> list[NodeID]:
    return [Keypair.random().public_key for _ in range(n)]


def test_symmetric_majority_is_fine() -> None:
    a, b, c, d = keys(4)
    qset = SCPQuorumSet(3, (a, b, c, d))
    report = check_local_quorum(a, qset, {}, unknown_like_local=True)
    assert report.ok and report.problems() == []
    assert report.intersection and report.in_quorum and report.evidence is None


def test_half_threshold_gives_two_disjoint_quorums() -> None:
    a, b, c, d = keys(4)
    qset = SCPQuorumSet(2, (a, b, c, d))
    report = check_local_quorum(a, qset, {}, unknown_like_local=True)
    assert not report.intersection and report.evidence is not None
    first, second = report.evidence
    assert not first & second
    assert "no quorum intersection" in report.problems()[0]


def test_single_node_and_single_org_that_block_the_local_node() -> None:
    a, b, c, d, e = keys(5)
    local = SCPQuorumSet(2, (b,), (SCPQuorumSet(1, (c, d)),))  # b, and one of c and d
    known = {n: SCPQuorumSet(2, (b, c, d)) for n in (b, c, d)}
    report = check_local_quorum(a, local, known, orgs={c: "Org C", d: "Org C", b: "Org B", e: "Org E"})
    assert report.blocking_nodes == (b,)
    assert report.blocking_orgs == ("Org B", "Org C")
    assert report.intersection and report.in_quorum and not report.ok
    assert any("single organisation" in p for p in report.problems())


def test_unknown_validators_are_absent_by_default() -> None:
    a, b, c = keys(3)
    qset = SCPQuorumSet(2, (a, b, c))
    report = check_local_quorum(a, qset, {})
    assert set(report.unknown) == {b, c}
    assert not report.in_quorum and not report.intersection
    assert "in no quorum" in report.problems()[0]


def test_toml_configs_load_as_a_network(tmp_path: Path) -> None:
    a, b, c = (str(k) for k in keys(3))
    for i, me in enumerate((a, b, c)):
        (tmp_path / f"n{i}.toml").write_text(
            f'[node]\npublic_key = "{me}"\n\n[[validators]]\nname = "bee"\npublic_key = "{b}"\n\n'
            f'[quorum_set]\nthreshold_percent = 67\nvalidators = ["{a}", "bee"]\n\n'
            f'[[quorum_set.inner_sets]]\nthreshold = 1\nvalidators = ["{c}"]\n'
        )
    fbas = load_fbas(tmp_path)
    assert [n.key for n in fbas.nodes] == [a, b, c]
    assert fbas.nodes[0].qset is not None and fbas.nodes[0].qset.threshold == 3
    assert fbas.nodes[0].qset.validators == (a, b)
    result = analyze(fbas)
    assert result.has_quorum_intersection and result.top_tier == {0, 1, 2}


def test_bad_toml_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[node]\npublic_key = "GX"\n[quorum_set]\nthreshold = 1\nthreshold_percent = 50\n')
    with pytest.raises(AnalysisInputError, match="exactly one of threshold and threshold_percent"):
        load_fbas(path)
