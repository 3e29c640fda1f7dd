"""The overlay's settings: one object, read by the overlay manager and by every peer.

The knobs an operator sets in ``[overlay]`` carry the same names here as in
the file (``docs/configuration.md``) and have no default here: their defaults,
bounds and the rules between them are declared once, in the configuration
(``scpd.operator.config_sections.OverlaySection``), which also raises the
byte budgets to hold two of the largest messages. The daemon passes the
section's values through unchanged (``scpd.operator.daemon.overlay_settings``).
The knobs below them are not operator-visible; their defaults live here only.
"""

from __future__ import annotations

from dataclasses import dataclass

from scpd.base.types import NodeID
from scpd.node.overlay.backoff import Backoff
from scpd.node.overlay.floodgate import DEFAULT_FLOOD_MEMORY
from scpd.nodecore.messages import PeerAddress

__all__ = ["OverlaySettings"]


@dataclass(frozen=True, slots=True)
class OverlaySettings:
    """Durations in seconds, sizes in bytes."""

    network_passphrase: str
    # -- [overlay], under the names of the file. --
    listen_address: str
    listen_port: int | None  # None: do not accept inbound connections
    peers: tuple[PeerAddress, ...]  # preferred: always kept connected
    max_inbound_peers: int
    target_outbound_peers: int
    max_message_size: int  # the largest frame (sealed message) read or written
    handshake_timeout: float
    keepalive_interval: float
    peer_timeout: float  # a peer silent for longer is dropped
    reconnect_initial: float
    reconnect_max: float
    send_queue_size: int
    ban_duration: float
    max_pending_handshakes: int
    send_queue_bytes: int
    # Answers to requests: preferred peers earn with time, strangers earn
    # ``answer_ratio`` bytes per byte they send; everybody draws from the total.
    answer_rate: float
    answer_burst: int
    answer_ratio: float
    answer_total_rate: float
    answer_total_burst: int
    new_key_interval: float
    # -- Derived from the rest of the file. --
    preferred_nodes: frozenset[NodeID] = frozenset()  # validators of our quorum set: always find a slot
    # -- Internal. --
    reconnect_jitter: float = 0.5
    write_timeout: float = 10.0
    write_buffer_high: int = 256 * 1024
    connect_timeout: float = 5.0
    ban_threshold: int = 100
    flood_memory: int = DEFAULT_FLOOD_MEMORY
    max_known_addresses: int = 1000
    max_pending_requests: int = 1024
    max_requests_per_peer: int = 64
    maintenance_interval: float = 1.0
    share_peers: bool = True

    @property
    def backoff(self) -> Backoff:
        """How long to wait before redialing an address that failed."""
        return Backoff(initial=self.reconnect_initial, maximum=self.reconnect_max, jitter=self.reconnect_jitter)
