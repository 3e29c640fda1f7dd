"""What a run recorded, the property checks over it, and its JSON summary.

The :class:`Recorder` is written to by the nodes' shells as things happen:
values voted in NOMINATE statements sent on the wire, ledgers written (with
their tx sets and virtual time), own envelopes persisted and sent, ballot
counters, and the facts the node cores report (refused input by reason,
signature checks, equivocations found, peers scored). The checks read it
after the run:

- **safety**: intertwined honest nodes never write different values for a
  slot; no node writes two values for one slot across restarts; no honest
  node ever sends an own envelope it has not persisted first (DESIGN rule 3);
- **validity**: every ledger an honest node wrote passes the node core's own
  rules (``check_value``) against the ledger before it in that node's chain
  (the tx set builds on it, is canonical, within the limits, repeats no
  included transaction; the close time is not before the previous one), its
  tx set was named by some NOMINATE vote for that slot, and its close time is
  that of some nominated value (the composite takes the highest);
- **liveness**: every intact node wrote every slot by a deadline;
- **conduct**: no honest node holds anything against an honest peer (scores
  it, or reports it as equivocating): the defences hit only the guilty.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from scpd.base.types import NodeID, SCPConfirm, SCPEnvelope, SCPExternalize, SCPNomination, SCPPrepare
from scpd.base.xdr import XdrError
from scpd.nodecore.values import (
    GENESIS_CLOSE_TIME,
    GENESIS_HASH,
    ConsensusValue,
    LedgerEntry,
    TxSet,
    TxSetLimits,
    check_value,
    ledger_hash,
)

__all__ = ["Recorder", "ValueRules", "percentile"]


def percentile(data: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation; None if no data."""
    if not data:
        return None
    ordered = sorted(data)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True, slots=True)
class ValueRules:
    """The node core's limits a written value is judged by (from the run's settings)."""

    limits: TxSetLimits
    max_close_time_drift: float


