"""Consensus latency and CPU cost of real validator processes on loopback.

For N = 4, 7 and 16 local validators (``scpd localnet`` with a short slot
interval) this measures, per slot, the time from a node's nomination to its
ledger write (p50, p99 over every node and slot) and the CPU seconds each
node process spends per slot. Target (issue 4): p50 under 50 ms for 7
validators.

    .venv/bin/python bench/bench_localnet.py [--slots 30] [--nodes 4 7 16] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import socket
import statistics
import sys
import tempfile
from pathlib import Path

from benchdoc import write_section  # bench/ is on sys.path when a script in it runs

from scpd.operator.localnet import Localnet, SlotReport

WARMUP_SLOTS = 3


def _free_base(count: int) -> int:
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000 - count)
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range")


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(n: int, slots: int, slot_interval: float) -> dict[str, float]:
    base = _free_base(2 * n)
    latencies: list[float] = []
    cpu: dict[str, float] = {}
    cpu_at_warmup: dict[str, float] = {}

    def on_report(report: SlotReport) -> None:
        if report.slot <= WARMUP_SLOTS:
            if report.slot == WARMUP_SLOTS:
                cpu_at_warmup.update({k: _cpu_seconds(p.pid) for k, p in net.procs.items()})
            return
        latencies.extend(report.seconds)
        if net.printed >= slots + WARMUP_SLOTS:
            cpu.update({k: _cpu_seconds(p.pid) for k, p in net.procs.items()})

    with tempfile.TemporaryDirectory(prefix="scpd-bench-") as tmp:
        net = Localnet(
            Path(tmp),
            n,
            slot_interval=slot_interval,
            slots=slots + WARMUP_SLOTS,
            peer_base_port=base,
            http_base_port=base + n,
            out=io.StringIO(),
            on_report=on_report,
        )
        code = asyncio.run(net.run())
    if code != 0 or not latencies:
        raise RuntimeError(f"localnet of {n} failed (exit {code})")
    latencies.sort()
    per_node_cpu = [cpu[k] - cpu_at_warmup[k] for k in cpu]
    return {
        "nodes": n,
        "slots": slots,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "cpu_s_per_slot_node": statistics.mean(per_node_cpu) / slots,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, nargs="+", default=[4, 7, 16])
    parser.add_argument("--slots", type=int, default=30)
    parser.add_argument("--slot-interval", type=float, default=0.5)
    parser.add_argument("--write", action="store_true", help="record the figures in docs/benchmarks.md")
    args = parser.parse_args()
    rows = []
    header = f"{'nodes':>5} {'slots':>5} {'p50 ms':>8} {'p99 ms':>8} {'CPU s/slot/node':>16}"
    print(header)
    for n in args.nodes:
        r = measure(n, args.slots, args.slot_interval)
        line = (
            f"{r['nodes']:>5} {r['slots']:>5} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['cpu_s_per_slot_node']:>16.4f}"
        )
        print(line, flush=True)
        rows.append(r)
    if args.write:
        table = [
            "| validators | slots | p50 nomination→ledger | p99 | CPU s per slot per node |",
            "|---:|---:|---:|---:|---:|",
        ]
        table += [
            f"| {r['nodes']} | {r['slots']} | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms "
            f"| {r['cpu_s_per_slot_node']:.4f} |"
            for r in rows
        ]
        cmd = "python bench/bench_localnet.py " + " ".join(sys.argv[1:])
        write_section(
            "Consensus on loopback (real processes)",
            f"Slot interval {args.slot_interval} s; "
            f"the first {WARMUP_SLOTS} slots (connection set-up) are not counted. "
            "Target: p50 under 50 ms for 7 validators.\n\n" + "\n".join(table),
            cmd,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
