"""A local network of real ``scpd run`` processes for integration tests.

Each node's configuration comes from the same generator as ``scpd localnet``;
each process writes JSON logs to its own file, which the tests read to see
which slots closed with which value. Every process is stopped (SIGKILL if it
does not stop in time) when the network is closed.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scpd.operator.localnet_config import Topology, localnet_configs, write_localnet

REPO = Path(__file__).resolve().parent.parent


def _ports_free(base: int, count: int) -> bool:
    for port in range(base, base + count):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _ephemeral_floor() -> int:
    """The lowest port the kernel hands out to outgoing connections (32768 when unknown)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port_range(count: int) -> int:
    """A base port such that base .. base + count - 1 are free right now.

    Chosen below the kernel's ephemeral range: a port in it can be taken by any outgoing
    connection (our own nodes dial each other) between this check and the node's bind.
    """
    rng = random.Random()
    top = max(10000 + count + 1, _ephemeral_floor())
    for _ in range(200):
        base = rng.randrange(10000, top - count)
        if _ports_free(base, count):
            return base
    raise RuntimeError("no free port range found")


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Node:
    def __init__(self, name: str, config: Path, log: Path) -> None:
        self.name = name
        self.config = config
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self._offset = 0
        self.closed: dict[int, str] = {}  # slot -> value hash, from every run of this node
        self.http_url = ""
        self.data_dir = config.parent / f"{name}-data"
        self.records: list[dict[str, Any]] = []
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        assert self.proc is None or self.proc.poll() is not None
        logf = open(self.log, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "scpd", "run", "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=logf,
                cwd=REPO,
            )
        finally:
            logf.close()

    @property
    def started(self) -> bool:
        """The current run logged "node started" (its signal handlers are in place)."""
        self.poll_log()
        return sum(1 for r in self.records if r.get("event") == "node started") >= self.starts

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise

    def poll_log(self) -> None:
        with open(self.log, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self._offset += end
        for line in data[:end].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                record = {"event": "non-json output", "text": line.decode("utf-8", "replace")}
            self.records.append(record)
            if record.get("event") == "ledger closed":
                slot, value = int(record["slot"]), str(record["value_hash"])
                assert self.closed.get(slot, value) == value, f"{self.name} closed slot {slot} twice differently"
                self.closed[slot] = value

    @property
    def last_slot(self) -> int:
        self.poll_log()
        return max(self.closed, default=0)


class Network:
    """N validators on 127.0.0.1 with short slots; use as a context manager."""

    def __init__(
        self,
        root: Path,
        n: int,
        *,
        topology: Topology = "full",
        slot_interval: float = 0.5,
        extra_config: str = "",
    ) -> None:
        base = free_port_range(2 * n)
        specs = localnet_configs(
            n,
            peer_base_port=base,
            http_base_port=base + n,
            slot_interval=slot_interval,
            topology=topology,
            log_format="json",
        )
        paths = write_localnet(root, specs)
        if extra_config:
            # Extra TOML tables (e.g. "[ledger] ...") appended to every node's file.
            for path in paths:
                with path.open("a") as f:
                    f.write("\n" + extra_config + "\n")
        self.nodes = [Node(s.name, p, root / f"{s.name}.log") for s, p in zip(specs, paths, strict=True)]
        for node, spec in zip(self.nodes, specs, strict=True):
            node.http_url = f"http://127.0.0.1:{spec.http_port}"
            node.data_dir = root / f"{spec.name}-data"
        for node in self.nodes:
            node.log.touch()

    def __enter__(self) -> Network:
        for node in self.nodes:
            node.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for node in self.nodes:
            if node.running:
                with contextlib.suppress(Exception):
                    node.terminate()

    def all_reached(self, slot: int, nodes: list[Node] | None = None) -> bool:
        return all(n.last_slot >= slot for n in (nodes or self.nodes))

    def wait_slot(self, slot: int, nodes: list[Node] | None = None, timeout: float = 90.0) -> None:
        wait_for(
            lambda: self.all_reached(slot, nodes), timeout, f"slot {slot} on {[n.name for n in nodes or self.nodes]}"
        )

    def assert_agreement(self) -> None:
        """Every slot closed by two nodes has the same value on both."""
        seen: dict[int, tuple[str, str]] = {}
        for node in self.nodes:
            node.poll_log()
            for slot, value in node.closed.items():
                first = seen.setdefault(slot, (node.name, value))
                assert first[1] == value, f"slot {slot}: {first[0]} has {first[1]}, {node.name} has {value}"

    def errors(self) -> list[str]:
        out = []
        for node in self.nodes:
            node.poll_log()
            out += [f"{node.name}: {r}" for r in node.records if r.get("level") == "error" or "text" in r]
        return out


def env_without_secrets() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SCPD_SEED")}
