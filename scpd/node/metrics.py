"""Prometheus metrics of one node: their definitions, and the updates of the ones counted here.

Theory of operation
-------------------
A ``Metrics`` object owns its own ``CollectorRegistry``: there is no global
registry, so several nodes in one test process never clash, and /metrics
serves exactly one node. The daemon creates one and passes it to the herder
(and the store's ``write_observer``); components built without one (tests,
tools) get a private, unexported instance, so the instrumented code never
branches on "are metrics on".

Two kinds of metric live here:

* events counted where they happen (the herder calls ``inc``/``observe`` on
  the attributes below: envelopes, signatures, timers, slots, transactions,
  ledger writes);
* state read at scrape time by a collector (``watch``): peers by direction,
  bytes and messages in and out (the overlay's own counters), the tx queue
  size, and quorum health. Reading at scrape time keeps the hot paths free of
  metric bookkeeping and cannot drift from the truth.

Names follow Prometheus conventions: ``scpd_`` prefix, ``_total`` counters,
``_seconds``/``_bytes`` units, label values from small fixed sets (declared up
front so every series exists, at 0, from the first scrape).

The quorum health (``scpd_quorum_members``) is classified with the admin
API (``scpd.operator.status``), which hands the counts in (``watch``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from scpd.node.overlay.stats import LIMIT_COUNTERS
from scpd.scp.ballot import INFINITE
from scpd.scp.slot import SlotEffort

if TYPE_CHECKING:
    from scpd.node.herder import Herder
    from scpd.node.overlay.overlay import Overlay

__all__ = [
    "ENVELOPE_REJECT_REASONS",
    "LEDGER_WRITE_KINDS",
    "Metrics",
]

# Why an envelope from a peer went no further than the herder.
ENVELOPE_REJECT_REASONS = (
    "slot_out_of_range",  # too far from our slot: ignored unread
    "own_envelope",  # our own statement echoed back
    "bad_signature",
    "invalid",  # the consensus core refused it
    "fetch_failed",  # its quorum set or tx set never arrived
    "too_many_waiting",  # the bounded wait list for fetches was full
    "untrusted",  # its signer is outside the transitive closure of our quorum set
    "pending_node_full",  # a future slot's envelope: its signer's share of the pending queue is used up
    "pending_full",  # a future slot's envelope: the pending queue is full of nearer slots
)
TIMERS = ("nomination", "ballot")
# Every kind LedgerStore writes (ledger_db.LedgerDatabase.write), so each series exists from the start.
LEDGER_WRITE_KINDS = ("ledger", "own_envelope", "proofs", "pending_txs", "prune", "quorum_set")
# Writes the herder retries when they fail (StorageHealth), for scpd_storage_write_failures.
STORAGE_RETRIED_KINDS = ("ledger", "own_envelope")
TX_SOURCES = ("peer", "api")
TX_REFUSALS = ("empty", "too-large", "queue-full")

_SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0, 120.0)
_COUNT_BUCKETS = (1, 2, 3, 4, 5, 7, 10, 15, 20, 30, 50)
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_WRITE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Every metric of one node, in a registry of its own."""

    def __init__(self, *, process: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        if process:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)
        # -- consensus
        self.latest_slot = Gauge(
            "scpd_ledger_latest_slot", "Slot of the last ledger written (externalized)", registry=r
        )
        self.slots_externalized = Counter(
            "scpd_slots_externalized", "Slots externalized and written to the ledger", registry=r
        )
        self.externalize_seconds = Histogram(
            "scpd_slot_nomination_to_externalize_seconds",
            "Time from starting to nominate a slot to writing its ledger",
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.nomination_rounds = Histogram(
            "scpd_slot_nomination_rounds", "Nomination rounds a slot needed", buckets=_COUNT_BUCKETS, registry=r
        )
        self.ballot_counter = Histogram(
            "scpd_slot_ballot_counter",
            "Ballot counter at which a slot externalized",
            buckets=_COUNT_BUCKETS,
            registry=r,
        )
        self.timer_expiries = Counter(
            "scpd_timer_expiries", "Consensus timers that fired, by timer", ["timer"], registry=r
        )
        # -- envelopes and signatures
        self.envelopes_received = Counter(
            "scpd_envelopes_received", "SCP envelopes received from peers (after de-duplication)", registry=r
        )
        self.envelopes_emitted = Counter(
            "scpd_envelopes_emitted", "SCP envelopes this node signed and sent", registry=r
        )
        self.envelopes_relayed = Counter(
            "scpd_envelopes_relayed", "Peers' SCP envelopes accepted by the core and flooded onward", registry=r
        )
        self.envelopes_rejected = Counter(
            "scpd_envelopes_rejected", "Peers' SCP envelopes not processed, by reason", ["reason"], registry=r
        )
        self.signature_verifications = Counter(
            "scpd_signature_verifications", "Envelope signatures verified", registry=r
        )
        self.signature_failures = Counter(
            "scpd_signature_verification_failures", "Envelope signatures that did not verify", registry=r
        )
        # -- transactions
        self.tx_received = Counter(
            "scpd_transactions_received", "Transactions received, by source", ["source"], registry=r
        )
        self.tx_queued = Counter("scpd_transactions_queued", "Transactions newly added to the queue", registry=r)
        self.tx_known = Counter(
            "scpd_transactions_already_known", "Transactions received again (queued or in a ledger)", registry=r
        )
        self.tx_refused = Counter(
            "scpd_transactions_refused", "Transactions refused, by reason", ["reason"], registry=r
        )
        self.tx_included = Counter("scpd_transactions_included", "Transactions written in ledgers", registry=r)
        # -- storage
        self.ledger_write_seconds = Histogram(
            "scpd_ledger_write_seconds",
            "Latency of durable writes to the ledger store, by kind",
            ["kind"],
            buckets=_WRITE_BUCKETS,
            registry=r,
        )
        # -- storage trouble: failed ledger / own-envelope writes are retried (scpd.nodecore.storage.StorageHealth)
        self.storage_write_failures = Counter(
            "scpd_storage_write_failures",
            "Ledger and own-envelope writes that failed (disk full, I/O error) and are retried, by kind",
            ["kind"],
            registry=r,
        )
        self.storage_failing = Gauge(
            "scpd_storage_failing", "1 while the node's last ledger or own-envelope write failed, else 0", registry=r
        )
        for kind in STORAGE_RETRIED_KINDS:
            self.storage_write_failures.labels(kind)
        # -- the event loop (scpd.operator.watchdog)
        self.event_loop_lag = Histogram(
            "scpd_event_loop_lag_seconds",
            "How late the event loop ran the watchdog's periodic beat",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.event_loop_blocked = Counter(
            "scpd_event_loop_blocked", "Episodes of the event loop not running for two seconds or more", registry=r
        )
        # -- operator surface (set by scpd.operator.watch and the GET /events stream)
        self.quorum_intersection = Gauge(
            "scpd_quorum_intersection",
            "1 when every two quorums of the transitive quorum this node sees intersect, 0 when two are disjoint",
            registry=r,
        )
        self.quorum_critical_nodes = Gauge(
            "scpd_quorum_critical_nodes",
            "Validators of the transitive quorum whose failure alone leaves this node without a quorum",
            registry=r,
        )
        # Unknown (NaN, so no alert fires) until every validator named has declared its quorum set.
        self.quorum_intersection.set(float("nan"))
        self.quorum_critical_nodes.set(float("nan"))
        self.events_clients = Gauge("scpd_events_clients", "Readers of the GET /events stream", registry=r)
        self.events_dropped = Counter(
            "scpd_events_dropped", "Events dropped because a GET /events reader was too slow", registry=r
        )
        # -- intake: trust, future slots, signature verdicts, equivocation (docs/security.md)
        self.signature_cache_hits = Counter(
            "scpd_signature_cache_hits",
            "Envelope signatures not verified again: the verdict on that envelope was remembered",
            registry=r,
        )
        self.envelopes_pending = Gauge(
            "scpd_envelopes_pending", "Future-slot envelopes waiting for their slot to become current", registry=r
        )
        self.envelopes_pending_bytes = Gauge(
            "scpd_envelopes_pending_bytes", "Bytes of the future-slot envelopes waiting for their slot", registry=r
        )
        self.trusted_nodes = Gauge(
            "scpd_trusted_nodes",
            "Nodes in the transitive closure of our quorum set (whose statements we process)",
            registry=r,
        )
        self.network_slot = Gauge(
            "scpd_network_slot",
            "The slot the network has reached as far as we trust it (claimed by a v-blocking set of our quorum"
            " set, or proven by catch-up); 0 when unknown",
            registry=r,
        )
        self.equivocations = Counter(
            "scpd_equivocations",
            "Slots for which a node signed two statements that cannot both be honest, by node",
            ["node"],
            registry=r,
        )
        for timer in TIMERS:
            self.timer_expiries.labels(timer)
        for reason in ENVELOPE_REJECT_REASONS:
            self.envelopes_rejected.labels(reason)
        for source in TX_SOURCES:
            self.tx_received.labels(source)
        for refusal in TX_REFUSALS:
            self.tx_refused.labels(refusal)
        for kind in LEDGER_WRITE_KINDS:
            self.ledger_write_seconds.labels(kind)

    def observe_write(self, kind: str, seconds: float) -> None:
        """The ledger store's ``write_observer``."""
        self.ledger_write_seconds.labels(kind).observe(seconds)

    def storage_failed(self, kind: str) -> None:
        self.storage_write_failures.labels(kind).inc()
        self.storage_failing.set(1)

    def storage_recovered(self) -> None:
        self.storage_failing.set(0)

    def slot_externalized(self, slot: int, seconds: float | None, effort: SlotEffort | None) -> None:
        """Record one written ledger; ``effort`` is the core's account of the slot (rounds, counter)."""
        self.latest_slot.set(slot)
        self.slots_externalized.inc()
        if seconds is not None:
            self.externalize_seconds.observe(seconds)
        if effort is None:
            return
        if effort.nomination_rounds > 0:
            self.nomination_rounds.observe(effort.nomination_rounds)
        # The counter of the committed ballot; b itself may be the "infinite"
        # counter of a slot decided through other nodes' EXTERNALIZE statements.
        counter = effort.commit_counter
        if counter is not None and 0 < counter < INFINITE:
            self.ballot_counter.observe(counter)

    def watch(self, herder: Herder, overlay: Overlay, quorum_states: Callable[[], Mapping[str, int]]) -> None:
        """Report the state of ``herder`` and ``overlay`` at every scrape.

        ``quorum_states`` counts the members of the local quorum set by state
        (every state, 0 when none): the classification is the admin API's.
        """
        self.registry.register(_StateCollector(herder, overlay, quorum_states))


class _StateCollector(Collector):
    """Gauges and counters read from the running node when Prometheus scrapes."""

    def __init__(self, herder: Herder, overlay: Overlay, quorum_states: Callable[[], Mapping[str, int]]) -> None:
        self._herder = herder
        self._overlay = overlay
        self._quorum_states = quorum_states

    def describe(self) -> Iterable[Metric]:
        return []  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterable[Metric]:
        overlay, herder = self._overlay, self._herder
        peers = overlay.peers
        g = GaugeMetricFamily(
            "scpd_peers_connected", "Authenticated peer connections, by direction", labels=["direction"]
        )
        g.add_metric(["inbound"], sum(1 for p in peers if not p.outbound))
        g.add_metric(["outbound"], sum(1 for p in peers if p.outbound))
        yield g
        traffic = overlay.traffic()
        for name, doc, key in (
            ("scpd_overlay_messages_received", "Authenticated overlay messages received", "messages_in"),
            ("scpd_overlay_messages_sent", "Overlay messages sent", "messages_out"),
            ("scpd_overlay_received_bytes", "Overlay bytes received (frames)", "bytes_in"),
            ("scpd_overlay_sent_bytes", "Overlay bytes sent (frames)", "bytes_out"),
        ):
            c = CounterMetricFamily(name, doc)
            c.add_metric([], traffic[key])
            yield c
        stats = overlay.stats
        for name, doc, value in (
            ("scpd_overlay_flood_duplicates", "Flooded messages received again and dropped", stats.flood_duplicates),
            ("scpd_overlay_handshakes_failed", "Peer handshakes that failed", stats.handshakes_failed),
            ("scpd_overlay_misbehaviour_reports", "Misbehaviour reports against peers", stats.misbehaviour_reports),
            (
                "scpd_overlay_misbehaviour_disconnects",
                "Connected peers dropped for misbehaviour",
                stats.misbehaviour_disconnects,
            ),
            ("scpd_overlay_bans", "Peers banned for misbehaviour", stats.bans),
            ("scpd_overlay_answer_bytes", "Bytes of answers to peers' requests", stats.answer_bytes),
        ):
            c = CounterMetricFamily(name, doc)
            c.add_metric([], value)
            yield c
        limited = CounterMetricFamily(
            "scpd_overlay_limited", "Connections, requests and answers refused by a resource limit", labels=["limit"]
        )
        for limit in LIMIT_COUNTERS:
            limited.add_metric([limit], getattr(stats, limit))
        yield limited
        q = GaugeMetricFamily("scpd_tx_queue_transactions", "Transactions waiting in the queue")
        q.add_metric([], len(herder.txqueue))
        yield q
        q = GaugeMetricFamily("scpd_tx_queue_bytes", "Bytes of the transactions waiting in the queue")
        q.add_metric([], herder.txqueue.total_bytes)
        yield q
        h = GaugeMetricFamily(
            "scpd_quorum_members", "Validators of the local quorum set, by what we hear from them", labels=["state"]
        )
        for state, count in self._quorum_states().items():
            h.add_metric([state], count)
        yield h
