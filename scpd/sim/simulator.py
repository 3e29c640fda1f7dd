"""Wiring and running one simulated network.

:class:`Simulation` turns a :class:`~scpd.sim.scenario.Scenario` into nodes
on one virtual clock: builds the topology, places the Byzantine nodes (drawn
from the topology's candidates by the seed), schedules crashes and restarts
and the node-layer faults (failing disks, crashes between store and send),
and runs the event queue until every intact node has written every slot
or the time limit passes. :class:`SimResult` holds what happened and the
property checks.

Every node core runs with the daemon's default settings but three: the slot
interval and rebroadcast interval of the scenario, and :data:`FETCH_TIMEOUT`
(the simulated links answer within a second; the daemon allows 5 s).

The intact set is computed, not assumed: the honest nodes that do not stay
down, reduced to the greatest set in which every member's quorum set is
satisfied by members (so they can make progress without any faulty node).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from scpd.base import quorum
from scpd.base.keys import network_id
from scpd.errors import UsageError
from scpd.nodecore.settings import CoreSettings
from scpd.sim import topology as topo
from scpd.sim.byzantine import make_byzantine
from scpd.sim.clock import VirtualClock
from scpd.sim.network import LinkSpec, Network, NetworkConditions
from scpd.sim.node import SimNode, World
from scpd.sim.randomness import derive_rng
from scpd.sim.scenario import DiskFault, PersistCrash, Scenario
from scpd.sim.stats import Recorder, ValueRules

__all__ = ["FETCH_TIMEOUT", "NETWORK_PASSPHRASE", "SimResult", "Simulation", "run"]

NETWORK_PASSPHRASE = "scpd simulator network"
FETCH_TIMEOUT = 1.0


@dataclass
class SimResult:
    scenario: Scenario
    topology: topo.Topology
    recorder: Recorder
    honest: list[int]
    intact: list[int]
    byzantine: dict[int, str]
    network: dict[str, int]
    end_time: float
    events: int

    @property
    def completed(self) -> bool:
        return all(len(self.recorder.externalized[n]) >= self.scenario.slots for n in self.intact)

    def safety_violations(self) -> list[str]:
        return self.recorder.safety_violations(self.honest)

    def conduct_violations(self) -> list[str]:
        return self.recorder.conduct_violations(self.honest)

    def validity_violations(self) -> list[str]:
        return self.recorder.validity_violations(self.honest)

    def liveness_violations(self, bound: float) -> list[str]:
        """Intact nodes that did not externalize every slot by heal time + ``bound``."""
        return self.recorder.liveness_violations(self.intact, self.scenario.heal_time + bound)

    def externalized_values(self) -> dict[int, dict[int, bytes]]:
        """The values written for the scenario's slots (nodes that went on past them wrote more)."""
        rec, last = self.recorder.externalized, self.scenario.slots
        return {n: {s: v for s, (v, _) in sorted(rec[n].items()) if s <= last} for n in sorted(rec)}

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "scenario": {
                "topology": self.scenario.topology,
                "nodes": self.scenario.nodes,
                "threshold": self.scenario.threshold,
                "slots": self.scenario.slots,
                "seed": self.scenario.seed,
                "byzantine": {str(i): kind for i, kind in sorted(self.byzantine.items())},
                "byzantine_tolerance": self.topology.byzantine_tolerance,
                # null: the scenario never heals (loss without --loss-until, a partition without end)
                "heal_time": self.scenario.heal_time if math.isfinite(self.scenario.heal_time) else None,
                "replay": self.scenario.replay_command(),
            },
            "completed": self.completed,
            "virtual_time": round(self.end_time, 6),
            "events": self.events,
            "intact_nodes": self.intact,
        }
        out.update(self.recorder.summary(self.honest))
        out["validity"] = not self.validity_violations()
        out["network"] = self.network
        return out


