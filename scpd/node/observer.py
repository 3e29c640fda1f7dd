"""The daemon's ``Observer`` of the node core: each fact becomes a Prometheus count and, where an
operator should hear of it, one structured log line.

The log lines keep the herder's logger name and event names (docs/logging.md, docs/ledger.md):
moving the rules into the node core changed nothing an operator sees.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from scpd.base.types import NodeID
from scpd.node.metrics import Metrics
from scpd.nodecore.equivocation import Equivocation
from scpd.nodecore.observer import Observer
from scpd.nodecore.txqueue import Refusal

__all__ = ["MetricsObserver"]

log = structlog.get_logger("scpd.node.herder")


class MetricsObserver(Observer):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def envelope_received(self) -> None:
        self.metrics.envelopes_received.inc()

    def envelope_rejected(self, reason: str) -> None:
        self.metrics.envelopes_rejected.labels(reason).inc()

    def bad_signature(self, peer: NodeID, node: NodeID, slot: int) -> None:
        log.warning("bad envelope signature", peer=str(peer), node=str(node), slot=slot)

    def signature_verified(self, ok: bool) -> None:
        self.metrics.signature_verifications.inc()
        if not ok:
            self.metrics.signature_failures.inc()

    def signature_remembered(self) -> None:
        self.metrics.signature_cache_hits.inc()

    def envelope_accepted(self) -> None:
        self.metrics.envelopes_relayed.inc()

    def envelope_emitted(self) -> None:
        self.metrics.envelopes_emitted.inc()

    def equivocation_found(self, found: Equivocation) -> None:
        self.metrics.equivocations.labels(str(found.node)).inc()
        log.warning(
            "equivocation",
            node=str(found.node),
            slot=found.slot,
            first=found.first.statement.type.name,
            second=found.second.statement.type.name,
        )

    def pending_changed(self, count: int, size: int) -> None:
        self.metrics.envelopes_pending.set(count)
        self.metrics.envelopes_pending_bytes.set(size)

    def trusted_nodes_changed(self, count: int) -> None:
        self.metrics.trusted_nodes.set(count)

    def timer_expired(self, timer: str) -> None:
        self.metrics.timer_expiries.labels(timer).inc()

    def value_refused(self, slot: int, reason: str) -> None:
        log.debug("value refused", slot=slot, reason=reason)

    def storage_failed(self, kind: str, error: str, retry_in: float) -> None:
        self.metrics.storage_failed(kind)
        log.error("storage write failed; will retry", kind=kind, error=error, retry_in=round(retry_in, 3))

    def storage_recovered(self, kind: str, failing_for: float, all_ok: bool) -> None:
        if all_ok:
            self.metrics.storage_recovered()
        log.warning("storage writes resumed", kind=kind, failing_for=round(failing_for, 3))

    def own_envelopes_refused(self, error: str) -> None:
        log.error("own envelopes not saved; not sending them", error=error)

    def ledger_write_refused(self, slot: int, error: str) -> None:
        log.error("ledger write refused", slot=slot, error=error)

    def ledger_closed(
        self, slot: int, seconds: float | None, tx_count: int, snapshot: Mapping[str, object] | None
    ) -> None:
        self.metrics.slot_externalized(slot, seconds, snapshot)
        self.metrics.tx_included.inc(tx_count)

    def transactions_received(self, source: str, received: int, queued: int, refused: Mapping[Refusal, int]) -> None:
        m = self.metrics
        m.tx_received.labels(source).inc(received)
        refusals = sum(refused.values())
        if queued:
            m.tx_queued.inc(queued)
        if received - queued - refusals:
            m.tx_known.inc(received - queued - refusals)
        for refusal, n in refused.items():
            m.tx_refused.labels(refusal.value).inc(n)

    def catching_up(self, peer: NodeID, from_slot: int, count: int) -> None:
        log.info("catching up", from_slot=from_slot, count=count, peer=str(peer))

    def catchup_entry_refused(self, peer: NodeID, slot: int, reason: str) -> None:
        log.warning("catch-up entry refused", peer=str(peer), slot=slot, reason=reason)