@dataclass
class Recorder:
    node_count: int
    slots: int
    rules: ValueRules = field(default_factory=lambda: ValueRules(TxSetLimits(1000, 1 << 20), 60.0))
    honest_ids: frozenset[NodeID] = frozenset()
    voted: dict[int, set[bytes]] = field(default_factory=lambda: defaultdict(set))
    externalized: dict[int, dict[int, tuple[bytes, float]]] = field(default_factory=lambda: defaultdict(dict))
    tx_sets: dict[int, dict[int, TxSet]] = field(default_factory=lambda: defaultdict(dict))
    latency: dict[int, dict[int, float]] = field(default_factory=lambda: defaultdict(dict))
    emitted_per_slot: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    sends_per_slot: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    max_counter: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    contradictions: list[str] = field(default_factory=list)
    envelopes_verified: int = 0
    envelopes_processed: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    scored: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    storage_failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    accused: dict[int, set[NodeID]] = field(default_factory=lambda: defaultdict(set))
    watched: frozenset[int] = frozenset()
    watched_decided: int = 0
    _persisted: dict[int, set[SCPEnvelope]] = field(default_factory=lambda: defaultdict(set))

    # -- written by the nodes' shells ---------------------------------------------

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

    def persisted(self, node: int, envelope: SCPEnvelope) -> None:
        """``node``'s shell stored ``envelope`` durably (honest nodes only)."""
        self._persisted[node].add(envelope)
        self.emitted_per_slot[envelope.statement.slot_index] += 1

    def sending_own(self, node: int, envelope: SCPEnvelope) -> None:
        """An honest node is about to send one of its own envelopes: it must be on disk already."""
        if envelope not in self._persisted[node]:
            self.contradictions.append(
                f"node {node} sent its slot {envelope.statement.slot_index} envelope before persisting it"
            )

    def ledger_written(self, node: int, entry: LedgerEntry, tx_set: TxSet, now: float) -> None:
        """``node`` wrote ledger ``entry.slot`` (kept across restarts)."""
        slot = entry.slot
        value = entry.value.to_xdr()
        known = self.externalized[node].get(slot)
        if known is None:
            self.externalized[node][slot] = (value, now)
            self.tx_sets[node][slot] = tx_set
            if node in self.watched and slot <= self.slots:
                self.watched_decided += 1
        elif known[0] != value:
            self.contradictions.append(
                f"node {node} wrote slot {slot} twice with different values {known[0].hex()} and {value.hex()}"
            )

    def decided_after(self, node: int, slot: int, seconds: float) -> None:
        """``node`` wrote ``slot`` ``seconds`` after it began to nominate it."""
        self.latency[node].setdefault(slot, seconds)

    def reject(self, reason: str) -> None:
        self.rejected[reason] += 1

    def score(self, scorer_honest: bool, scored_honest: bool, reason: str) -> None:
        """An honest node held ``reason`` against a peer (honest or not); Byzantine scorers are not heard."""
        if scorer_honest:
            self.scored[f"honest peer: {reason}" if scored_honest else reason] += 1

    def equivocation(self, reporter: int, node: NodeID) -> None:
        self.accused[reporter].add(node)

    # -- checks --------------------------------------------------------------

    def safety_violations(self, honest: Iterable[int]) -> list[str]:
        honest = list(honest)
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

    def conduct_violations(self, honest: Iterable[int]) -> list[str]:
        problems = [
            f"{n} time(s) an honest node held against an {why}"
            for why, n in sorted(self.scored.items())
            if why.startswith("honest peer: ")
        ]
        for node in honest:
            for wronged in sorted(self.accused[node] & self.honest_ids, key=str):
                problems.append(f"node {node} reported the honest node {wronged} as equivocating")
        return problems

    def validity_violations(self, honest: Iterable[int]) -> list[str]:
        problems = []
        for node in honest:
            problems += self._chain_problems(node)
        return problems

    def _chain_problems(self, node: int) -> list[str]:
        problems = []
        previous_hash, previous_close = GENESIS_HASH, GENESIS_CLOSE_TIME
        included: set[bytes] = set()
        for slot, (raw, when) in sorted(self.externalized[node].items()):
            where = f"node {node} slot {slot}"
            try:
                value = ConsensusValue.from_xdr(raw)
            except XdrError:
                problems.append(f"{where}: wrote {raw.hex()}, which is no value")
                break
            tx_set = self.tx_sets[node][slot]
            nominated = _decoded(self.voted[slot])
            if value.tx_set_hash not in {v.tx_set_hash for v in nominated}:
                problems.append(f"{where}: its tx set {value.tx_set_hash.hex()[:16]} was in no NOMINATE vote")
            if value.close_time not in {v.close_time for v in nominated}:
                problems.append(f"{where}: close time {value.close_time} is no nominated value's")
            problem = check_value(
                value,
                tx_set,
                last_ledger_hash=previous_hash,
                last_close_time=previous_close,
                now=when,
                max_future=self.rules.max_close_time_drift,
                limits=self.rules.limits,
                included_among=lambda ids: included.intersection(ids),
            )
            if problem is not None:
                problems.append(f"{where}: invalid value: {problem}")
            included.update(tx_set.tx_ids)
            previous_hash = ledger_hash(previous_hash, LedgerEntry(slot, value))
            previous_close = value.close_time
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
        """Per slot, each node's virtual time from starting to nominate to writing the ledger."""
        out: dict[int, list[float]] = defaultdict(list)
        for node in nodes:
            for slot, seconds in self.latency[node].items():
                if slot <= self.slots:
                    out[slot].append(seconds)
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
            "slots_externalized": {str(n): sum(1 for s in self.externalized[n] if s <= self.slots) for n in honest},
            "agreement": not self.safety_violations(honest),
            "latency_p50": _round(percentile(all_lat, 50)),
            "latency_p99": _round(percentile(all_lat, 99)),
            "per_slot": per_slot,
            "envelopes_verified": self.envelopes_verified,
            "envelopes_processed": self.envelopes_processed,
            "rejected": dict(sorted(self.rejected.items())),
        }


def _decoded(raw_values: Iterable[bytes]) -> list[ConsensusValue]:
    out = []
    for raw in raw_values:
        try:
            out.append(ConsensusValue.from_xdr(raw))
        except XdrError:
            continue
    return out


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def _ballot_counter(envelope: SCPEnvelope) -> int | None:
    pledges = envelope.statement.pledges
    if isinstance(pledges, SCPPrepare | SCPConfirm):
        return pledges.ballot.counter
    if isinstance(pledges, SCPExternalize):
        return pledges.commit.counter
    return None
