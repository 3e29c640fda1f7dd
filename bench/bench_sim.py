"""CPU cost of consensus in the simulator, against the signature-verification floor.

Runs N symmetric validators (threshold n - floor((n - 1) / 3)) with zero
latency and no faults, so every cost measured is computation: decoding and
verifying every envelope a node receives, and the consensus core processing
it. Reports CPU time per externalized slot per node, envelopes processed per
second, and the floor: envelopes verified x the measured cost of one
verification. "Protocol work" is everything above the floor (decode, the
core, the simulator); the target is protocol work <= 2x the floor at N = 100.

    .venv/bin/python bench/bench_sim.py                 # N = 4, 16, 50, 100
    .venv/bin/python bench/bench_sim.py --nodes 16 50   # some sizes only
    .venv/bin/python bench/bench_sim.py --profile 50    # where the time goes
    .venv/bin/python bench/bench_sim.py --write         # and record in docs/benchmarks.md

Timing is CPU time of this process (time.process_time), one core.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchdoc import DOC, write_section  # noqa: E402

from scpd.base.keys import verify_envelope  # noqa: E402
from scpd.base.types import SCPEnvelope  # noqa: E402
from scpd.sim.network import Constant  # noqa: E402
from scpd.sim.scenario import Scenario  # noqa: E402
from scpd.sim.simulator import Simulation  # noqa: E402

SECTION = "Simulator (bench/bench_sim.py)"
DEFAULT_SIZES = (4, 16, 50, 100)
SLOTS = {4: 20, 16: 5, 50: 2, 100: 1}
TARGET_RATIO = 2.0


@dataclass
class Row:
    nodes: int
    slots: int
    cpu: float
    verified: int
    processed: int
    verify_cost: float
    decode_cost: float

    @property
    def decided(self) -> int:
        return self.nodes * self.slots

    @property
    def floor(self) -> float:
        return self.verified * self.verify_cost

    @property
    def protocol(self) -> float:
        return max(0.0, self.cpu - self.floor)


def build(nodes: int, slots: int) -> Simulation:
    return Simulation(Scenario(nodes=nodes, slots=slots, seed=1, latency=Constant(0.0), rebroadcast_interval=1.0))


def per_call(fn: object, items: list[bytes], repeats: int = 5) -> float:
    """Best-of-``repeats`` CPU seconds per call of ``fn`` over ``items``."""
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        for item in items:
            fn(item)  # type: ignore[operator]
        best = min(best, time.process_time() - t)
    return best / len(items)


def measure(nodes: int, slots: int) -> Row:
    sim = build(nodes, slots)
    t = time.process_time()
    result = sim.run()
    cpu = time.process_time() - t
    if not result.completed or result.safety_violations():
        raise SystemExit(f"N={nodes}: the run did not complete in agreement: {result.summary()}")
    net_id = sim.world.net_id
    sample = [env.to_xdr() for node in sim.nodes for env in node.store.own.values()]
    sample = (sample * (2000 // len(sample) + 1))[:2000]
    decoded = [SCPEnvelope.from_xdr_with_statement(raw) for raw in sample]

    def verify(raw: bytes) -> None:
        env, st = SCPEnvelope.from_xdr_with_statement(raw)
        if not verify_envelope(net_id, env, st):
            raise SystemExit("a sample envelope failed to verify")

    decode_cost = per_call(SCPEnvelope.from_xdr_with_statement, sample)
    lookup = dict(zip(sample, decoded, strict=True))
    verify_cost = per_call(lambda raw: verify_envelope(net_id, *lookup[raw]), sample)
    verify(sample[0])
    rec = result.recorder
    return Row(nodes, slots, cpu, rec.envelopes_verified, rec.envelopes_processed, verify_cost, decode_cost)


def render(rows: list[Row]) -> str:
    lines = [
        "| N | slots | envelopes verified | CPU s | CPU ms / slot / node | envelopes / s |"
        " verify floor s | protocol work s | protocol / floor |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.nodes} | {r.slots} | {r.verified:,} | {r.cpu:.2f} | {1000 * r.cpu / r.decided:.1f} |"
            f" {r.processed / r.cpu:,.0f} | {r.floor:.2f} | {r.protocol:.2f} | {r.protocol / r.floor:.2f}x |"
        )
    costs = ", ".join(f"N={r.nodes}: {1e6 * r.verify_cost:.0f} µs" for r in rows)
    decode = ", ".join(f"N={r.nodes}: {1e6 * r.decode_cost:.0f} µs" for r in rows)
    lines += [
        "",
        f"Measured verify cost per envelope: {costs}. Decode cost (part of protocol work): {decode}.",
    ]
    big = [r for r in rows if r.nodes == 100]
    if big:
        ratio = big[0].protocol / big[0].floor
        verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
        lines.append(
            f"Target (protocol work <= {TARGET_RATIO:g}x the verification floor at N = 100): {verdict} ({ratio:.2f}x)."
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="network sizes")
    parser.add_argument("--slots", type=int, help="slots per run (default: 20, 5, 2, 1 as N grows)")
    parser.add_argument("--profile", type=int, metavar="N", help="profile one run of N nodes and print hot spots")
    parser.add_argument("--write", action="store_true", help=f"record the figures in {DOC.relative_to(REPO)}")
    args = parser.parse_args()

    if args.profile:
        sim = build(args.profile, args.slots or SLOTS.get(args.profile, 1))
        profiler = cProfile.Profile()
        profiler.runcall(sim.run)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return
    rows = []
    for n in args.nodes:
        row = measure(n, args.slots or SLOTS.get(n, 1))
        rows.append(row)
        print(f"N={n}: {row.cpu:.2f} s CPU, {row.verified:,} envelopes verified", file=sys.stderr)
    body = render(rows)
    print(body)
    if args.write:
        command = "python bench/bench_sim.py" + "".join(f" {a}" for a in sys.argv[1:] if a != "--write") + " --write"
        write_section(SECTION, body, command)
        print(f"\nwritten to {DOC.relative_to(REPO)}")


if __name__ == "__main__":
    main()
