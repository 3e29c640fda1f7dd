"""``scpd ledger verify`` and ``scpd ledger show`` on real database files."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from test_ledger_store import KEYS, append_next, build_chain

from scpd.cli.main import main
from scpd.node.ledger import DB_FILENAME, LedgerStore
from scpd.node.values import tx_id


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    build_chain(d / DB_FILENAME, 4)
    return d


def run_scpd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scpd", *args], capture_output=True, text=True, timeout=60)


def test_verify_reports_a_sound_chain_and_exits_0(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "verify", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ledger ok: 4 ledgers (slots 1..4)")


def test_verify_of_an_empty_ledger_is_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    LedgerStore.open_data_dir(tmp_path).close()
    assert main(["ledger", "verify", "--data-dir", str(tmp_path)]) == 0
    assert "empty" in capsys.readouterr().out


def test_verify_reports_the_first_break_and_exits_1(data_dir: Path) -> None:
    conn = sqlite3.connect(data_dir / DB_FILENAME)
    with conn:
        conn.execute("UPDATE ledgers SET hash = ? WHERE slot IN (2, 3)", (b"\xff" * 32,))
    conn.close()
    result = run_scpd("ledger", "verify", "--data-dir", str(data_dir))
    assert result.returncode == 1
    assert result.stdout.strip() == "ledger broken at slot 2: the stored ledger hash is not the recomputed one"


def test_verify_of_an_unusable_file_exits_2_with_one_line(data_dir: Path) -> None:
    (data_dir / DB_FILENAME).write_bytes(os.urandom(4096))
    result = run_scpd("ledger", "verify", "--data-dir", str(data_dir))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "not an SQLite database" in result.stderr
    assert "Traceback" not in result.stderr


def test_verify_of_a_truncated_file_exits_2(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = data_dir / DB_FILENAME
    path.write_bytes(path.read_bytes()[:8192])
    assert main(["ledger", "verify", "--data-dir", str(data_dir)]) == 2
    assert "truncated" in capsys.readouterr().err


def test_verify_does_not_create_a_missing_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "verify", "--data-dir", str(tmp_path)]) == 2
    assert "no ledger database" in capsys.readouterr().err
    assert not (tmp_path / DB_FILENAME).exists()


def test_show_prints_the_latest_ledger_as_json(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "show", "--data-dir", str(data_dir)]) == 0
    shown = json.loads(capsys.readouterr().out)
    with LedgerStore.open_data_dir(data_dir, create=False) as s:
        latest = s.latest()
    assert latest is not None
    assert shown["slot"] == 4
    assert shown["hash"] == latest.hash.hex()
    assert shown["previous_hash"] == latest.previous_hash.hex()
    assert shown["tx_set_hash"] == latest.tx_set_hash.hex()
    assert shown["close_time"] == latest.close_time
    assert shown["tx_count"] == 3
    assert [t["id"] for t in shown["transactions"]] == [i.hex() for i in latest.tx_set.tx_ids]
    assert {p["node"] for p in shown["proofs"]} == {str(KEYS[0].node_id), str(KEYS[1].node_id)}


def test_show_a_given_slot_with_bodies(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "show", "--data-dir", str(data_dir), "--slot", "2", "--bodies"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["slot"] == 2
    bodies = [base64.b64decode(t["base64"]) for t in shown["transactions"]]
    assert b"tx 2.0" * 4 in bodies
    assert all(tx_id(b).hex() == t["id"] for b, t in zip(bodies, shown["transactions"], strict=True))


def test_show_slot_0_is_the_genesis(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "show", "--data-dir", str(data_dir), "--slot", "0"]) == 0
    assert json.loads(capsys.readouterr().out) == {"slot": 0, "genesis": True, "hash": "00" * 32, "close_time": 0}


def test_show_a_slot_beyond_the_chain_is_an_error(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "show", "--data-dir", str(data_dir), "--slot", "9"]) == 2
    assert "no ledger at slot 9: the chain ends at slot 4" in capsys.readouterr().err
    assert main(["ledger", "show", "--data-dir", str(data_dir), "--slot", "-1"]) == 2


def test_verify_and_show_work_while_the_node_holds_the_database(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LedgerStore.open_data_dir(data_dir) as node_store:
        append_next(node_store, [b"while running"])
        assert (data_dir / (DB_FILENAME + "-wal")).stat().st_size > 0
        assert main(["ledger", "verify", "--data-dir", str(data_dir)]) == 0
        assert "5 ledgers" in capsys.readouterr().out
        assert main(["ledger", "show", "--data-dir", str(data_dir)]) == 0
        assert json.loads(capsys.readouterr().out)["slot"] == 5
        append_next(node_store, [b"after the check"])
        assert node_store.verify_chain() is None
