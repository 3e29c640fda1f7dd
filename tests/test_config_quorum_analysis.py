"""check-config and node start-up analyse the quorum set: intersection, and who alone can halt us."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from scpd.base.keys import Keypair
from scpd.operator.config import load_config
from scpd.operator.localnet_config import localnet_configs, write_localnet

KEYS = [Keypair(bytes([i + 40]) * 32) for i in range(5)]
PK = [str(k.public_key) for k in KEYS]


def config(qset: str) -> str:
    """Node n0 with quorum set ``qset``; sets that are unsafe on purpose say ``unsafe_quorum = true``."""
    validators = "\n".join(f'[[validators]]\nname = "n{i}"\npublic_key = "{PK[i]}"\n' for i in range(5))
    return f"""
[node]
seed = "{KEYS[0].seed_strkey}"

[network]
passphrase = "analysis test"

{validators}
[quorum_set]
{qset}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def quorum_warnings(path: Path) -> list[str]:
    return [w.message for w in load_config(path).warnings if w.key == "quorum_set"]


def test_a_bft_symmetric_set_has_no_quorum_warning(tmp_path: Path) -> None:
    path = write(tmp_path, config('threshold = 4\nvalidators = ["n0", "n1", "n2", "n3", "n4"]'))
    assert quorum_warnings(path) == []


def test_a_set_where_one_node_can_halt_us_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, config('threshold = 2\nvalidators = ["n0", "n1"]\nunsafe_quorum = true'))
    [warning] = quorum_warnings(path)
    assert warning == f"a single node failing halts the local node: n1 ({PK[1]})"


def test_disjoint_quorums_are_evidence_of_no_intersection(tmp_path: Path) -> None:
    path = write(tmp_path, config('threshold = 2\nvalidators = ["n0", "n1", "n2", "n3", "n4"]\nunsafe_quorum = true'))
    problems = quorum_warnings(path)
    assert any(p.startswith("no quorum intersection: {") and "are disjoint quorums" in p for p in problems)


def test_check_config_warns_and_strict_refuses(tmp_path: Path) -> None:
    path = write(tmp_path, config('threshold = 2\nvalidators = ["n0", "n1"]\nunsafe_quorum = true'))
    run = [sys.executable, "-m", "scpd", "check-config"]
    relaxed = subprocess.run([*run, str(path)], capture_output=True, text=True, timeout=60)
    assert relaxed.returncode == 0
    assert f"scpd: warning: {path}: quorum_set: a single node failing halts the local node: n1" in relaxed.stderr
    strict = subprocess.run([*run, "--strict", str(path)], capture_output=True, text=True, timeout=60)
    assert strict.returncode == 2
    assert strict.stderr.startswith(f"scpd: error: {path}: quorum_set: a single node failing halts")


def test_generated_localnet_configs_pass_the_analysis(tmp_path: Path) -> None:
    for path in write_localnet(tmp_path, localnet_configs(4)):
        assert quorum_warnings(path) == []


def test_an_organisation_that_alone_can_halt_us_is_named(tmp_path: Path) -> None:
    # 3 of 5, but acme runs three of the five: acme failing leaves 2 and halts us; no single node does.
    text = config('threshold = 3\nvalidators = ["n0", "n1", "n2", "n3", "n4"]\nunsafe_quorum = true')
    for i in (2, 3, 4):
        text = text.replace(f'name = "n{i}"\n', f'name = "n{i}"\norganization = "acme"\n')
    assert quorum_warnings(write(tmp_path, text)) == [
        "a single organisation failing halts the local node: acme",
    ]
