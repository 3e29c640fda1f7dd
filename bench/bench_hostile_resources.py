"""What one hostile stranger makes a validator spend: the attacks of tests/test_hostile_resources.py, as figures.

Each attack runs on a fresh 4-validator localnet (0.5 s slots) against real
``scpd`` processes; the table gives, per attack, the node's RSS before and at
its peak, the attacker's bytes in / bytes out, the fewest ledgers an honest
validator closed during the attack, and the attack's own figure.

    .venv/bin/python bench/bench_hostile_resources.py [--write]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE.parent), str(HERE)]

import test_hostile_resources as attacks  # noqa: E402
from benchdoc import write_section  # noqa: E402
from netutil import Network  # noqa: E402

MIB = 1 << 20

ATTACKS: list[tuple[str, Callable[[Network], attacks.Figures], str]] = [
    ("990 GET_TX_SET for a 0.8 MB set, not reading", attacks.get_tx_set_flood, ""),
    ("30 unrequested 4 MiB TX_SET", attacks.unrequested_tx_sets, "RSS still held after: +{:.0f} MiB"),
    ("1000 unrequested quorum sets", attacks.unrequested_quorum_sets, "quorum sets stored: {:.0f}"),
    ("175,000 junk transactions", attacks.junk_transactions, "client POST /tx with 5xx: {:.0f} of 30"),
    ("500 silent TCP + 8 strangers, node2 restarts", attacks.silent_connections, "node2 back after {:.1f} s"),
    ("banned stranger returns under 5 fresh keys", attacks.fresh_keys_after_ban, "fresh keys admitted: {:.0f}"),
]


def run(name: str, attack: Callable[[Network], attacks.Figures], extra: str) -> str:
    try:
        with tempfile.TemporaryDirectory() as tmp, Network(Path(tmp), 4) as net:
            net.wait_slot(2)
            f = attack(net)
            net.assert_agreement()
    except AssertionError as exc:  # a node that stalls under the attack is a figure too
        return f"| {name} | - | - | - | failed: {str(exc).splitlines()[0][:100]} |"
    shown = extra.format(f.extra / MIB if "MiB" in extra else f.extra) if extra else ""
    rss = f"{f.rss_before / MIB:.0f} → {f.rss_peak / MIB:.0f}" if f.rss_before else "-"
    amp = f"{f.amplification:.2f}" if f.bytes_out else "-"
    return f"| {name} | {rss} | {amp} | {f.ledgers_during} | {shown} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="record the table in docs/benchmarks.md")
    args = parser.parse_args()
    rows = [
        "| attack | RSS MiB (before → peak) | bytes in / out | ledgers during | figure |",
        "|---|---|---|---|---|",
    ]
    for name, attack, extra in ATTACKS:
        rows.append(run(name, attack, extra))
        print(rows[-1], flush=True)
    rows += ["", "| request (2000 from one stranger) | answer bytes / request bytes |", "|---|---|"]
    try:
        with tempfile.TemporaryDirectory() as tmp, Network(Path(tmp), 4) as net:
            net.wait_slot(2)
            for request, ratio in attacks.every_request_type(net).items():
                rows.append(f"| {request} | {ratio:.2f} |")
                print(rows[-1], flush=True)
    except AssertionError as exc:
        rows.append(f"| (failed) | {str(exc).splitlines()[0][:100]} |")
    table = "\n".join(rows)
    print(table)
    if args.write:
        write_section("Hostile peers: resource bounds", table, "python bench/bench_hostile_resources.py --write")


if __name__ == "__main__":
    main()
