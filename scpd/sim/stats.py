"""What a run recorded, the property checks over it, and its JSON summary.

The :class:`Recorder` is written to by nodes as things happen (values voted
in NOMINATE statements, externalizations with their virtual time, envelopes
sent per slot, ballot counters, rejected input). The checks read it after the
run: safety (intertwined honest nodes never externalize different values for
a slot, and no node contradicts itself across a restart), validity (every
externalized value was voted for in some NOMINATE statement and is valid) and
liveness (every intact node externalized every slot by a deadline).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from scpd.base.types import SCPConfirm, SCPEnvelope, SCPExternalize, SCPNomination, SCPPrepare
from scpd.scp.driver import ValidationLevel
from scpd.sim import values

__all__ = ["Recorder", "percentile"]


def percentile(data: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation; None if no data."""
    if not data:
        return None
    ordered = sorted(data)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class Recorder:
    node_count: int
    slots: int
    voted: dict[int, set[bytes]] = field(default_factory=lambda: defaultdict(set))
    externalized: dict[int, dict[int, tuple[bytes, float]]] = field(default_factory=lambda: defaultdict(dict))
    nomination_started: dict[int, dict[int, float]] = field(default_factory=lambda: defaultdict(dict))
    emitted_per_slot: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    sends_per_slot: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    max_counter: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    contradictions: list[str] = field(default_factory=list)
    envelopes_verified: int = 0
    envelopes_processed: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    watched: frozenset[int] = frozenset()
    watched_decided: int = 0

    # -- written by nodes ----------------------------------------------------

    def sent(self, node: int, envelope: SCPEnvelope, copies: int, honest: bool) -> None:
        """``node`` sent ``envelope`` to ``copies`` peers (after any tampering)."""
        st = envelope.statement
        pledges = st.pledges
        if isinstance(pledges, SCPNomination):
            self.voted[st.slot_index].update(pledges.votes)
        if not honest:
            return
        self.sends_per_slot[st.slot_index] += copies
        counter = _ballot_counter(envelope)
        if counter is not None and counter > self.max_counter[st.slot_index]:
            self.max_counter[st.slot_index] = counter

    def emitted(self, slot: int) -> None:
        self.emitted_per_slot[slot] += 1

    def nominating(self, node: int, slot: int, now: float) -> None:
        self.nomination_started[node].setdefault(slot, now)

    def decided(self, node: int, slot: int, value: bytes, now: float) -> None:
        """First externalization of ``slot`` by ``node`` (kept across restarts)."""
        known = self.externalized[node].get(slot)
        if known is None:
            self.externalized[node][slot] = (value, now)
            if node in self.watched:
                self.watched_decided += 1
        elif known[0] != value:
            self.contradictions.append(
                f"node {node} externalized slot {slot} twice with different values {known[0].hex()} and {value.hex()}"
            )

    def reject(self, reason: str) -> None:
        self.rejected[reason] += 1

    # -- checks --------------------------------------------------------------

    def safety_violations(self, honest: Iterable[int]) -> list[str]:
        problems = list(self.contradictions)
        for slot in range(1, self.slots + 1):
            seen: dict[bytes, int] = {}
            for node in honest:
                decided = self.externalized[node].get(slot)
                if decided is not None:
                    seen.setdefault(decided[0], node)
            if len(seen) > 1:
                detail = ", ".join(f"node {n}: {v.hex()}" for v, n in seen.items())
                problems.append(f"slot {slot}: honest nodes disagree ({detail})")
        return problems

    def validity_violations(self, honest: Iterable[int]) -> list[str]:
        problems = []
        for node in honest:
            for slot, (value, _) in sorted(self.externalized[node].items()):
                if value not in self.voted[slot]:
                    problems.append(f"node {node} externalized {value.hex()} in slot {slot}, which nobody nominated")
                if values.validate(slot, value, self.node_count) != ValidationLevel.FULLY_VALID:
                    problems.append(f"node {node} externalized invalid value {value.hex()} in slot {slot}")
        return problems

    def liveness_violations(self, intact: Iterable[int], deadline: float) -> list[str]:
        problems = []
        for node in intact:
            for slot in range(1, self.slots + 1):
                decided = self.externalized[node].get(slot)
                if decided is None:
                    problems.append(f"intact node {node} never externalized slot {slot} (deadline {deadline:g}s)")
                elif decided[1] > deadline:
                    problems.append(
                        f"intact node {node} externalized slot {slot} at {decided[1]:g}s,"
                        f" after the deadline {deadline:g}s"
                    )
        return problems

    # -- summary -------------------------------------------------------------

    def latencies(self, nodes: Iterable[int]) -> dict[int, list[float]]:
        """Per slot, each node's virtual time from starting to nominate to externalizing."""
        out: dict[int, list[float]] = defaultdict(list)
        for node in nodes:
            started = self.nomination_started[node]
            for slot, (_, when) in self.externalized[node].items():
                if slot in started:
                    out[slot].append(max(0.0, when - started[slot]))
        return out

    def summary(self, honest: Sequence[int]) -> dict[str, Any]:
        lat = self.latencies(honest)
        all_lat = [x for slot in sorted(lat) for x in lat[slot]]
        per_slot = []
        for slot in range(1, self.slots + 1):
            decided = sorted({self.externalized[n][slot][0] for n in honest if slot in self.externalized[n]})
            per_slot.append(
                {
                    "slot": slot,
                    "externalized_by": sum(1 for n in honest if slot in self.externalized[n]),
                    "values": [v.hex() for v in decided],
                    "latency_p50": _round(percentile(lat.get(slot, []), 50)),
                    "latency_p99": _round(percentile(lat.get(slot, []), 99)),
                    "envelopes_emitted": self.emitted_per_slot.get(slot, 0),
                    "messages_sent": self.sends_per_slot.get(slot, 0),
                    "max_ballot_counter": self.max_counter.get(slot, 0),
                }
            )
        return {
            "slots_externalized": {str(n): len(self.externalized[n]) for n in honest},
            "agreement": not self.safety_violations(honest),
            "latency_p50": _round(percentile(all_lat, 50)),
            "latency_p99": _round(percentile(all_lat, 99)),
            "per_slot": per_slot,
            "envelopes_verified": self.envelopes_verified,
            "envelopes_processed": self.envelopes_processed,
            "rejected": dict(sorted(self.rejected.items())),
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def _ballot_counter(envelope: SCPEnvelope) -> int | None:
    pledges = envelope.statement.pledges
    if isinstance(pledges, SCPPrepare | SCPConfirm):
        return pledges.ballot.counter
    if isinstance(pledges, SCPExternalize):
        return pledges.commit.counter
    return None
