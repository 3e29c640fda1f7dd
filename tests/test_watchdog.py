"""The loop watchdog on a real node process whose event loop spins (tests/blocking_node.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from netutil import REPO, Network, Node, wait_for

from scpd.node.metrics import Metrics
from scpd.operator.watchdog import STOP_DEADLINE, STOP_DEADLINE_RUNNING, LoopWatchdog

BLOCKING_NODE = Path(__file__).with_name("blocking_node.py")


def start_blocking(node: Node, seconds: float) -> subprocess.Popen[bytes]:
    node.starts += 1
    with open(node.log, "ab") as log:
        node.proc = subprocess.Popen(
            [sys.executable, str(BLOCKING_NODE), str(node.config), str(seconds)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=REPO,
        )
    return node.proc


def events(node: Node, name: str) -> list[dict[str, object]]:
    node.poll_log()
    return [r for r in node.records if r.get("event") == name]


def metric(url: str, name: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_a_blocked_loop_is_logged_with_its_stack_and_counted(tmp_path: Path) -> None:
    node = Network(tmp_path, 4).nodes[0]
    proc = start_blocking(node, 3.0)
    try:
        wait_for(lambda: bool(events(node, "event loop blocked")), 30, "the blocked loop to be reported")
        [blocked] = events(node, "event loop blocked")
        assert blocked["level"] == "error"
        assert "block_the_loop_for" in str(blocked["stack"])
        wait_for(lambda: bool(events(node, "event loop unblocked")), 30, "the loop to run again")
        assert metric(node.http_url, "scpd_event_loop_blocked_total") == 1
        assert metric(node.http_url, "scpd_event_loop_lag_seconds_count") > 0
        assert node.terminate() == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_sigterm_stops_a_node_whose_loop_never_returns_within_10_seconds(tmp_path: Path) -> None:
    node = Network(tmp_path, 4).nodes[0]
    proc = start_blocking(node, 3600.0)
    try:
        wait_for(lambda: bool(events(node, "event loop blocked")), 30, "the blocked loop to be reported")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
        elapsed = time.monotonic() - sent
        assert elapsed < 10.0, elapsed
        assert code == 1
        [deadline] = events(node, "stop deadline passed; exiting now")
        assert "block_the_loop_for" in str(deadline["stack"])
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_a_stop_slowed_by_a_busy_machine_gets_longer_than_a_blocked_loop() -> None:
    watchdog = LoopWatchdog(Metrics(process=False), lambda: None)
    assert not watchdog._past_deadline(STOP_DEADLINE - 0.1, blocked=True)
    assert watchdog._past_deadline(STOP_DEADLINE, blocked=True)
    # The loop still runs: it is stopping, only slowly; a blocked one never would.
    assert not watchdog._past_deadline(STOP_DEADLINE + 5.0, blocked=False)
    assert watchdog._past_deadline(STOP_DEADLINE_RUNNING, blocked=False)
    assert STOP_DEADLINE < 10.0 <= STOP_DEADLINE_RUNNING
