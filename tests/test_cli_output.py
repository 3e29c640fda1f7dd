"""What the CLI prints on an operator's bad day (issue 11, defect 9).

Every JSON document parses with a strict parser (no ``Infinity``/``NaN``);
long work shows progress on a terminal and nothing when piped; a misspelt
section gets a did-you-mean and no error hides behind "(and 1 more)";
``quorum analyze`` reads a config whose key is only in its seed file.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scpd.base.keys import Keypair
from scpd.cli.main import main
from scpd.cli.output import strict_json

SCPD = [sys.executable, "-m", "scpd"]


def strict(text: str) -> Any:
    """json.loads that refuses the non-standard constants Python's json writes by default."""

    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_strict_parser_refuses_what_python_json_writes_for_infinity() -> None:
    with pytest.raises(ValueError, match="Infinity"):
        strict(json.dumps({"x": float("inf")}))
    assert strict(strict_json({"x": float("inf"), "y": [float("nan"), 1.5], "z": (2,)})) == {
        "x": None,
        "y": [None, 1.5],
        "z": [2],
    }


def test_simulate_that_never_heals_prints_strict_json_with_null_heal_time(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "--nodes", "4", "--slots", "1", "--loss", "0.05", "--seed", "2"])
    out, err = capsys.readouterr()
    summary = strict(out)
    assert summary["scenario"]["heal_time"] is None
    assert code == 0 and summary["agreement"] is True
    assert err == ""  # stderr is not a terminal here: no progress bar


def run_on_terminal(*args: str) -> tuple[int, bytes, bytes]:
    """Run ``scpd ARGS`` with stderr on a pseudo-terminal; (exit code, stdout, what the terminal got)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*SCPD, *args], stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    terminal = b""
    while select.select([leader], [], [], 60)[0]:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        terminal += chunk
    os.close(leader)
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out, terminal


def test_simulate_shows_progress_on_a_terminal_and_keeps_stdout_pure_json() -> None:
    code, out, terminal = run_on_terminal("simulate", "--nodes", "10", "--slots", "3")
    assert code == 0
    assert b"decisions" in terminal and b"/30" in terminal
    assert strict(out.decode())["slots_externalized"] == {str(n): 3 for n in range(10)}


def test_quorum_analyze_shows_its_steps_on_a_terminal() -> None:
    network = Path(__file__).resolve().parent.parent.parent / "shared" / "testdata" / "fbas" / "correct.json"
    code, out, terminal = run_on_terminal("quorum", "analyze", str(network))
    assert code == 0
    assert b"quorum intersection" in terminal and b"/4" in terminal
    assert strict(out.decode())["has_quorum_intersection"] is True


def test_misspelt_section_gets_a_suggestion_and_every_error_is_shown(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(
        f'[node]\nseed = "{Keypair.random().seed_strkey}"\n\n[network]\npassphrase = "p"\n\n'
        "[quorumset]\nthreshold = 1\n\n[timers]\nslot_intervall = 3\n"
    )
    path.chmod(0o600)
    result = subprocess.run([*SCPD, "check-config", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"scpd: error: {path}: ")
    assert "quorumset: unknown section (did you mean [quorum_set]?)" in line
    assert "timers.slot_intervall: unknown key (did you mean 'slot_interval'?)" in line
    assert "required section is missing" not in line  # the misspelling explains it
    assert "more)" not in line


def test_quorum_analyze_reads_the_key_from_the_seed_file(tmp_path: Path) -> None:
    keys = [Keypair(bytes([i + 60]) * 32) for i in range(4)]
    validators = ", ".join(f'"{k.public_key}"' for k in keys)
    for i, key in enumerate(keys):
        (tmp_path / f"n{i}.seed").write_text(key.seed_strkey + "\n")
        (tmp_path / f"n{i}.toml").write_text(
            f'[node]\nseed_file = "n{i}.seed"\n\n[network]\npassphrase = "p"\n\n'
            f"[quorum_set]\nthreshold = 3\nvalidators = [{validators}]\n"
        )
    result = subprocess.run(
        [*SCPD, "quorum", "analyze", "--keys", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    doc = strict(result.stdout)
    assert doc["nodes"] == 4 and doc["unknown_validators"] == 0 and doc["has_quorum_intersection"] is True
    assert sorted(doc["top_tier"]) == sorted(str(k.public_key) for k in keys)
    for key in keys:
        assert key.seed_strkey not in result.stdout + result.stderr
