"""Catch-up with real processes: a node started 30 slots late, a node stopped (SIGSTOP) for 10 slots,
and a node refusing to start on a corrupt or truncated database."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from netutil import REPO, Network

from scpd.node.ledger import LedgerStore
from scpd.node.ledger_schema import DB_FILENAME


def ledger_hashes(data_dir: Path) -> dict[int, bytes]:
    """Every stored ledger's hash by slot, after checking the whole chain."""
    with LedgerStore.open_data_dir(data_dir, create=False) as store:
        assert store.verify_chain() is None
        out: dict[int, bytes] = {}
        slot = 1
        while (rec := store.get(slot)) is not None:
            out[slot] = rec.hash
            slot += 1
        return out


def assert_same_chains(dirs: list[Path]) -> int:
    chains = [ledger_hashes(d) for d in dirs]
    common = min(len(c) for c in chains)
    for chain in chains[1:]:
        assert all(chain[s] == chains[0][s] for s in range(1, common + 1))
    return common


def test_late_node_catches_up_then_follows(tmp_path: Path) -> None:
    with Network(tmp_path, 4, slot_interval=0.5) as net:
        late = net.nodes[3]
        late.proc and late.kill()  # started with the others by the context manager: stop it at once
        early = net.nodes[:3]
        net.wait_slot(32, early, timeout=120)
        late.start()
        target = max(n.last_slot for n in early) + 3
        # It writes every missed ledger (by catch-up) and then closes new slots with the others.
        net.wait_slot(target, [late], timeout=90)
        net.wait_slot(target + 3, net.nodes, timeout=60)
        late.poll_log()
        assert any(r.get("event") == "catching up" for r in late.records)
        net.assert_agreement()
        assert not net.errors()
        for node in net.nodes:
            assert node.terminate() == 0
    assert assert_same_chains([n.data_dir for n in net.nodes]) >= target + 3


def test_partitioned_node_catches_up_after_the_partition_heals(tmp_path: Path) -> None:
    with Network(tmp_path, 4, slot_interval=0.5) as net:
        net.wait_slot(3)
        cut = net.nodes[2]
        others = [n for n in net.nodes if n is not cut]
        assert cut.proc is not None
        cut.proc.send_signal(signal.SIGSTOP)  # frozen: no messages in or out, as if partitioned away
        try:
            start = max(n.last_slot for n in others)
            net.wait_slot(start + 10, others, timeout=60)
        finally:
            cut.proc.send_signal(signal.SIGCONT)
        target = max(n.last_slot for n in others) + 2
        net.wait_slot(target, [cut], timeout=60)
        net.wait_slot(target + 2, net.nodes, timeout=60)
        net.assert_agreement()
        for node in net.nodes:
            assert node.terminate() == 0
    assert assert_same_chains([n.data_dir for n in net.nodes]) >= target + 2


def _run_fails(config: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "scpd", "run", "--config", str(config)], capture_output=True, cwd=REPO, timeout=20
    )


def test_node_refuses_corrupt_or_truncated_database(tmp_path: Path) -> None:
    with Network(tmp_path, 1, slot_interval=0.2) as net:
        node = net.nodes[0]
        net.wait_slot(5, timeout=60)
        assert node.terminate() == 0
    db = node.data_dir / DB_FILENAME
    good = db.read_bytes()
    assert len(good) > 4096

    # Truncated to half: refused, one line naming the file, exit code != 0.
    db.write_bytes(good[: len(good) // 2 // 4096 * 4096 + 100])
    out = _run_fails(node.config)
    lines = out.stderr.decode().strip().splitlines()
    assert out.returncode != 0 and len(lines) == 1 and str(db) in lines[0], out.stderr
    assert "truncated" in lines[0] or "damaged" in lines[0] or "not" in lines[0]

    # Garbage over the b-tree page headers (what SQLite's quick_check examines): refused as damaged.
    # (Damage inside a stored value is found by `scpd ledger verify`, which recomputes the chain.)
    corrupt = bytearray(good)
    for page in range(4096, len(corrupt), 4096):
        corrupt[page : page + 12] = b"\x0d\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
    db.write_bytes(bytes(corrupt))
    out = _run_fails(node.config)
    lines = out.stderr.decode().strip().splitlines()
    assert out.returncode != 0 and len(lines) == 1 and str(db) in lines[0], out.stderr

    # Empty file: refused.
    db.write_bytes(b"")
    out = _run_fails(node.config)
    assert out.returncode != 0 and b"empty" in out.stderr
