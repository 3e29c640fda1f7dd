"""The overlay's settings (``OverlayConfig``) and its counters (``OverlayStats``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from scpd.base.types import NodeID
from scpd.node.overlay.backoff import Backoff
from scpd.node.overlay.floodgate import DEFAULT_FLOOD_MEMORY
from scpd.node.overlay.framing import DEFAULT_MAX_FRAME
from scpd.node.overlay.peer import PeerSettings
from scpd.nodecore.messages import PeerAddress

__all__ = ["LIMIT_COUNTERS", "OverlayConfig", "OverlayStats"]


@dataclass(frozen=True, slots=True)
class OverlayConfig:
    network_passphrase: str
    listen_host: str = "127.0.0.1"
    listen_port: int | None = 0  # None: do not accept inbound connections
    peers: tuple[PeerAddress, ...] = ()  # preferred: always kept connected
    preferred_nodes: frozenset[NodeID] = frozenset()  # validators of our quorum set: always find a slot
    target_connections: int = 8
    max_inbound: int = 64
    max_pending_handshakes: int = 32
    max_frame: int = DEFAULT_MAX_FRAME
    send_queue_size: int = 1024
    send_queue_bytes: int = 16 * 1024 * 1024
    # Answers to requests, in bytes: preferred peers earn with time, strangers
    # earn ``answer_ratio`` bytes per byte they send; everybody draws from the total.
    answer_rate: float = 8 * 1024 * 1024
    answer_burst: int = 16 * 1024 * 1024
    answer_ratio: float = 1.0
    answer_total_rate: float = 32 * 1024 * 1024
    answer_total_burst: int = 64 * 1024 * 1024
    new_key_interval: float = 60.0
    ping_interval: float = 5.0
    idle_timeout: float = 30.0
    write_timeout: float = 10.0
    handshake_timeout: float = 5.0
    connect_timeout: float = 5.0
    ban_threshold: int = 100
    ban_seconds: float = 600.0
    flood_memory: int = DEFAULT_FLOOD_MEMORY
    max_known_addresses: int = 1000
    max_pending_requests: int = 1024
    max_requests_per_peer: int = 64
    maintenance_interval: float = 1.0
    share_peers: bool = True
    backoff: Backoff = field(default_factory=Backoff)

    def peer_settings(self) -> PeerSettings:
        return PeerSettings(
            max_frame=self.max_frame,
            send_queue_size=self.send_queue_size,
            send_queue_bytes=self.send_queue_bytes,
            ping_interval=self.ping_interval,
            idle_timeout=self.idle_timeout,
            write_timeout=self.write_timeout,
        )


@dataclass(slots=True)
class OverlayStats:
    """Counters for metrics (and for tests that wait for flooding to settle)."""

    flood_sent: int = 0
    flood_received: int = 0
    flood_duplicates: int = 0
    handshakes_ok: int = 0
    handshakes_failed: int = 0
    peers_dropped: int = 0
    bans: int = 0
    misbehaviour_reports: int = 0
    misbehaviour_disconnects: int = 0  # connected peers dropped by a ban
    handshakes_evicted: int = 0  # pending handshakes dropped for a newer connection
    inbound_refused: int = 0  # authenticated strangers refused: the inbound pool was full
    peers_evicted: int = 0  # strangers dropped to make room for a preferred peer
    new_keys_refused: int = 0  # fresh keys refused from a host under a ban
    requests_throttled: int = 0  # requests dropped: the asker's (or the total) answer budget was spent
    answers_refused: int = 0  # answers not sent: larger than what was left of the budget
    answer_bytes: int = 0
    unrequested_answers: int = 0  # TX_SET / quorum sets nobody asked for, dropped
    # Traffic of connections already closed; ``Overlay.traffic`` adds the live ones.
    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


# The ``OverlayStats`` fields that count what a resource limit refused (metric labels).
LIMIT_COUNTERS = (
    "handshakes_evicted",
    "inbound_refused",
    "peers_evicted",
    "new_keys_refused",
    "requests_throttled",
    "answers_refused",
    "unrequested_answers",
)
