"""The overlay's counters (``OverlayStats``); its settings are ``scpd.node.overlay.settings``."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LIMIT_COUNTERS", "OverlayStats"]


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
