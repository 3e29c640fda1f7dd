"""The README's main command: ``scpd localnet`` starts a network and prints one line per slot."""

from __future__ import annotations

import hashlib
import re
import signal
import subprocess
import sys
from pathlib import Path

from netutil import REPO, free_port_range, wait_for

from scpd.node.ledger import LedgerStore

SLOT_LINE = re.compile(r"^slot +(\d+)  value ([0-9a-f]{16})  txs +\d+  consensus +[\d.]+s  agree (\d)/(\d)$")


def _localnet(tmp_path: Path, *extra: str) -> list[str]:
    base = free_port_range(8)
    return [
        sys.executable,
        "-m",
        "scpd",
        "localnet",
        "--nodes",
        "4",
        "--dir",
        str(tmp_path / "net"),
        "--slot-interval",
        "0.5",
        "--peer-base-port",
        str(base),
        "--http-base-port",
        str(base + 4),
        *extra,
    ]


def test_localnet_prints_agreeing_slots_and_stops_after_k(tmp_path: Path) -> None:
    result = subprocess.run(_localnet(tmp_path, "--slots", "3"), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("localnet: 4 validators")
    slots = [SLOT_LINE.match(line) for line in lines[1:4]]
    assert all(slots), lines
    assert [int(m.group(1)) for m in slots if m] == [1, 2, 3]
    assert all(m.group(3) == m.group(4) == "4" for m in slots if m)
    assert lines[-1] == "localnet: stopped after 3 slots"
    # Every node process is gone, and every node's ledger holds the printed slots with one value each.
    assert not _processes_mentioning(str(tmp_path / "net"))
    printed = {int(m.group(1)): m.group(2) for m in slots if m}
    for i in range(1, 5):
        with LedgerStore.open_data_dir(tmp_path / "net" / f"node{i}-data", create=False) as store:
            for slot, value_hash in printed.items():
                record = store.get(slot)
                assert record is not None
                assert hashlib.sha256(record.value.to_xdr()).hexdigest().startswith(value_hash)


def test_localnet_stops_every_node_on_ctrl_c(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        proc = subprocess.Popen(_localnet(tmp_path), cwd=REPO, stdout=f, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: "slot      2" in out.read_text(), 90, "two slots printed")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out.read_text().splitlines()[-1].startswith("localnet: stopped after")
    # No node outlives its supervisor.
    wait_for(lambda: not _processes_mentioning(str(tmp_path / "net")), 15, "every node process to exit")


def test_localnet_runs_from_the_checkouts_parent_directory(tmp_path: Path) -> None:
    """A ``scpd/`` folder in the working directory (the checkout, seen from its parent) is not imported."""
    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "scpd").symlink_to(REPO)
    command = [str(Path(sys.executable).parent / "scpd"), *_localnet(tmp_path, "--slots", "2")[3:]]
    result = subprocess.run(command, cwd=parent, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "__version__" not in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"localnet: 4 validators, configs, data and logs in {tmp_path / 'net'}"
    assert [m.group(1) for m in map(SLOT_LINE.match, lines[1:3]) if m] == ["1", "2"]
    assert (tmp_path / "net" / "node1.log").read_text().count('"event": "ledger closed"') >= 2


def test_localnet_exits_1_as_soon_as_every_node_died_and_says_why(tmp_path: Path) -> None:
    net = tmp_path / "net"
    net.mkdir()
    for i in (1, 2):
        (net / f"node{i}.toml").write_text("[node]\nbogus = 1\n")
    command = [*_localnet(tmp_path)]
    command[command.index("--nodes") + 1] = "2"
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"localnet: 2 validators, configs, data and logs in {net}",
        "localnet: stopped after 0 slots",
    ]
    for i in (1, 2):
        assert f"localnet: node{i} exited with code 2; last lines of node{i}.log:" in result.stderr
        assert f"  [node{i}] scpd: error: {net / f'node{i}.toml'}: node.bogus: unknown key" in result.stderr
    assert f"localnet: every node has died; their logs are in {net}" in result.stderr


def _processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (read from /proc, no external tools)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline:
                pids.append(int(entry.name))
    return pids
