"""What the node core reports: facts for metrics and log lines, and what it reads.

The core changes nothing outside itself except through actions; what it
*notices* (an envelope refused and why, a signature checked, an equivocation,
storage failing and recovering, a slot externalized) it tells an
``Observer``. The daemon's observer counts in Prometheus and logs with
structlog (``scpd.node.observer``); the simulator's records. The base class
ignores everything, so an observer overrides only the facts it wants.

``LedgerView`` is the little the core reads from the ledger store, read-only
and quick (an index lookup): the daemon passes its ``LedgerStore``, the
simulator a dictionary-backed one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from scpd.base.types import NodeID, SCPEnvelope, SCPQuorumSet
from scpd.nodecore.equivocation import Equivocation
from scpd.nodecore.txqueue import Refusal
from scpd.nodecore.values import ChainTip, ConsensusValue, TxSet

__all__ = ["LedgerView", "Observer"]


class _Record(Protocol):
    @property
    def value(self) -> ConsensusValue: ...


class LedgerView(Protocol):
    def tip(self) -> ChainTip: ...

    def latest(self) -> _Record | None: ...

    def get_tx_set(self, tx_set_hash: bytes) -> TxSet | None: ...

    def is_included(self, tx_id: bytes) -> bool: ...

    def included_among(self, tx_ids: Iterable[bytes]) -> set[bytes]: ...

    def load_own_envelopes(self, from_slot: int = 0) -> list[SCPEnvelope]: ...

    def load_pending_txs(self) -> list[bytes]: ...

    def load_quorum_sets(self) -> dict[bytes, SCPQuorumSet]: ...


class Observer:
    """Facts the node core reports; every method does nothing unless overridden."""

    def envelope_received(self) -> None:
        """A peer's SCP envelope reached the intake (after the overlay's de-duplication)."""

    def envelope_rejected(self, reason: str) -> None:
        """A peer's envelope went no further; ``reason`` is one of metrics.ENVELOPE_REJECT_REASONS."""

    def bad_signature(self, peer: NodeID, node: NodeID, slot: int) -> None:
        """``peer`` sent an envelope whose signature by ``node`` does not verify."""

    def signature_verified(self, ok: bool) -> None:
        """An envelope signature was verified (not remembered)."""

    def signature_remembered(self) -> None:
        """An envelope's signature verdict came from the cache."""

    def envelope_accepted(self) -> None:
        """The consensus core took a peer's envelope as valid (it is relayed)."""

    def envelope_emitted(self) -> None:
        """The consensus core emitted one of our envelopes (sent once it is stored)."""

    def equivocation_found(self, found: Equivocation) -> None:
        """A node signed two statements for one slot that cannot both be honest."""

    def pending_changed(self, count: int, size: int) -> None:
        """The future-slot envelopes waiting now: how many, how many bytes."""

    def trusted_nodes_changed(self, count: int) -> None:
        """The transitive closure of our quorum set now holds ``count`` nodes."""

    def timer_expired(self, timer: str) -> None:
        """A consensus timer (``nomination`` or ``ballot``) fired."""

    def value_refused(self, slot: int, reason: str) -> None:
        """A value was judged invalid for ``slot``."""

    def storage_failed(self, kind: str, error: str, retry_in: float) -> None:
        """A write of ``kind`` (``ledger``, ``own_envelope``) failed for want of disk; retried later."""

    def storage_recovered(self, kind: str, failing_for: float, all_ok: bool) -> None:
        """A write of ``kind`` went through again; ``all_ok``: no kind is failing any more."""

    def own_envelopes_refused(self, error: str) -> None:
        """The store refused our own envelopes: they are never sent."""

    def ledger_write_refused(self, slot: int, error: str) -> None:
        """The store refused ledger ``slot`` (not a disk failure): the next source is tried."""

    def ledger_closed(
        self, slot: int, seconds: float | None, tx_count: int, snapshot: Mapping[str, object] | None
    ) -> None:
        """Ledger ``slot`` was written; ``seconds`` from our nomination of it, when we nominated it."""

    def transactions_received(self, source: str, received: int, queued: int, refused: Mapping[Refusal, int]) -> None:
        """A batch of transactions from ``source`` (``api`` or ``peer``): how many, how many new, refusals."""

    def catching_up(self, peer: NodeID, from_slot: int, count: int) -> None:
        """We asked ``peer`` for ledgers."""

    def catchup_entry_refused(self, peer: NodeID, slot: int, reason: str) -> None:
        """A ledger ``peer`` served failed the checks."""
