"""What the operator layer keeps an eye on while the node runs, and tells the world about.

Theory of operation: ``NodeWatch`` is fed by the herder (``ledger_closed``,
wired to its ``on_externalized`` callback) and ticks once a second on the
event loop (``run``). Each tick reads the node's status (cheap, no I/O) and
publishes what changed to the ``EventHub``: a quorum member's new state, the
node losing or regaining sync. It also keeps the transitive quorum analysis
(every quorum set the node has heard, checked by ``scpd.analysis``) fresh:
recomputed in a worker thread only when one of those quorum sets changes,
then exported as the ``scpd_quorum_intersection`` and
``scpd_quorum_critical_nodes`` gauges and served by ``GET /quorum``.

The thread holds the GIL while it searches, so every search shares one
budget (``ANALYSIS_STEPS`` branches, about a second of CPU here): quorum sets
that make the search exponential leave the intersection and the top tier
unknown instead of starving the event loop. The top tier is found without
listing the minimal quorums (``scpd.analysis.quorums.top_tier``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from scpd.analysis.engine import Engine
from scpd.analysis.fbas import Fbas, Node
from scpd.analysis.local import check_local_quorum, qset_from_scp
from scpd.analysis.quorums import Budget, SearchTooLarge, top_tier
from scpd.base.quorum import all_validators
from scpd.base.types import NodeID, SCPExternalize, SCPQuorumSet
from scpd.node.herder import ExternalizedSlot, Herder
from scpd.node.metrics import Metrics
from scpd.operator.config_node import NodeConfig
from scpd.operator.events import EventHub
from scpd.operator.status import NodeStatus, node_status

__all__ = ["NodeWatch", "analyse", "seen_quorum_sets"]

log = structlog.get_logger(__name__)

TICK_SECONDS = 1.0
# Branches one analysis may examine, all searches together (about 15 us each here). Stellar's
# 2020 network (190 nodes, 22 in the top tier) needs about 51,000 for its top tier.
ANALYSIS_STEPS = 100_000


@dataclass(frozen=True, slots=True)
class _Analysis:
    key: tuple[tuple[bytes, bytes], ...]
    result: dict[str, Any]


class NodeWatch:
    def __init__(self, config: NodeConfig, herder: Herder, hub: EventHub, metrics: Metrics | None = None) -> None:
        self.config = config
        self.herder = herder
        self.hub = hub
        self.metrics = metrics
        self._states: dict[NodeID, str] = {}
        self._sync: str | None = None
        self._analysis: _Analysis | None = None
        self._analysing = asyncio.Lock()
        # Also fed each tick's status (the quorum log): the status is worked out once a second for all.
        self.status_listeners: list[Callable[[NodeStatus, float], None]] = []

    def ledger_closed(self, done: ExternalizedSlot) -> None:
        rec = done.record
        self.hub.publish(
            "ledger",
            {
                "slot": done.slot,
                "hash": rec.hash.hex(),
                "close_time": rec.close_time,
                "txs": done.tx_count,
                "tx_ids": [tx_id.hex() for tx_id in rec.tx_set.tx_ids],
                "seconds": None if done.seconds_to_consensus is None else round(done.seconds_to_consensus, 4),
            },
        )

    async def run(self) -> None:
        """Tick until cancelled."""
        while True:
            self.tick()
            try:
                await self.transitive()
            except Exception as exc:  # the analysis must never stop the watch
                log.error("quorum analysis failed", error=str(exc))
            await asyncio.sleep(TICK_SECONDS)

    def tick(self, now: float | None = None) -> None:
        """Publish member state changes and sync changes since the last tick; hand the status on."""
        now = time.time() if now is None else now
        status = node_status(self.config, self.herder, now)
        for listener in self.status_listeners:
            listener(status, now)
        for m in status.members:
            state = m.state.value
            previous = self._states.get(m.node_id)
            if previous != state:
                self._states[m.node_id] = state
                self.hub.publish(
                    "member",
                    {
                        "node": str(m.node_id),
                        "name": self.config.name_of(m.node_id),
                        "state": state,
                        "previous": previous,
                    },
                )
        if status.state != self._sync:
            self.hub.publish("sync", {"state": status.state, "previous": self._sync})
            self._sync = status.state

    async def transitive(self) -> dict[str, Any]:
        """The analysis of every quorum set seen, recomputed (off the loop) only when they change."""
        async with self._analysing:
            seen = seen_quorum_sets(self.herder)
            key = tuple(sorted((n.ed25519, qset_hash) for n, (qset_hash, _) in seen.items()))
            if self._analysis is None or self._analysis.key != key:
                herder = self.herder
                known = {n: qset for n, (_, qset) in seen.items()}
                result = await asyncio.to_thread(
                    analyse, herder.node_id, herder.scp.quorum_set, known, self.config.label
                )
                self._analysis = _Analysis(key, result)
                self._export(result)
            return self._analysis.result

    def _export(self, result: dict[str, Any]) -> None:
        if self.metrics is None:
            return
        # Until every validator named has declared its quorum set, the figures would describe a partial network.
        complete = not result["quorum_sets_unknown"]
        nan = float("nan")
        intersection = result["intersection"]
        known = complete and intersection is not None
        self.metrics.quorum_intersection.set((1 if intersection else 0) if known else nan)
        self.metrics.quorum_critical_nodes.set(len(result["single_nodes_that_halt_us"]) if complete else nan)


def seen_quorum_sets(herder: Herder) -> dict[NodeID, tuple[bytes, SCPQuorumSet]]:
    """The quorum set (with its hash) each node reachable from ours last declared, as far as we have heard.

    Runs every tick, so it stays cheap on a big network: the hashes come from
    the statements (nothing is encoded again), and each distinct quorum set is
    walked once (on a symmetric network every node declares the same one).
    """
    seen: dict[NodeID, tuple[bytes, SCPQuorumSet]] = {}
    walked: set[bytes] = set()
    frontier = list(all_validators(herder.scp.quorum_set))
    while frontier:
        node = frontier.pop()
        if node in seen or node == herder.node_id:
            continue
        envelope = herder.scp.get_latest_message(node)
        if envelope is None:
            continue
        pledges = envelope.statement.pledges
        qset_hash = pledges.commit_quorum_set_hash if isinstance(pledges, SCPExternalize) else pledges.quorum_set_hash
        qset = herder.get_quorum_set(qset_hash)
        if qset is not None:
            seen[node] = (qset_hash, qset)
            if qset_hash not in walked:
                walked.add(qset_hash)
                frontier.extend(all_validators(qset))
    return seen


def analyse(
    local: NodeID, local_qset: SCPQuorumSet, known: dict[NodeID, SCPQuorumSet], label: Callable[[NodeID], str]
) -> dict[str, Any]:
    """Runs in a worker thread: pure computation over copies of immutable quorum sets."""
    budget = Budget(ANALYSIS_STEPS)
    report = check_local_quorum(local, local_qset, known, budget=budget)
    try:
        tier: list[dict[str, Any]] | None = _top_tier(local, local_qset, known, budget)
    except SearchTooLarge:
        tier = None
    if report.intersection is None or tier is None:
        log.warning("quorum analysis incomplete", nodes=len(known) + 1, steps=ANALYSIS_STEPS)
    return {
        "nodes_with_known_quorum_sets": len(known),
        "intersection": report.intersection,
        "disjoint_quorums": None if report.evidence is None else [sorted(str(n) for n in q) for q in report.evidence],
        "in_quorum": report.in_quorum,
        "single_nodes_that_halt_us": [str(n) for n in report.blocking_nodes],
        "quorum_sets_unknown": [str(n) for n in report.unknown],
        "top_tier": tier,
        "problems": report.problems(label),
        "computed_at": round(time.time(), 3),
    }


def _top_tier(
    local: NodeID, local_qset: SCPQuorumSet, known: dict[NodeID, SCPQuorumSet], budget: Budget
) -> list[dict[str, Any]]:
    """The union of the minimal quorums, each node with the quorum set it declared (for the status page)."""
    qsets = {str(n): qset_from_scp(q) for n, q in known.items()}
    qsets[str(local)] = qset_from_scp(local_qset)
    named = set().union(*(q.names() for q in qsets.values()))
    nodes = [Node(k, qsets.get(k)) for k in sorted(set(qsets) | named)]
    fbas = Fbas(tuple(nodes))
    engine = Engine.build(fbas)
    top = top_tier(engine, budget=budget)
    by_key = {str(n): q for n, q in known.items()} | {str(local): local_qset}
    return [
        {"node": nodes[i].key, "quorum_set": _qset_json(by_key[nodes[i].key])}
        for i in sorted(engine.to_original(top))
        if nodes[i].key in by_key
    ]


def _qset_json(q: SCPQuorumSet) -> dict[str, Any]:
    return {
        "threshold": q.threshold,
        "validators": [str(v) for v in q.validators],
        "inner_sets": [_qset_json(i) for i in q.inner_sets],
    }
