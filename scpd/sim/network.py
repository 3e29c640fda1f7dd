"""The simulated network: per-link latency, loss, duplication, reordering, partitions.

Every send is decided when it is made, from the network's own random stream:
dropped (loss, or the two ends are in different partition groups), delivered
once after a latency drawn from the link's distribution, possibly delayed
further (reordering) and possibly delivered a second time (duplication). A
message still in flight when a partition cuts its link is dropped on arrival.
Loss stops at ``loss_until`` so that liveness can be judged after it.

Latencies are plain seconds of virtual time. A link's model is the default
unless ``links`` overrides that (source, destination) pair.

:class:`FetchFault` makes fetching hard until it ends: requests for tx sets
and quorum sets are lost with a probability of their own (the asker hears
nothing and must time out), and tx sets take up to ``delay`` seconds longer
to arrive, so envelopes wait for their tx sets and some fetches time out
before the answer comes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from scpd.errors import UsageError
from scpd.nodecore.messages import MessageType
from scpd.sim.clock import VirtualClock

__all__ = [
    "Constant",
    "Exponential",
    "FetchFault",
    "LatencyModel",
    "LinkSpec",
    "Network",
    "NetworkConditions",
    "NetworkCounters",
    "Partition",
    "Uniform",
    "fnum",
    "parse_latency",
]


def fnum(x: float) -> str:
    """A float as the shortest text that parses back to exactly it (no trailing .0)."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True, slots=True)
class Constant:
    seconds: float

    def sample(self, rng: random.Random) -> float:
        return self.seconds

    def __str__(self) -> str:
        return f"const:{fnum(self.seconds)}"


@dataclass(frozen=True, slots=True)
class Uniform:
    low: float
    high: float

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)

    def __str__(self) -> str:
        return f"uniform:{fnum(self.low)}:{fnum(self.high)}"


@dataclass(frozen=True, slots=True)
class Exponential:
    """A floor plus an exponential tail: most messages fast, a few slow."""

    floor: float
    mean_extra: float

    def sample(self, rng: random.Random) -> float:
        return self.floor + (rng.expovariate(1.0 / self.mean_extra) if self.mean_extra > 0 else 0.0)

    def __str__(self) -> str:
        return f"exp:{fnum(self.floor)}:{fnum(self.mean_extra)}"


LatencyModel = Constant | Uniform | Exponential


def parse_latency(text: str) -> LatencyModel:
    """Parse ``const:S``, ``uniform:LO:HI`` or ``exp:FLOOR:MEAN`` (seconds)."""
    kind, _, rest = text.partition(":")
    try:
        numbers = [float(x) for x in rest.split(":")] if rest else []
    except ValueError:
        raise UsageError(f"latency {text!r}: numbers expected after the kind") from None
    if any(not math.isfinite(x) or x < 0 for x in numbers):
        raise UsageError(f"latency {text!r}: seconds must be finite and >= 0")
    if kind == "const" and len(numbers) == 1:
        return Constant(numbers[0])
    if kind == "uniform" and len(numbers) == 2 and numbers[0] <= numbers[1]:
        return Uniform(numbers[0], numbers[1])
    if kind == "exp" and len(numbers) == 2:
        return Exponential(numbers[0], numbers[1])
    raise UsageError(f"latency {text!r}: expected const:S, uniform:LO:HI (LO <= HI) or exp:FLOOR:MEAN")


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """How one directed link behaves: latency model and fault probabilities."""

    latency: LatencyModel = Constant(0.0)
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_delay: float = 0.5


@dataclass(frozen=True, slots=True)
class Partition:
    """Between ``start`` and ``end``, only nodes in the same group can talk.

    Nodes named in no group form one more group together.
    """

    start: float
    end: float
    groups: tuple[frozenset[int], ...]

    def separates(self, a: int, b: int, now: float) -> bool:
        if not self.start <= now < self.end:
            return False
        return self._group_of(a) != self._group_of(b)

    def _group_of(self, node: int) -> int:
        for i, group in enumerate(self.groups):
            if node in group:
                return i
        return -1

    def __str__(self) -> str:
        groups = "/".join(",".join(str(n) for n in sorted(g)) for g in self.groups)
        return f"{fnum(self.start)}:{fnum(self.end)}:{groups}"

    @classmethod
    def parse(cls, text: str) -> Partition:
        """``START:END:a,b,c/d,e`` (groups separated by ``/``)."""
        try:
            start_s, end_s, groups_s = text.split(":")
            start, end = float(start_s), float(end_s)
            groups = tuple(frozenset(int(n) for n in g.split(",") if n) for g in groups_s.split("/"))
        except ValueError:
            raise UsageError(f"partition {text!r}: expected START:END:a,b,c/d,e") from None
        if not (math.isfinite(start) and math.isfinite(end) and 0 <= start <= end):
            raise UsageError(f"partition {text!r}: need 0 <= START <= END")
        return cls(start, end, groups)


