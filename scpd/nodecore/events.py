"""What happens to a node: the events its shell feeds the node core.

Each event is a small immutable record of one thing the world did: a peer
sent a message, a fetch was answered or gave up, a write reached the disk or
did not, a timer fired, a client submitted transactions, a peer came or
went. Every event carries ``now``, the shell's clock reading when it
happened: the core never reads a clock, so a run replays exactly from its
events (the simulator's seeds rely on it).

Replies to the core's own requests carry the id the core gave the request
(``fetch_id``, ``batch_id``) or the slot it asked to write, so a late reply
to a request the core gave up on is recognised and dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from scpd.base.types import NodeID, SCPQuorumSet
from scpd.nodecore.actions import TimerKey
from scpd.nodecore.messages import OverlayMessage

__all__ = [
    "Event",
    "FetchFailed",
    "LedgerNotWritten",
    "LedgerWritten",
    "MessageReceived",
    "OwnEnvelopesNotPersisted",
    "OwnEnvelopesPersisted",
    "PeerConnected",
    "PeerGone",
    "QuorumSetAnswered",
    "Started",
    "TimerFired",
    "TransactionsSubmitted",
    "TxSetAnswered",
]


@dataclass(frozen=True, slots=True)
class Started:
    """The shell is running: restore our own statements from the store and start the cadence."""

    now: float


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """An authenticated ``peer`` sent ``message`` (SCP envelope, transactions, requests, catch-up answers)."""

    peer: NodeID
    message: OverlayMessage
    now: float


@dataclass(frozen=True, slots=True)
class QuorumSetAnswered:
    """The quorum set asked for by fetch ``fetch_id`` arrived (its hash was checked by the overlay)."""

    fetch_id: int
    quorum_set: SCPQuorumSet
    now: float


@dataclass(frozen=True, slots=True)
class TxSetAnswered:
    """The tx set asked for by fetch ``fetch_id`` arrived, as its encoded payload (the core decodes it)."""

    fetch_id: int
    payload: bytes
    now: float


@dataclass(frozen=True, slots=True)
class FetchFailed:
    """Fetch ``fetch_id`` got no usable answer in time (timeout, DONT_HAVE, peer gone)."""

    fetch_id: int
    now: float


@dataclass(frozen=True, slots=True)
class OwnEnvelopesPersisted:
    """Batch ``batch_id`` of our own envelopes is durably stored: they may be sent now."""

    batch_id: int
    now: float


@dataclass(frozen=True, slots=True)
class OwnEnvelopesNotPersisted:
    """Batch ``batch_id`` was not stored.

    ``retry``: the disk failed (full, I/O error) and the same write may succeed later; otherwise
    the store refused the envelopes and they are never sent.
    """

    batch_id: int
    error: str
    retry: bool
    now: float


@dataclass(frozen=True, slots=True)
class LedgerWritten:
    """Ledger ``slot`` is durably written; ``ledger_hash`` is the store's hash of it."""

    slot: int
    ledger_hash: bytes
    now: float


@dataclass(frozen=True, slots=True)
class LedgerNotWritten:
    """Ledger ``slot`` was not written: a storage failure (``retry``) or a refusal by the chain."""

    slot: int
    error: str
    retry: bool
    now: float


@dataclass(frozen=True, slots=True)
class TimerFired:
    """The timer armed under ``key`` (``ArmTimer``) ran out."""

    key: TimerKey
    now: float


@dataclass(frozen=True, slots=True)
class TransactionsSubmitted:
    """Transactions from our own API (``source`` labels them in the metrics)."""

    txs: tuple[bytes, ...]
    now: float
    source: str = "api"


@dataclass(frozen=True, slots=True)
class PeerConnected:
    """An authenticated connection with ``peer`` is up (a replacement connection is no new peer)."""

    peer: NodeID
    now: float


@dataclass(frozen=True, slots=True)
class PeerGone:
    """The connection with ``peer`` closed."""

    peer: NodeID
    now: float


Event = (
    Started
    | MessageReceived
    | QuorumSetAnswered
    | TxSetAnswered
    | FetchFailed
    | OwnEnvelopesPersisted
    | OwnEnvelopesNotPersisted
    | LedgerWritten
    | LedgerNotWritten
    | TimerFired
    | TransactionsSubmitted
    | PeerConnected
    | PeerGone
)
