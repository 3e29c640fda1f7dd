"""``scpd localnet``: a local validator network, supervised from one terminal.

The supervisor writes (or reuses) one configuration per validator, starts one
``scpd run`` process per validator on 127.0.0.1, and reads their JSON log
lines. Each time every running node has closed a slot it prints one line:
slot, value hash, transactions, time to consensus, and how many nodes agree.
A disagreement is printed loudly (it would be a safety failure). Ctrl-C,
SIGTERM, or reaching ``--slots`` stops every process with SIGTERM (SIGKILL
after a grace period) and waits for them.

Nodes run as ``python -P -m scpd run`` with the interpreter of the supervisor
and the directory holding its ``scpd`` package first on ``PYTHONPATH``: the
working directory is never searched, so starting localnet from a directory
that happens to contain a ``scpd/`` folder (the checkout's parent) still runs
this very scpd. Each node's stderr (its JSON log) is also written to
``<dir>/<name>.log``. A node that dies is reported with its exit code and the
last lines of its log; when every node has died, localnet stops at once and
exits 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import scpd
from scpd.operator.localnet_config import LocalnetNode, localnet_configs, write_localnet

__all__ = ["Localnet", "SlotReport"]

STOP_GRACE = 10.0
# Lines of a dead node's log quoted to say why it died.
DEATH_LINES = 5


@dataclass
class SlotReport:
    slot: int
    values: dict[str, str] = field(default_factory=dict)  # node name -> value hash
    txs: int = 0
    seconds: list[float] = field(default_factory=list)
    printed: bool = False

    def line(self, running: int) -> str:
        hashes = set(self.values.values())
        agree = max((list(self.values.values()).count(h) for h in hashes), default=0)
        value = next(iter(hashes)) if len(hashes) == 1 else "DIVERGED:" + ",".join(sorted(h[:8] for h in hashes))
        took = f"{max(self.seconds):.3f}s" if self.seconds else "-"
        return (
            f"slot {self.slot:>6}  value {value[:16]}  txs {self.txs:>5}  consensus {took:>8}  agree {agree}/{running}"
        )


class Localnet:
    """Start, watch and stop a set of ``scpd run`` processes."""

    def __init__(
        self,
        directory: Path,
        nodes: int,
        *,
        slot_interval: float = 5.0,
        slots: int | None = None,
        peer_base_port: int | None = None,
        http_base_port: int | None = None,
        out: TextIO = sys.stdout,
        on_report: Callable[[SlotReport], None] | None = None,
    ) -> None:
        self.directory = directory
        self.n = nodes
        self.slot_interval = slot_interval
        self.slots = slots
        self.peer_base_port = peer_base_port
        self.http_base_port = http_base_port
        self.out = out
        self.on_report = on_report
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.reports: dict[int, SlotReport] = {}
        self.printed = 0
        self.diverged = False
        self.all_died = False
        # Nodes whose death has been reported. Counted here, not from return codes: a node reaped
        # before its log reader finished must still be reported before localnet stops.
        self._reported_dead: set[str] = set()
        self._done = asyncio.Event()

    def prepare(self) -> list[Path]:
        """The config files: reused when the directory already has this network."""
        existing = sorted(self.directory.glob("node*.toml"))
        if len(existing) == self.n:
            return [self.directory / f"node{i + 1}.toml" for i in range(self.n)]
        kwargs: dict[str, Any] = {"slot_interval": self.slot_interval, "log_format": "json"}
        if self.peer_base_port is not None:
            kwargs["peer_base_port"] = self.peer_base_port
        if self.http_base_port is not None:
            kwargs["http_base_port"] = self.http_base_port
        nodes: list[LocalnetNode] = localnet_configs(self.n, **kwargs)
        return write_localnet(self.directory, nodes)

    async def run(self) -> int:
        paths = self.prepare()
        print(
            f"localnet: {self.n} validators, configs, data and logs in {self.directory.absolute()}",
            file=self.out,
            flush=True,
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._done.set)
        readers = []
        try:
            for path in paths:
                name = path.stem
                proc = await asyncio.create_subprocess_exec(
                    *node_command(path),
                    env=node_environment(),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                    start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops children in order
                )
                self.procs[name] = proc
                readers.append(asyncio.create_task(self._read(name, proc)))
            await self._done.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await self.stop()
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
        if self.all_died:
            print(f"localnet: every node has died; their logs are in {self.directory.absolute()}", file=sys.stderr)
        print(f"localnet: stopped after {self.printed} slots", file=self.out, flush=True)
        return 1 if self.diverged or self.all_died else 0

    async def stop(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()

    async def _read(self, name: str, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        tail: deque[str] = deque(maxlen=DEATH_LINES)
        with (self.directory / f"{name}.log").open("ab") as log:
            async for raw in proc.stderr:
                log.write(raw)
                text = raw.decode("utf-8", "replace").rstrip()
                tail.append(text)
                try:
                    record = json.loads(text)
                except ValueError:
                    print(f"[{name}] {text}", file=sys.stderr, flush=True)
                    continue
                if isinstance(record, dict):
                    self._on_record(name, record)
        code = await proc.wait()
        if self._done.is_set():
            return
        print(f"localnet: {name} exited with code {code}; last lines of {name}.log:", file=sys.stderr, flush=True)
        for line in tail:
            print(f"  [{name}] {line}", file=sys.stderr, flush=True)
        self._reported_dead.add(name)
        if len(self._reported_dead) == self.n:
            self.all_died = True
            self._done.set()

    def _on_record(self, name: str, record: dict[str, Any]) -> None:
        event = record.get("event")
        if event == "ledger closed":
            slot = int(record["slot"])
            report = self.reports.setdefault(slot, SlotReport(slot))
            report.values[name] = str(record["value_hash"])
            report.txs = int(record.get("txs", 0))
            if record.get("seconds") is not None:
                report.seconds.append(float(record["seconds"]))
            self._maybe_print(report)
        elif record.get("level") in ("warning", "error"):
            print(f"[{name}] {record.get('level')}: {event} {_extras(record)}", file=sys.stderr, flush=True)

    def _maybe_print(self, report: SlotReport) -> None:
        running = sum(1 for p in self.procs.values() if p.returncode is None)
        if report.printed or len(report.values) < running:
            return
        report.printed = True
        if len(set(report.values.values())) > 1:
            self.diverged = True
        print(report.line(running), file=self.out, flush=True)
        self.printed += 1
        if self.on_report is not None:
            self.on_report(report)
        for old in [s for s in self.reports if s < report.slot - 100]:
            del self.reports[old]
        if self.slots is not None and self.printed >= self.slots:
            self._done.set()


def node_command(config: Path) -> list[str]:
    """``scpd run`` for one node, by this interpreter, never importing from the working directory."""
    return [sys.executable, "-P", "-m", "scpd", "run", "--config", str(config)]


def node_environment() -> dict[str, str]:
    """This environment, with the directory holding the supervisor's ``scpd`` package first on the path."""
    root = str(Path(scpd.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _extras(record: dict[str, Any]) -> str:
    skip = {"event", "level", "timestamp", "node"}
    return " ".join(f"{k}={v}" for k, v in record.items() if k not in skip)
