"""Time quorum analysis on every network in the shared test data.

Prints one line per file (intersection alone, and each stage of the full
analysis); with --write, records the table in docs/benchmarks.md under its
own section. Run: .venv/bin/python bench/bench_analysis.py [--write]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchdoc import write_section

from scpd.analysis.blocking import minimal_hitting_sets
from scpd.analysis.engine import Engine
from scpd.analysis.fbas import load_fbas
from scpd.analysis.quorums import disjoint_quorums, minimal_quorums
from scpd.analysis.splitting import minimal_splitting_sets

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "testdata" / "fbas"
SECTION = "Quorum analysis"


def bench(path: Path) -> dict[str, float | int | str]:
    fbas = load_fbas(path)
    t0 = time.perf_counter()
    engine = Engine.build(fbas)
    pair = disjoint_quorums(engine)
    t1 = time.perf_counter()
    mqs = minimal_quorums(engine)
    top = 0
    for q in mqs:
        top |= q
    t2 = time.perf_counter()
    minimal_hitting_sets(mqs)
    t3 = time.perf_counter()
    if pair is None:
        minimal_splitting_sets(Engine.build(fbas, set(engine.to_original(top))))
    t4 = time.perf_counter()
    return {
        "file": path.name,
        "nodes": len(fbas),
        "top": top.bit_count(),
        "intersection": "yes" if pair is None else "no",
        "t_inter": t1 - t0,
        "t_mq": t2 - t1,
        "t_mbs": t3 - t2,
        "t_mss": t4 - t3,
        "t_total": t4 - t0,
    }


def table(rows: list[dict[str, float | int | str]]) -> str:
    out = [
        "| file | nodes | top tier | intersection | intersection s | min. quorums s | blocking s | splitting s "
        "| total s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['file']} | {r['nodes']} | {r['top']} | {r['intersection']} | {r['t_inter']:.3f} | {r['t_mq']:.3f} "
            f"| {r['t_mbs']:.3f} | {r['t_mss']:.3f} | {r['t_total']:.3f} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="record the figures in docs/benchmarks.md")
    args = parser.parse_args()
    rows = []
    for path in sorted(p for p in DATA.glob("*.json") if "organizations" not in p.name):
        rows.append(bench(path))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    text = table(rows)
    print(text)
    if args.write:
        write_section(SECTION, "One core, wall-clock seconds.\n\n" + text, "python bench/bench_analysis.py --write")


if __name__ == "__main__":
    main()