_REQUESTS = frozenset({int(MessageType.GET_TX_SET), int(MessageType.GET_SCP_QUORUMSET)})
_TX_SET = int(MessageType.TX_SET)


@dataclass(frozen=True, slots=True)
class FetchFault:
    """Until ``until``: a GET for a tx set or quorum set is lost with probability ``loss``;
    a tx set is delayed by up to ``delay`` more seconds."""

    loss: float
    delay: float
    until: float

    def __str__(self) -> str:
        return f"fetch:{fnum(self.loss)}:{fnum(self.delay)}:{fnum(self.until)}"

    @classmethod
    def parse(cls, text: str) -> FetchFault:
        """``LOSS:DELAY:UNTIL`` (what follows ``fetch:``)."""
        try:
            loss, delay, until = (float(x) for x in text.split(":"))
        except ValueError:
            raise UsageError(f"fetch fault {text!r}: expected fetch:LOSS:DELAY:UNTIL") from None
        if not (0.0 <= loss <= 1.0 and math.isfinite(delay) and delay >= 0 and math.isfinite(until) and until >= 0):
            raise UsageError(f"fetch fault {text!r}: need 0 <= LOSS <= 1, DELAY >= 0, UNTIL >= 0")
        return cls(loss, delay, until)


@dataclass(frozen=True, slots=True)
class NetworkConditions:
    default: LinkSpec = LinkSpec()
    links: dict[tuple[int, int], LinkSpec] = field(default_factory=dict)
    partitions: tuple[Partition, ...] = ()
    loss_until: float = math.inf
    fetch: FetchFault | None = None

    def link(self, src: int, dst: int) -> LinkSpec:
        return self.links.get((src, dst), self.default)

    def partitioned(self, src: int, dst: int, now: float) -> bool:
        return any(p.separates(src, dst, now) for p in self.partitions)

    @property
    def heal_time(self) -> float:
        """When the last partition has healed and loss has stopped."""
        lossy = self.default.loss > 0 or any(spec.loss > 0 for spec in self.links.values())
        ends = [p.end for p in self.partitions]
        if lossy:
            ends.append(self.loss_until)
        if self.fetch is not None:
            ends.append(self.fetch.until)
        return max(ends, default=0.0)


@dataclass(slots=True)
class NetworkCounters:
    sent: int = 0
    delivered: int = 0
    lost: int = 0
    cut: int = 0
    duplicated: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "delivered": self.delivered,
            "lost": self.lost,
            "cut_by_partition": self.cut,
            "duplicated": self.duplicated,
        }


Deliver = Callable[[int, int, bytes], None]


class Network:
    """Moves byte strings between node indices on the virtual clock."""

    def __init__(
        self, clock: VirtualClock, rng: random.Random, conditions: NetworkConditions, deliver: Deliver
    ) -> None:
        self.clock = clock
        self.rng = rng
        self.conditions = conditions
        self._deliver = deliver
        self.counters = NetworkCounters()

    def send(self, src: int, dst: int, payload: bytes) -> None:
        """Send ``payload`` from ``src`` to ``dst`` (decided now, delivered later)."""
        counters = self.counters
        counters.sent += 1
        conditions = self.conditions
        now = self.clock.now
        if conditions.partitions and conditions.partitioned(src, dst, now):
            counters.cut += 1
            return
        spec = conditions.link(src, dst)
        rng = self.rng
        if spec.loss > 0 and now < conditions.loss_until and rng.random() < spec.loss:
            counters.lost += 1
            return
        extra = 0.0
        fetch = conditions.fetch
        if fetch is not None and now < fetch.until:
            kind = int.from_bytes(payload[:4], "big")
            if kind in _REQUESTS and rng.random() < fetch.loss:
                counters.lost += 1
                return
            if kind == _TX_SET and fetch.delay > 0:
                extra = rng.uniform(0.0, fetch.delay)
        self._schedule(src, dst, payload, spec, extra)
        if spec.duplicate > 0 and rng.random() < spec.duplicate:
            counters.duplicated += 1
            self._schedule(src, dst, payload, spec, extra)

    def broadcast(self, src: int, targets: Sequence[int], payload: bytes) -> None:
        for dst in targets:
            self.send(src, dst, payload)

    def _schedule(self, src: int, dst: int, payload: bytes, spec: LinkSpec, extra: float = 0.0) -> None:
        delay = spec.latency.sample(self.rng) + extra
        if spec.reorder > 0 and self.rng.random() < spec.reorder:
            delay += self.rng.uniform(0.0, spec.reorder_delay)
        self.clock.call_later(delay, lambda: self._arrive(src, dst, payload))

    def _arrive(self, src: int, dst: int, payload: bytes) -> None:
        if self.conditions.partitions and self.conditions.partitioned(src, dst, self.clock.now):
            self.counters.cut += 1
            return
        self.counters.delivered += 1
        self._deliver(dst, src, payload)
