"""What a node does: the actions the node core asks its shell to carry out.

Everything that changes the world or takes time is an action: sending,
relaying, scoring a peer, fetching, writing to the store, arming a timer.
The shell executes them in the order given and reports what came of the
ones that take time as events (``scpd.nodecore.events``). Two rules the
shell must keep:

* ``PersistOwnEnvelopes`` is our promise not to contradict ourselves (rule 3
  of docs/architecture.md): the core sends those envelopes only after ``OwnEnvelopesPersisted``,
  so a shell that reports it before the data is durable breaks safety.
* ``ArmTimer`` replaces a timer armed earlier under the same key.

``Step`` is what one event yields: the actions, and for a message from a peer
the ``Verdict`` the overlay acts on (relay it, drop it, hold it against the
sender).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from scpd.base.types import NodeID, SCPEnvelope, SCPQuorumSet
from scpd.nodecore.messages import OverlayMessage
from scpd.nodecore.txqueue import AddResult
from scpd.nodecore.values import LedgerEntry, TxSet

__all__ = [
    "Action",
    "AddProofs",
    "ArmTimer",
    "Broadcast",
    "CancelTimer",
    "Checkpoint",
    "Externalized",
    "FetchQuorumSet",
    "FetchTxSet",
    "PersistOwnEnvelopes",
    "PruneOwnEnvelopes",
    "Relay",
    "SaveQuorumSet",
    "Score",
    "Send",
    "SendEncoded",
    "ServeLedgers",
    "Step",
    "TimerKey",
    "TimerKind",
    "Verdict",
    "WriteLedger",
]


class Verdict(Enum):
    """The core's judgement of a message a peer sent, for the overlay."""

    ACCEPT = "accept"  # new and valid: relay it (flooded kinds)
    IGNORE = "ignore"  # not worth relaying, but not the sender's fault
    REJECT = "reject"  # invalid: score the sender


class TimerKind(Enum):
    NOMINATION = "nomination"  # the consensus core's nomination round (per slot)
    BALLOT = "ballot"  # the consensus core's ballot counter (per slot)
    CADENCE = "cadence"  # nominate the next slot
    TICK = "tick"  # rebroadcast a stuck slot, retry catch-up
    TX_FLOOD = "tx_flood"  # flood the transactions gathered since the last batch
    LEDGER_RETRY = "ledger_retry"  # retry a ledger write the disk failed
    OWN_ENVELOPE_RETRY = "own_envelope_retry"  # retry saving own envelopes the disk failed


@dataclass(frozen=True, slots=True)
class TimerKey:
    kind: TimerKind
    slot: int = 0


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` to the connected peer ``peer`` (dropped if it is gone)."""

    peer: NodeID
    message: OverlayMessage


@dataclass(frozen=True, slots=True)
class SendEncoded:
    """Send already encoded messages to ``peer`` in order, stopping at the first its queue refuses."""

    peer: NodeID
    messages: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Relay:
    """Flood a peer's message we accepted late to every peer that lacks it (``origin`` has it)."""

    message: OverlayMessage
    origin: NodeID | None


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Flood a message of our own; ``force`` resends it even to peers that have it."""

    message: OverlayMessage
    force: bool = False


@dataclass(frozen=True, slots=True)
class Score:
    """Hold ``points`` of misbehaviour against ``peer``."""

    peer: NodeID
    reason: str
    points: int


@dataclass(frozen=True, slots=True)
class FetchQuorumSet:
    """Ask ``peer`` for a quorum set; report ``QuorumSetAnswered`` or ``FetchFailed`` after ``timeout``."""

    fetch_id: int
    peer: NodeID
    qset_hash: bytes
    timeout: float


@dataclass(frozen=True, slots=True)
class FetchTxSet:
    """Ask ``peer`` for a tx set (only its payload hashing to ``tx_set_hash`` counts as an answer).

    Without ``ask_if_pending`` a set already asked of another peer is only waited for: a set is
    megabytes under load, and every peer that echoes a vote would otherwise send it again.
    """

    fetch_id: int
    peer: NodeID
    tx_set_hash: bytes
    timeout: float
    ask_if_pending: bool = True


@dataclass(frozen=True, slots=True)
class PersistOwnEnvelopes:
    """Store these own envelopes (each with the tx sets to keep beside it) durably, in one write.

    Report ``OwnEnvelopesPersisted`` or ``OwnEnvelopesNotPersisted`` with ``batch_id``.
    """

    batch_id: int
    items: tuple[tuple[SCPEnvelope, tuple[TxSet, ...]], ...]


@dataclass(frozen=True, slots=True)
class WriteLedger:
    """Append this ledger to the chain; report ``LedgerWritten`` or ``LedgerNotWritten``."""

    entry: LedgerEntry
    tx_set: TxSet
    proofs: tuple[SCPEnvelope, ...]


@dataclass(frozen=True, slots=True)
class AddProofs:
    """Keep these EXTERNALIZE envelopes as further proofs of written ledger ``slot`` (best effort)."""

    slot: int
    envelopes: tuple[SCPEnvelope, ...]


@dataclass(frozen=True, slots=True)
class SaveQuorumSet:
    """Keep a quorum set learned from the network, so a restart need not ask again (best effort)."""

    quorum_set: SCPQuorumSet


@dataclass(frozen=True, slots=True)
class PruneOwnEnvelopes:
    """Forget own envelopes of slots below ``below_slot`` (best effort)."""

    below_slot: int


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A ledger was written: let the store fold its log into the database, off the write path."""


@dataclass(frozen=True, slots=True)
class ServeLedgers:
    """Read up to ``count`` ledgers from ``from_slot`` and send them to ``peer`` (``Catchup.build_answer``)."""

    peer: NodeID
    from_slot: int
    count: int


@dataclass(frozen=True, slots=True)
class Externalized:
    """Ledger ``slot`` was written (just reported by ``LedgerWritten``): tell the application."""

    slot: int
    tx_count: int
    seconds_to_consensus: float | None


@dataclass(frozen=True, slots=True)
class ArmTimer:
    key: TimerKey
    delay: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    key: TimerKey


Action = (
    Send
    | SendEncoded
    | Relay
    | Broadcast
    | Score
    | FetchQuorumSet
    | FetchTxSet
    | PersistOwnEnvelopes
    | WriteLedger
    | AddProofs
    | SaveQuorumSet
    | PruneOwnEnvelopes
    | Checkpoint
    | ServeLedgers
    | Externalized
    | ArmTimer
    | CancelTimer
)


@dataclass(slots=True)
class Step:
    """What one event yields: the actions in order, a message's verdict, a submission's results."""

    actions: list[Action] = field(default_factory=list)
    verdict: Verdict = Verdict.IGNORE
    results: list[AddResult] = field(default_factory=list)
