"""What one simulated run does: network, topology, faults, Byzantine nodes.

A :class:`Scenario` is plain data, fully described by ``scpd simulate``
options, so any run (including one a property test generated) can be
replayed from the command line: :meth:`Scenario.replay_command` prints it.
:func:`random_faults` turns a seed into a fault plan (latency, loss until a
heal time, duplication, reordering, a partition that heals, crashes that
restart, and the faults only the node layer sees); it draws only from its
own seeded streams, so the plan is part of what the seed fixes.

Node-layer faults (``--fault``): a node's disk failing for a while (its
own-envelope and ledger writes fail and are retried), a node dying right
after it stored an own envelope and before it sent it (``persist-crash``),
and fetches that go unanswered or answers that come late (``fetch``, see
:class:`~scpd.sim.network.FetchFault`).
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field, replace

from scpd.errors import UsageError
from scpd.sim import topology as topo
from scpd.sim.network import (
    Constant,
    Exponential,
    FetchFault,
    LatencyModel,
    Partition,
    Uniform,
    fnum,
    parse_latency,
)
from scpd.sim.randomness import derive_rng

__all__ = [
    "BYZANTINE_KIND_NAMES",
    "Crash",
    "DiskFault",
    "Fault",
    "PersistCrash",
    "Scenario",
    "parse_byzantine",
    "parse_crash",
    "parse_fault",
    "parse_link",
    "random_byzantine",
    "random_faults",
]

DEFAULT_LATENCY: LatencyModel = Uniform(0.01, 0.1)
DEFAULT_TIME_LIMIT = 3600.0
BYZANTINE_KIND_NAMES = (
    "silent",
    "equivocate",
    "unnominated",
    "replay",
    "high-counter",
    "untrusted-flood",
    "bad-signature",
    "far-future",
    "junk-tx-sets",
)


@dataclass(frozen=True, slots=True)
class Crash:
    """Node ``node`` goes down at ``at`` and comes back at ``restart`` (None: never)."""

    node: int
    at: float
    restart: float | None

    def __str__(self) -> str:
        return f"{self.node}:{fnum(self.at)}" + ("" if self.restart is None else f":{fnum(self.restart)}")


def parse_crash(text: str, what: str = "crash") -> Crash:
    """``NODE:AT[:RESTART]`` (seconds of virtual time)."""
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        node, at = int(parts[0]), float(parts[1])
        restart = float(parts[2]) if len(parts) == 3 else None
    except ValueError:
        raise UsageError(f"{what} {text!r}: expected NODE:AT[:RESTART]") from None
    if at < 0 or not math.isfinite(at) or (restart is not None and not (math.isfinite(restart) and restart >= at)):
        raise UsageError(f"{what} {text!r}: need 0 <= AT <= RESTART")
    return Crash(node, at, restart)


@dataclass(frozen=True, slots=True)
class PersistCrash:
    """Node ``node`` dies right after its first own-envelope write at or after ``at``, before sending it."""

    crash: Crash

    @property
    def node(self) -> int:
        return self.crash.node

    def __str__(self) -> str:
        return f"persist-crash:{self.crash}"


@dataclass(frozen=True, slots=True)
class DiskFault:
    """Node ``node``'s writes fail from ``start`` to ``end`` (a full disk; retried writes succeed after)."""

    node: int
    start: float
    end: float

    def __str__(self) -> str:
        return f"disk:{self.node}:{fnum(self.start)}:{fnum(self.end)}"


Fault = PersistCrash | DiskFault | FetchFault


def parse_fault(text: str) -> Fault:
    """``persist-crash:NODE:AT[:RESTART]``, ``disk:NODE:START:END`` or ``fetch:LOSS:DELAY:UNTIL``."""
    kind, _, rest = text.partition(":")
    if kind == "persist-crash":
        return PersistCrash(parse_crash(rest, "persist-crash"))
    if kind == "fetch":
        return FetchFault.parse(rest)
    if kind == "disk":
        try:
            node_s, start_s, end_s = rest.split(":")
            node, start, end = int(node_s), float(start_s), float(end_s)
        except ValueError:
            raise UsageError(f"fault {text!r}: expected disk:NODE:START:END") from None
        if not (math.isfinite(start) and math.isfinite(end) and 0 <= start <= end):
            raise UsageError(f"fault {text!r}: need 0 <= START <= END")
        return DiskFault(node, start, end)
    raise UsageError(f"fault {text!r}: kind must be one of persist-crash, disk, fetch")


