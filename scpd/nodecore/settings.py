"""The node core's settings, each under the name of its TOML key where the operator can set it.

Fields named like a key of ``[timers]``, ``[ledger]`` or ``[intake]`` (and
``max_message_size`` of ``[overlay]``) mean exactly that key, so the daemon
hands a config section over as it is. The others are fixed by the protocol
or by the implementation (tests shorten some of them). The limits the pure
modules take (``TxSetLimits``, ``QueueLimits``, ``PendingLimits``,
``CatchupSettings``) are derived here, once.
"""

from __future__ import annotations

from dataclasses import dataclass

from scpd.nodecore.catchup import CatchupSettings
from scpd.nodecore.messages import DEFAULT_MAX_MESSAGE_SIZE
from scpd.nodecore.pending import PendingLimits
from scpd.nodecore.sigcache import DEFAULT_SIGNATURE_CACHE
from scpd.nodecore.trust import DEFAULT_MAX_TRUSTED
from scpd.nodecore.txqueue import QueueLimits
from scpd.nodecore.values import TxSetLimits

__all__ = ["CoreSettings"]


@dataclass(frozen=True, slots=True)
class CoreSettings:
    # [timers]
    slot_interval: float = 5.0
    nomination_timeout_initial: float = 1.0
    nomination_timeout_increment: float = 1.0
    ballot_timeout_initial: float = 1.0
    ballot_timeout_increment: float = 1.0
    max_timeout: float = 30 * 60.0
    # [ledger]
    max_tx_count: int = 1000
    max_tx_set_size: int = 1 << 20
    max_tx_size: int = 64 << 10
    max_close_time_drift: float = 60.0
    max_queue_txs: int = 100_000
    max_queue_bytes: int = 64 << 20
    peer_queue_share: float = 0.5
    client_queue_reserve: float = 0.25
    # [intake]: envelopes for slots further ahead than this are ignored unread.
    max_slots_ahead: int = 12
    # Current-slot envelopes waiting for a fetch (counted from the moment they start waiting).
    max_waiting_envelopes: int = 1000
    # Future-slot envelopes waiting for their slot (scpd.nodecore.pending).
    pending_per_node: int = 64
    pending_per_node_bytes: int = 1 << 20
    pending_total: int = 4096
    pending_total_bytes: int = 16 << 20
    # Envelope signature verdicts remembered (scpd.nodecore.sigcache).
    signature_cache: int = DEFAULT_SIGNATURE_CACHE
    # Nodes the transitive closure of our quorum set may hold, nearest first (scpd.nodecore.trust).
    max_trusted_nodes: int = DEFAULT_MAX_TRUSTED
    # [overlay]: the largest message, which bounds catch-up answers and transaction batches.
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    # Not configurable: envelopes for slots further behind than this are ignored unread.
    max_slots_behind: int = 2
    fetch_timeout: float = 5.0
    # A stuck slot re-floods our latest statements and asks peers for theirs.
    rebroadcast_interval: float = 2.0
    keep_slots: int = 12
    # New transactions are flooded in batches (TRANSACTIONS messages) gathered for this long.
    tx_flood_delay: float = 0.02

    @property
    def tx_set_limits(self) -> TxSetLimits:
        return TxSetLimits(self.max_tx_count, self.max_tx_set_size)

    @property
    def queue_limits(self) -> QueueLimits:
        return QueueLimits(
            max_tx_bytes=self.max_tx_size,
            max_txs=self.max_queue_txs,
            max_bytes=self.max_queue_bytes,
            peer_share=self.peer_queue_share,
            client_reserve=self.client_queue_reserve,
        )

    @property
    def pending_limits(self) -> PendingLimits:
        return PendingLimits(
            per_node=self.pending_per_node,
            per_node_bytes=self.pending_per_node_bytes,
            total=self.pending_total,
            total_bytes=self.pending_total_bytes,
        )

    @property
    def catchup(self) -> CatchupSettings:
        return CatchupSettings(max_message_size=self.max_message_size)
