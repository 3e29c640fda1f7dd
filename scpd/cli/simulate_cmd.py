"""``scpd simulate``: run many nodes in one process on a virtual clock.

Prints a JSON summary (slots externalized per node, agreement, virtual
latency per slot, messages per slot, ballot counters reached); strict JSON,
so ``heal_time`` is null when the scenario never heals. On a terminal a
progress bar (stderr) counts the decisions awaited. One seed
always gives the same run, so a failing property test prints a command line
of this form to replay it. Exits 0 when the honest nodes agreed and only
valid, nominated values were externalized, 1 otherwise.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from typing import Any

from scpd.cli.output import print_json, progress
from scpd.errors import UsageError
from scpd.sim import topology as topo
from scpd.sim.network import Partition, parse_latency
from scpd.sim.scenario import (
    DEFAULT_LATENCY,
    DEFAULT_TIME_LIMIT,
    Scenario,
    parse_byzantine,
    parse_crash,
    parse_fault,
    parse_link,
    random_faults,
)
from scpd.sim.simulator import run


def register(sub: Any) -> None:
    p = sub.add_parser("simulate", help="run a deterministic simulated network and print a JSON summary")
    p.add_argument("--nodes", type=int, default=4, help="number of validators (default 4)")
    p.add_argument("--topology", choices=topo.TOPOLOGIES, default="symmetric")
    p.add_argument("--threshold", type=int, help="symmetric only: slice size (default n - floor((n - 1) / 3))")
    p.add_argument("--slots", type=int, default=3, help="slots to decide (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latency", default=str(DEFAULT_LATENCY), help="const:S, uniform:LO:HI or exp:FLOOR:MEAN seconds")
    p.add_argument("--link", action="append", default=[], metavar="SRC:DST:LATENCY", help="one link's latency")
    p.add_argument("--loss", type=float, default=0.0, help="probability that a message is lost")
    p.add_argument("--loss-until", type=float, default=math.inf, help="virtual second at which loss stops")
    p.add_argument("--duplicate", type=float, default=0.0, help="probability that a message arrives twice")
    p.add_argument("--reorder", type=float, default=0.0, help="probability of an extra random delay")
    p.add_argument("--partition", action="append", default=[], metavar="START:END:a,b/c,d")
    p.add_argument("--crash", action="append", default=[], metavar="NODE:AT[:RESTART]")
    p.add_argument("--byzantine", action="append", default=[], metavar="KIND:COUNT")
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND:...",
        help="node-layer fault: disk:NODE:START:END, persist-crash:NODE:AT[:RESTART] or fetch:LOSS:DELAY:UNTIL",
    )
    p.add_argument("--slot-interval", type=float, default=0.0, help="minimum seconds between slot nominations")
    p.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT, help="stop after this much virtual time")
    p.add_argument(
        "--random-faults",
        action="store_true",
        help="draw latency, loss, partitions, crashes and node-layer faults from the seed",
    )
    p.set_defaults(handler=run_simulate)


def _probability(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"--{name} must be between 0 and 1, got {value}")
    return value


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    if args.nodes < 1 or args.slots < 1:
        raise UsageError("--nodes and --slots must be at least 1")
    if not args.time_limit > 0:
        raise UsageError("--time-limit must be positive")
    scenario = Scenario(
        topology=args.topology,
        nodes=args.nodes,
        threshold=args.threshold,
        slots=args.slots,
        seed=args.seed,
        latency=parse_latency(args.latency),
        link_latencies=tuple(parse_link(x) for x in args.link),
        loss=_probability("loss", args.loss),
        loss_until=args.loss_until,
        duplicate=_probability("duplicate", args.duplicate),
        reorder=_probability("reorder", args.reorder),
        partitions=tuple(Partition.parse(p) for p in args.partition),
        crashes=tuple(parse_crash(c) for c in args.crash),
        byzantine=tuple(parse_byzantine(b) for b in args.byzantine),
        faults=tuple(parse_fault(f) for f in args.fault),
        slot_interval=max(0.0, args.slot_interval),
        time_limit=args.time_limit,
    )
    if args.random_faults:
        scenario = random_faults(replace(scenario, partitions=(), crashes=(), link_latencies=()))
    return scenario


def run_simulate(args: argparse.Namespace) -> int:
    scenario = scenario_from_args(args)
    with progress("decisions", scenario.nodes * scenario.slots) as bar:
        result = run(scenario, None if bar is None else lambda done, goal: bar(done, total=goal))
    summary = result.summary()
    print_json(summary)
    return 0 if summary["agreement"] and summary["validity"] else 1
