"""One node per data directory (an OS lock the kernel drops when the holder dies), and a start that
refuses an edited ledger."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from netutil import REPO, Network, wait_for
from test_ledger_store import build_chain

from scpd.node.datadir import LOCK_FILENAME, DataDirInUse, DataDirLock
from scpd.node.ledger import START_CHECK_LEDGERS, LedgerStore
from scpd.node.ledger_schema import DB_FILENAME
from scpd.nodecore.values import ConsensusValue


def run_fails(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scpd", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
    )


def test_a_second_node_on_the_data_directory_exits_2_naming_the_holder_until_kill_9_frees_it(
    tmp_path: Path,
) -> None:
    net = Network(tmp_path, 4)
    first = net.nodes[0]
    first.start()
    try:
        wait_for(lambda: first.started, 30, "the first node to start")
        assert first.proc is not None
        second = run_fails(first.config)
        assert second.returncode == 2
        assert second.stderr.count("\n") == 1, second.stderr
        assert f"in use by process {first.proc.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.running  # the refused process touched nothing of the holder's
        first.kill()  # no clean-up at all: the kernel drops the lock with the process
        first.start()
        wait_for(lambda: first.started, 30, "the node to start again after kill -9")
        assert first.terminate() == 0
    finally:
        if first.running:
            first.kill()


def test_lock_within_one_process_names_our_pid_and_is_released(tmp_path: Path) -> None:
    with DataDirLock.acquire(tmp_path / "d"):
        assert (tmp_path / "d" / LOCK_FILENAME).read_text().strip() == str(os.getpid())
        with pytest.raises(DataDirInUse, match=f"in use by process {os.getpid()}"):
            DataDirLock.acquire(tmp_path / "d")
    DataDirLock.acquire(tmp_path / "d").release()


def test_a_node_refuses_to_start_on_an_edited_ledger_naming_the_slot(tmp_path: Path) -> None:
    net = Network(tmp_path, 4)
    node = net.nodes[0]
    node.data_dir.mkdir()
    db = node.data_dir / DB_FILENAME
    build_chain(db, 5)
    with LedgerStore.open(db) as store:
        record = store.get(3)
    assert record is not None
    edited = ConsensusValue(record.close_time, bytes(32))
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE ledgers SET value = ? WHERE slot = 3", (edited.to_xdr(),))
    conn.close()
    result = run_fails(node.config)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "ledger broken at slot 3: " in result.stderr
    assert "Traceback" not in result.stderr


def test_the_start_check_walks_the_latest_ledgers_only(tmp_path: Path) -> None:
    db = tmp_path / DB_FILENAME
    build_chain(db, START_CHECK_LEDGERS + 3, txs_per_slot=1)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE ledgers SET hash = ? WHERE slot IN (2, ?)", (b"\x01" * 32, START_CHECK_LEDGERS + 2))
    conn.close()
    with LedgerStore.open(db) as store:
        recent = store.verify_chain(last=START_CHECK_LEDGERS)
        whole = store.verify_chain()
    # Ledger 2 is older than the window: only the full walk sees it; the recent break is found by both.
    assert whole is not None and whole.slot == 2
    assert recent is not None and recent.slot == START_CHECK_LEDGERS + 2