def parse_link(text: str) -> tuple[int, int, LatencyModel]:
    """``SRC:DST:LATENCY``, e.g. ``0:3:uniform:0.1:0.3``: the latency of one directed link."""
    parts = text.split(":", 2)
    try:
        if len(parts) != 3:
            raise ValueError
        src, dst = int(parts[0]), int(parts[1])
    except ValueError:
        raise UsageError(f"link {text!r}: expected SRC:DST:LATENCY") from None
    return src, dst, parse_latency(parts[2])


def parse_byzantine(text: str) -> tuple[str, int]:
    """``KIND:COUNT`` with KIND one of the Byzantine kinds."""
    kind, _, count_s = text.partition(":")
    if kind not in BYZANTINE_KIND_NAMES:
        raise UsageError(f"byzantine {text!r}: kind must be one of {', '.join(BYZANTINE_KIND_NAMES)}")
    try:
        count = int(count_s) if count_s else 1
    except ValueError:
        raise UsageError(f"byzantine {text!r}: expected KIND:COUNT") from None
    if count < 0:
        raise UsageError(f"byzantine {text!r}: count must be >= 0")
    return kind, count


@dataclass(frozen=True)
class Scenario:
    topology: str = "symmetric"
    nodes: int = 4
    threshold: int | None = None
    slots: int = 3
    seed: int = 0
    latency: LatencyModel = DEFAULT_LATENCY
    link_latencies: tuple[tuple[int, int, LatencyModel], ...] = ()
    loss: float = 0.0
    loss_until: float = math.inf
    duplicate: float = 0.0
    reorder: float = 0.0
    partitions: tuple[Partition, ...] = ()
    crashes: tuple[Crash, ...] = ()
    byzantine: tuple[tuple[str, int], ...] = ()
    faults: tuple[Fault, ...] = ()
    slot_interval: float = 0.0
    rebroadcast_interval: float = 1.0
    time_limit: float = DEFAULT_TIME_LIMIT
    random_faults: bool = field(default=False)

    @property
    def heal_time(self) -> float:
        """When partitions have healed, loss has stopped and crashed nodes are back."""
        ends = [p.end for p in self.partitions]
        if self.loss > 0:
            ends.append(self.loss_until)
        ends.extend(c.restart for c in self.all_crashes if c.restart is not None)
        ends.extend(
            f.end if isinstance(f, DiskFault) else f.until for f in self.faults if not isinstance(f, PersistCrash)
        )
        return max(ends, default=0.0)

    @property
    def all_crashes(self) -> tuple[Crash, ...]:
        """The crashes, and the persist-crashes (at the latest times they may happen)."""
        return self.crashes + tuple(f.crash for f in self.faults if isinstance(f, PersistCrash))

    @property
    def fetch_fault(self) -> FetchFault | None:
        return next((f for f in self.faults if isinstance(f, FetchFault)), None)

    def cli_args(self) -> list[str]:
        """The ``scpd simulate`` options that rebuild exactly this scenario."""
        args = ["--nodes", str(self.nodes), "--topology", self.topology, "--slots", str(self.slots)]
        if self.threshold is not None:
            args += ["--threshold", str(self.threshold)]
        args += ["--seed", str(self.seed)]
        for kind, count in self.byzantine:
            args += ["--byzantine", f"{kind}:{count}"]
        if self.slot_interval:
            args += ["--slot-interval", fnum(self.slot_interval)]
        if self.time_limit != DEFAULT_TIME_LIMIT:
            args += ["--time-limit", fnum(self.time_limit)]
        if self.random_faults:
            return [*args, "--random-faults"]
        args += ["--latency", str(self.latency)]
        for src, dst, latency in self.link_latencies:
            args += ["--link", f"{src}:{dst}:{latency}"]
        if self.loss:
            args += ["--loss", fnum(self.loss)]
            if math.isfinite(self.loss_until):
                args += ["--loss-until", fnum(self.loss_until)]
        if self.duplicate:
            args += ["--duplicate", fnum(self.duplicate)]
        if self.reorder:
            args += ["--reorder", fnum(self.reorder)]
        for p in self.partitions:
            args += ["--partition", str(p)]
        for c in self.crashes:
            args += ["--crash", str(c)]
        for f in self.faults:
            args += ["--fault", str(f)]
        return args

    def replay_command(self) -> str:
        return shlex.join(["scpd", "simulate", *self.cli_args()])


