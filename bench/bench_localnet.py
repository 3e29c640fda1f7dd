"""Consensus latency, flooding cost and CPU of real validator processes on loopback.

For N local validators (``scpd localnet``, full mesh) this measures, per slot
and per node, averaged over the nodes after a warm-up:

* SCP messages received (envelopes that reached the herder plus flood
  duplicates the overlay dropped), flood duplicates, signature checks, and
  distinct envelopes (what the *other* nodes emitted: the least a node must
  receive), all from each node's /metrics before and after;
* CPU seconds of each node process (/proc), and that CPU as a multiple of the
  verification floor (signature checks x this machine's cost of one PyNaCl
  verify of a 400-byte message, measured in this process at start);
* p50 and p99 time from a node's nomination to its ledger write.

Each row may have its own slot interval (``--nodes 4 7 10 16 25:5``: 25
validators at 5 s slots, so that two cores are not saturated). Targets (issue
13): CPU / floor <= 3x at 10 validators and <= 4x at 25; flood duplicates <= 1
per distinct envelope per node; zero repeated signature checks; CPU per slot
per node no faster than N^1.0 from 4 to 25; p50 no worse than before at 4 and 7.

    .venv/bin/python bench/bench_localnet.py [--slots 30] [--nodes 4 7 10 16 25:5] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchdoc import write_section  # bench/ is on sys.path when a script in it runs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from nacl.signing import SigningKey
from netutil import free_port_range
from prometheus_client.parser import text_string_to_metric_families

from scpd.operator.localnet import Localnet, SlotReport

WARMUP_SLOTS = 3
# Counters read from every node's /metrics at the end of the warm-up and at the end.
COUNTERS = (
    "scpd_envelopes_received_total",
    "scpd_overlay_flood_duplicates_total",
    "scpd_signature_verifications_total",
    "scpd_envelopes_emitted_total",
)


def verify_cost() -> float:
    """CPU seconds of one PyNaCl verify of a 400-byte message on this machine (the floor's unit)."""
    key = SigningKey.generate()
    signed = key.sign(bytes(400))
    verify = key.verify_key.verify
    rounds = 3000
    start = time.process_time()
    for _ in range(rounds):
        verify(signed)
    return (time.process_time() - start) / rounds


def _counters(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = dict.fromkeys(COUNTERS, 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in out:
                out[sample.name] += sample.value
    return out


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(n: int, slots: int, slot_interval: float, floor_unit: float) -> dict[str, float]:
    base = free_port_range(2 * n)
    ports = [base + n + i for i in range(n)]
    latencies: list[float] = []
    cpu: dict[str, float] = {}
    cpu_at_warmup: dict[str, float] = {}
    counters: list[dict[str, float]] = []
    counters_at_warmup: list[dict[str, float]] = []

    def on_report(report: SlotReport) -> None:
        # Scrapes run on the localnet's loop: a few ms each, once at each end of the window.
        if report.slot <= WARMUP_SLOTS:
            if report.slot == WARMUP_SLOTS:
                cpu_at_warmup.update({k: _cpu_seconds(p.pid) for k, p in net.procs.items()})
                counters_at_warmup.extend(_counters(port) for port in ports)
            return
        latencies.extend(report.seconds)
        if net.printed >= slots + WARMUP_SLOTS and not cpu:
            cpu.update({k: _cpu_seconds(p.pid) for k, p in net.procs.items()})
            counters.extend(_counters(port) for port in ports)

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
    if code != 0 or not latencies or not counters:
        raise RuntimeError(f"localnet of {n} failed (exit {code})")
    latencies.sort()
    per_node_cpu = statistics.mean(cpu[k] - cpu_at_warmup[k] for k in cpu) / slots

    def per_slot_node(name: str) -> float:
        return statistics.mean(c[name] - w[name] for c, w in zip(counters, counters_at_warmup, strict=True)) / slots

    emitted = per_slot_node("scpd_envelopes_emitted_total")
    duplicates = per_slot_node("scpd_overlay_flood_duplicates_total")
    checks = per_slot_node("scpd_signature_verifications_total")
    distinct = emitted * (n - 1)  # what the others emitted, per node
    return {
        "nodes": n,
        "slots": slots,
        "interval": slot_interval,
        "received": per_slot_node("scpd_envelopes_received_total") + duplicates,
        "duplicates": duplicates,
        "checks": checks,
        "distinct": distinct,
        "dup_per_distinct": duplicates / distinct if distinct else 0.0,
        "repeated_checks": max(0.0, checks - distinct),
        "cpu_ms": 1000 * per_node_cpu,
        "floor_ratio": per_node_cpu / (checks * floor_unit) if checks else 0.0,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
    }


def _parse_nodes(spec: str, default_interval: float) -> tuple[int, float]:
    """``N`` or ``N:INTERVAL`` (seconds)."""
    n, _, interval = spec.partition(":")
    return int(n), float(interval) if interval else default_interval


COLUMNS = (
    ("nodes", "validators", "{:.0f}"),
    ("interval", "slot s", "{:g}"),
    ("received", "SCP msgs recv", "{:.1f}"),
    ("duplicates", "flood dups", "{:.1f}"),
    ("checks", "sig checks", "{:.1f}"),
    ("distinct", "distinct envs", "{:.1f}"),
    ("dup_per_distinct", "dups/distinct", "{:.2f}"),
    ("repeated_checks", "repeated checks", "{:.1f}"),
    ("cpu_ms", "CPU ms", "{:.1f}"),
    ("floor_ratio", "CPU/floor", "{:.1f}x"),
    ("p50_ms", "p50 ms", "{:.1f}"),
    ("p99_ms", "p99 ms", "{:.1f}"),
)


def _growth(rows: list[dict[str, float]]) -> str:
    """CPU per slot per node as N^k between the smallest and largest network (rows at one interval)."""
    if len(rows) < 2 or rows[0]["cpu_ms"] <= 0:
        return "n/a"
    lo, hi = rows[0], rows[-1]
    return f"{math.log(hi['cpu_ms'] / lo['cpu_ms']) / math.log(hi['nodes'] / lo['nodes']):.2f}"


def _targets(rows: list[dict[str, float]], growth: str) -> list[str]:
    """Each of issue 13's targets that these rows can judge, met or not (p50 needs a before run)."""

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines = []
    for r in rows:
        n, where = int(r["nodes"]), f"at {int(r['nodes'])} validators"
        lines.append(
            f"flood duplicates <= 1 per distinct envelope {where}: {r['dup_per_distinct']:.2f}, "
            + verdict(r["dup_per_distinct"] <= 1.0)
        )
        lines.append(
            f"zero repeated signature checks {where}: {r['repeated_checks']:.1f}, " + verdict(r["repeated_checks"] == 0)
        )
        bound = 3.0 if n == 10 else 4.0 if n == 25 else None
        if bound is not None:
            lines.append(
                f"CPU / floor <= {bound:g}x {where}: {r['floor_ratio']:.1f}x, " + verdict(r["floor_ratio"] <= bound)
            )
    if growth != "n/a":
        lines.append(f"CPU per slot per node no faster than N^1.0: N^{growth}, " + verdict(float(growth) <= 1.0))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", nargs="+", default=["4", "7", "10", "16", "25:5"], help="N or N:SLOT_INTERVAL")
    parser.add_argument("--slots", type=int, default=30)
    parser.add_argument("--slot-interval", type=float, default=1.0)
    parser.add_argument("--write", action="store_true", help="record the figures in docs/benchmarks.md")
    args = parser.parse_args()
    floor_unit = verify_cost()
    print(f"one verify: {1e6 * floor_unit:.1f} us CPU")
    print(" | ".join(title for _, title, _ in COLUMNS))
    rows = []
    for spec in args.nodes:
        n, interval = _parse_nodes(spec, args.slot_interval)
        r = measure(n, args.slots, interval, floor_unit)
        print(" | ".join(fmt.format(r[key]) for key, _, fmt in COLUMNS), flush=True)
        rows.append(r)
    growth = _growth([r for r in rows if r["interval"] == rows[0]["interval"]])
    print(f"CPU per slot per node grows as N^{growth} (rows at {rows[0]['interval']:g} s slots)")
    targets = _targets(rows, growth)
    print("\n".join(targets))
    if args.write:
        table = ["| " + " | ".join(title for _, title, _ in COLUMNS) + " |", "|" + "---:|" * len(COLUMNS)]
        table += ["| " + " | ".join(fmt.format(r[key]) for key, _, fmt in COLUMNS) + " |" for r in rows]
        cmd = "python bench/bench_localnet.py " + " ".join(sys.argv[1:])
        write_section(
            "Consensus on loopback (real processes)",
            f"Full mesh; per slot and per node, averaged over the nodes; the first {WARMUP_SLOTS} slots "
            f"(connection set-up) are not counted. One PyNaCl verify costs {1e6 * floor_unit:.1f} us CPU "
            "here (the floor's unit). Distinct envelopes are what the other nodes emitted; repeated checks "
            "are signature checks beyond that. CPU per slot per node grows as "
            f"N^{growth} across the rows at {rows[0]['interval']:g} s slots.\n\n"
            + "\n".join(table)
            + "\n\nTargets (issue 13):\n\n"
            + "\n".join(f"- {line}" for line in targets),
            cmd,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
