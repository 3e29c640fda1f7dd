"""Run every benchmark in bench/, one after another, each printing its own table.

    .venv/bin/python bench/run_all.py [--write] [--quick]

``--write`` passes through (each script replaces its own section of
docs/benchmarks.md); ``--quick`` gives each script its shortest meaningful
arguments, for a smoke run. Exits non-zero if any benchmark failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent

# script -> (full arguments, quick arguments)
SCRIPTS: dict[str, tuple[list[str], list[str]]] = {
    "bench_envelopes.py": ([], ["--seconds", "0.5"]),
    "bench_analysis.py": ([], []),
    "bench_sim.py": ([], ["--nodes", "10"]),
    "bench_localnet.py": ([], ["--nodes", "4", "--slots", "10"]),
    "bench_tx_throughput.py": ([], ["--quick"]),
    "bench_hostile_resources.py": ([], []),
    "bench_hostile_intake.py": ([], []),
    "bench_verify_threads.py": ([], ["--count", "1000", "--ledgers", "300"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="record the figures in docs/benchmarks.md")
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test of the scripts)")
    args = parser.parse_args()
    failed = []
    for script, (full, quick) in SCRIPTS.items():
        command = [sys.executable, str(BENCH / script), *(quick if args.quick else full)]
        if args.write:
            command.append("--write")
        print(f"== {script}", flush=True)
        started = time.monotonic()
        if subprocess.run(command, check=False).returncode != 0:
            failed.append(script)
        print(f"== {script}: {time.monotonic() - started:.0f} s", flush=True)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