class Simulation:
    def __init__(self, scenario: Scenario) -> None:
        if scenario.slots < 1:
            raise UsageError("--slots must be at least 1")
        if not scenario.rebroadcast_interval > 0:
            raise UsageError("the rebroadcast interval must be positive (it paces the node core's tick)")
        self.scenario = scenario
        self.topology = topo.build(scenario.topology, scenario.nodes, scenario.seed, scenario.threshold)
        n = self.topology.size
        self.byzantine = self._place_byzantine()
        for crash in scenario.all_crashes:
            if not 0 <= crash.node < n:
                raise UsageError(f"crash: node {crash.node} not in 0..{n - 1}")
        for fault in scenario.faults:
            if isinstance(fault, DiskFault) and not 0 <= fault.node < n:
                raise UsageError(f"disk fault: node {fault.node} not in 0..{n - 1}")
        for partition in scenario.partitions:
            if any(not 0 <= i < n for g in partition.groups for i in g):
                raise UsageError(f"partition {partition}: node index out of 0..{n - 1}")

        self.clock = VirtualClock()
        self._started = False
        self.honest = [i for i in range(n) if i not in self.byzantine]
        down_for_good = {c.node for c in scenario.all_crashes if c.restart is None}
        self.intact = self._intact(set(self.honest) - down_for_good)
        settings = CoreSettings(
            slot_interval=scenario.slot_interval,
            rebroadcast_interval=scenario.rebroadcast_interval,
            fetch_timeout=FETCH_TIMEOUT,
        )
        ids = self.topology.node_ids
        self.recorder = Recorder(
            n,
            scenario.slots,
            ValueRules(settings.tx_set_limits, settings.max_close_time_drift),
            honest_ids=frozenset(ids[i] for i in self.honest),
            watched=frozenset(self.intact),
        )
        self.world = World(
            self.clock, network_id(NETWORK_PASSPHRASE), self.recorder, settings, ids, frozenset(self.honest)
        )
        link = LinkSpec(scenario.latency, scenario.loss, scenario.duplicate, scenario.reorder)
        links = {}
        for src, dst, latency in scenario.link_latencies:
            if not (0 <= src < n and 0 <= dst < n):
                raise UsageError(f"link {src}->{dst}: node index out of 0..{n - 1}")
            links[(src, dst)] = replace(link, latency=latency)
        conditions = NetworkConditions(link, links, scenario.partitions, scenario.loss_until, scenario.fetch_fault)
        self.nodes: list[SimNode] = self.world.nodes
        self.world.network = Network(
            self.clock,
            derive_rng(scenario.seed, "network"),
            conditions,
            lambda dst, src, p: self.nodes[dst].receive(src, p),
        )
        byz_rng = derive_rng(scenario.seed, "byzantine/behaviour")
        for i, (kp, qset) in enumerate(zip(self.topology.keys, self.topology.qsets, strict=True)):
            kind = self.byzantine.get(i)
            if kind is None:
                self.nodes.append(SimNode(self.world, i, kp, qset))
            else:
                self.nodes.append(make_byzantine(kind, self.world, i, kp, qset, byz_rng))

    def _place_byzantine(self) -> dict[int, str]:
        wanted = [kind for kind, count in self.scenario.byzantine for _ in range(count)]
        candidates = list(self.topology.byzantine_candidates)
        if len(wanted) > len(candidates):
            raise UsageError(
                f"{len(wanted)} Byzantine nodes asked for, but the {self.topology.name} topology of "
                f"{self.topology.size} nodes has only {len(candidates)} places for them"
            )
        derive_rng(self.scenario.seed, "byzantine/placement").shuffle(candidates)
        return dict(zip(sorted(candidates[: len(wanted)]), wanted, strict=True))

    def _intact(self, well_behaved: set[int]) -> list[int]:
        """The greatest quorum the well-behaved nodes hold (empty if none).

        That quorum is the same whichever member's quorum set asks for it, so
        the first node that finds a non-empty one has found it.
        """
        ids = self.topology.node_ids
        index_of = {node: i for i, node in enumerate(ids)}
        qsets = dict(zip(ids, self.topology.qsets, strict=True))
        present = [ids[i] for i in sorted(well_behaved)]
        for node in present:
            found = quorum.find_quorum(qsets[node], present, qsets.get)
            if found:
                return sorted(index_of[n] for n in found)
        return []

    def start(self) -> None:
        """Boot every node and schedule the crashes; ``run`` does this if needed."""
        if self._started:
            return
        self._started = True
        for node in self.nodes:
            node.start()
        for crash in self.scenario.crashes:
            node = self.nodes[crash.node]
            self.clock.call_at(crash.at, node.crash)
            if crash.restart is not None:
                self.clock.call_at(crash.restart, node.start)
        for fault in self.scenario.faults:
            if isinstance(fault, PersistCrash):
                self.clock.call_at(fault.crash.at, self._arm_persist_crash(self.nodes[fault.node], fault))
            elif isinstance(fault, DiskFault):
                self.clock.call_at(fault.start, _set_failing(self.nodes[fault.node], True))
                self.clock.call_at(fault.end, _set_failing(self.nodes[fault.node], False))

    @staticmethod
    def _arm_persist_crash(node: SimNode, fault: PersistCrash) -> Callable[[], None]:
        def arm() -> None:
            node.crash_on_persist = True
            node.restart_after_persist_crash = fault.crash.restart

        return arm

    def run(self, progress: Callable[[int, int], None] | None = None) -> SimResult:
        """Run until every intact node has decided every slot, or the time limit.

        ``progress(decided, goal)`` hears of each new decision (a slot
        externalized by an intact node) out of the ``goal`` awaited.
        """
        self.start()
        goal = len(self.intact) * self.scenario.slots
        recorder = self.recorder
        reported = -1

        def done() -> bool:
            nonlocal reported
            decided = recorder.watched_decided
            if progress is not None and decided != reported:
                reported = decided
                progress(decided, goal)
            return decided >= goal

        self.clock.run(self.scenario.time_limit, stop=done)
        return self.result()

    def result(self) -> SimResult:
        scenario = self.scenario
        recorder = self.recorder
        assert self.world.network is not None
        return SimResult(
            scenario,
            self.topology,
            recorder,
            self.honest,
            self.intact,
            self.byzantine,
            self.world.network.counters.as_dict(),
            self.clock.now,
            self.clock.events_run,
        )


def _set_failing(node: SimNode, failing: bool) -> Callable[[], None]:
    def apply() -> None:
        node.store.failing = failing

    return apply


def run(scenario: Scenario, progress: Callable[[int, int], None] | None = None) -> SimResult:
    return Simulation(scenario).run(progress)