def random_faults(base: Scenario) -> Scenario:
    """Fill ``base`` with a network fault plan and crashes drawn from its seed.

    Byzantine nodes are not drawn here: they stay as ``base.byzantine`` says
    (see :func:`random_byzantine`), so a replay command names them exactly.
    Faults all end by ~8 s of virtual time so liveness can be judged after.
    """
    rng = derive_rng(base.seed, "scenario/network")
    shape = rng.random()
    latency: LatencyModel
    if shape < 0.2:
        latency = Constant(round(rng.uniform(0.0, 0.05), 3))
    elif shape < 0.7:
        low = round(rng.uniform(0.0, 0.05), 3)
        latency = Uniform(low, round(low + rng.uniform(0.0, 0.3), 3))
    else:
        latency = Exponential(round(rng.uniform(0.0, 0.02), 3), round(rng.uniform(0.01, 0.2), 3))
    loss = round(rng.uniform(0.05, 0.3), 2) if rng.random() < 0.5 else 0.0
    loss_until = round(rng.uniform(1.0, 8.0), 2) if loss else math.inf
    duplicate = round(rng.uniform(0.0, 0.2), 2) if rng.random() < 0.3 else 0.0
    reorder = round(rng.uniform(0.0, 0.3), 2) if rng.random() < 0.3 else 0.0
    link_latencies: tuple[tuple[int, int, LatencyModel], ...] = ()
    if rng.random() < 0.3:
        # Distances differ per link: each directed link gets its own range.
        per_link = []
        for src in range(base.nodes):
            for dst in range(base.nodes):
                if src != dst:
                    low = round(rng.uniform(0.0, 0.2), 3)
                    per_link.append((src, dst, Uniform(low, round(low + rng.uniform(0.0, 0.1), 3))))
        link_latencies = tuple(per_link)
    partitions: tuple[Partition, ...] = ()
    if rng.random() < 0.4 and base.nodes >= 2:
        order = list(range(base.nodes))
        rng.shuffle(order)
        cut = rng.randint(1, base.nodes - 1)
        start = round(rng.uniform(0.0, 3.0), 2)
        end = round(start + rng.uniform(0.5, 5.0), 2)
        partitions = (Partition(start, end, (frozenset(order[:cut]), frozenset(order[cut:]))),)
    crash_rng = derive_rng(base.seed, "scenario/crash")
    crashes: tuple[Crash, ...] = ()
    if crash_rng.random() < 0.3:
        at = round(crash_rng.uniform(0.0, 3.0), 2)
        crashes = (Crash(crash_rng.randrange(base.nodes), at, round(at + crash_rng.uniform(0.1, 4.0), 2)),)
    return replace(
        base,
        latency=latency,
        link_latencies=link_latencies,
        loss=loss,
        loss_until=loss_until,
        duplicate=duplicate,
        reorder=reorder,
        partitions=partitions,
        crashes=crashes,
        faults=_random_node_faults(base),
        random_faults=True,
    )


def _random_node_faults(base: Scenario) -> tuple[Fault, ...]:
    """A failing disk, a crash between store and send, and hard fetching, each now and then; over by ~8 s."""
    rng = derive_rng(base.seed, "scenario/node-faults")
    faults: list[Fault] = []
    if rng.random() < 0.25:
        start = round(rng.uniform(0.0, 4.0), 2)
        faults.append(DiskFault(rng.randrange(base.nodes), start, round(start + rng.uniform(0.2, 3.0), 2)))
    if rng.random() < 0.2:
        at = round(rng.uniform(0.0, 3.0), 2)
        restart = round(at + rng.uniform(0.1, 3.0), 2)
        faults.append(PersistCrash(Crash(rng.randrange(base.nodes), at, restart)))
    if rng.random() < 0.3:
        loss, delay = round(rng.uniform(0.1, 0.5), 2), round(rng.uniform(0.0, 2.0), 2)
        faults.append(FetchFault(loss, delay, round(rng.uniform(1.0, 8.0), 2)))
    return tuple(faults)


def random_byzantine(
    seed: int,
    topology_name: str,
    nodes: int,
    kinds: tuple[str, ...] = BYZANTINE_KIND_NAMES,
    chance: float = 0.6,
    threshold: int | None = None,
) -> tuple[tuple[str, int], ...]:
    """Byzantine kinds and counts drawn from ``seed``, within the topology's tolerance."""
    rng = derive_rng(seed, "scenario/byzantine")
    tolerance = topo.build(topology_name, nodes, seed, threshold).byzantine_tolerance
    if not tolerance or not kinds or rng.random() >= chance:
        return ()
    chosen = [kinds[rng.randrange(len(kinds))] for _ in range(rng.randint(1, tolerance))]
    return tuple((k, chosen.count(k)) for k in kinds if k in chosen)
