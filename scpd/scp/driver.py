"""The Driver: everything the consensus core cannot decide on its own.

Theory of operation
-------------------
The core (``scpd.scp``) is a pure state machine. It never signs, sends, reads
a clock, sets a timer or judges a value itself; it asks the Driver, exactly as
stellar-core's ``SCPDriver``. The application (the daemon's herder, the
simulator, or a test's recording driver) subclasses :class:`Driver` and fills
in the abstract methods; the rest have defaults that implement the protocol's
decisions of docs/consensus.md (leader-selection hashes, node weights, escalating
timeouts) and no-op event hooks.

Calls into the driver happen synchronously from inside ``SCP`` methods. A
driver must not call back into the same ``SCP`` object re-entrantly from
``emit_envelope`` or a hook (queue the work instead); timer callbacks are the
one way the driver calls back, later, from its own event loop or virtual
clock.

Nothing here does I/O or keeps global state, so the defaults are usable as is
by the deterministic simulator.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from enum import IntEnum
from fractions import Fraction

from scpd.base import quorum
from scpd.base.types import NodeID, SCPBallot, SCPEnvelope, SCPQuorumSet, SCPStatement

__all__ = [
    "DEFAULT_TIMEOUT_INCREMENT",
    "DEFAULT_TIMEOUT_INITIAL",
    "HASH_K",
    "HASH_N",
    "HASH_P",
    "MAX_TIMEOUT",
    "UINT64_MAX",
    "Driver",
    "EnvelopeState",
    "TimerCallback",
    "TimerId",
    "ValidationLevel",
]

UINT64_MAX = (1 << 64) - 1

# Domain separators of the leader-selection hash G_i (draft section 3.3,
# identical to stellar-core's hash_N / hash_P / hash_K).
HASH_N = 1
HASH_P = 2
HASH_K = 3

DEFAULT_TIMEOUT_INITIAL = 1.0
DEFAULT_TIMEOUT_INCREMENT = 1.0
MAX_TIMEOUT = 30 * 60.0

TimerCallback = Callable[[], None]


class ValidationLevel(IntEnum):
    """How much the application trusts a value (stellar-core's ValidationLevel).

    MAYBE_VALID is for values the node cannot fully check (for example it is
    behind); the core still votes on them in the ballot protocol but never
    nominates them, and a slot that saw one is not "fully validated".
    """

    INVALID = 0
    MAYBE_VALID = 1
    FULLY_VALID = 2


class TimerId(IntEnum):
    """The two timers a slot may have armed at a time."""

    NOMINATION = 0
    BALLOT = 1


class EnvelopeState(IntEnum):
    """Result of ``SCP.receive_envelope``.

    VALID means the envelope was well formed and sane (it may still have been
    ignored as older than what we hold); INVALID means it broke a rule and the
    sender deserves blame.
    """

    INVALID = 0
    VALID = 1


def _xdr_uint64(n: int) -> bytes:
    return struct.pack(">Q", n)


def _xdr_int32(n: int) -> bytes:
    return struct.pack(">i", n)


def _xdr_uint32(n: int) -> bytes:
    return struct.pack(">I", n)


def _xdr_opaque(value: bytes) -> bytes:
    pad = (4 - len(value) % 4) % 4
    return struct.pack(">I", len(value)) + value + b"\x00" * pad


def _hash_to_uint64(digest: bytes) -> int:
    return int.from_bytes(digest[:8], "big")


class Driver:
    """Base class of every SCP driver; subclass and implement the abstract part.

    Abstract (raise NotImplementedError here): ``sign_envelope``,
    ``emit_envelope``, ``get_quorum_set``, ``combine_candidates``,
    ``setup_timer``, ``stop_timer``. Everything else has a default.
    """

    def __init__(
        self,
        *,
        nomination_timeout_initial: float = DEFAULT_TIMEOUT_INITIAL,
        nomination_timeout_increment: float = DEFAULT_TIMEOUT_INCREMENT,
        ballot_timeout_initial: float = DEFAULT_TIMEOUT_INITIAL,
        ballot_timeout_increment: float = DEFAULT_TIMEOUT_INCREMENT,
        max_timeout: float = MAX_TIMEOUT,
    ) -> None:
        self.nomination_timeout_initial = nomination_timeout_initial
        self.nomination_timeout_increment = nomination_timeout_increment
        self.ballot_timeout_initial = ballot_timeout_initial
        self.ballot_timeout_increment = ballot_timeout_increment
        self.max_timeout = max_timeout

    # -- envelopes ---------------------------------------------------------

    def sign_envelope(self, statement: SCPStatement) -> SCPEnvelope:
        """Sign a statement of the local node and return the envelope."""
        raise NotImplementedError

    def emit_envelope(self, envelope: SCPEnvelope) -> None:
        """Broadcast an envelope of the local node (persist it first: rule 3 of docs/architecture.md).

        Called only for validators, only with a statement newer than the last
        one emitted for that slot, and never for a slot being restored.
        """
        raise NotImplementedError

    def get_quorum_set(self, qset_hash: bytes) -> SCPQuorumSet | None:
        """Return the quorum set with this hash, or None if not (yet) known.

        A statement whose quorum set is unknown is kept but counts in no
        quorum until a later call returns the set (fetching it is the
        driver's job); it can still be part of a v-blocking set, which only
        depends on the local quorum set. Sets that are found are cached by
        the core. The local node's own set is found without asking.
        """
        raise NotImplementedError

    # -- values ------------------------------------------------------------

    def validate_value(self, slot_index: int, value: bytes, nomination: bool) -> ValidationLevel:
        """Judge a value seen in a statement; the default accepts everything as FULLY_VALID.

        ``nomination`` tells whether the value comes from a NOMINATE (True)
        or a ballot statement (False). INVALID makes the whole statement
        invalid; MAYBE_VALID is taken part in but never nominated or echoed,
        and it stops the slot from emitting.
        """
        return ValidationLevel.FULLY_VALID

    def extract_valid_value(self, slot_index: int, value: bytes) -> bytes | None:
        """Turn an invalid value into a valid one if possible (e.g. strip bad parts)."""
        return None

    def combine_candidates(self, slot_index: int, candidates: frozenset[bytes]) -> bytes | None:
        """Deterministically combine the confirmed-nominated values into the composite.

        Called with a non-empty set each time the candidates grow; returning
        None means "no composite yet" and the ballot protocol is not bumped.
        """
        raise NotImplementedError

    def value_to_str(self, value: bytes) -> str:
        """Short printable form of a value, used in snapshots."""
        return value.hex() if len(value) <= 16 else value[:8].hex() + "..."

    # -- timers ------------------------------------------------------------

    def setup_timer(self, slot_index: int, timer_id: TimerId, timeout: float, callback: TimerCallback) -> None:
        """Arm (or re-arm, replacing any pending one) a timer for a slot.

        After ``timeout`` seconds the driver calls ``callback()`` (with no
        arguments) from its own loop, unless ``stop_timer`` or another
        ``setup_timer`` for the same (slot, timer) came first.
        """
        raise NotImplementedError

    def stop_timer(self, slot_index: int, timer_id: TimerId) -> None:
        """Cancel a pending timer; a no-op if none is armed."""
        raise NotImplementedError

    def compute_timeout(self, round_number: int, is_nomination: bool) -> float:
        """Seconds before round / counter ``round_number`` (>= 1) times out.

        ``initial + (n - 1) * increment``, capped at ``max_timeout``.
        """
        if is_nomination:
            initial, increment = self.nomination_timeout_initial, self.nomination_timeout_increment
        else:
            initial, increment = self.ballot_timeout_initial, self.ballot_timeout_increment
        n = max(round_number, 1)
        return min(initial + (n - 1) * increment, self.max_timeout)

    # -- leader selection (draft 3.3: G_i(m) = SHA-256(i || output[i-1] || m)) --

    def compute_hash_node(
        self, slot_index: int, prev_value: bytes, is_priority: bool, round_number: int, node_id: NodeID
    ) -> int:
        """64-bit G_i(N || r || v) (neighbors) or G_i(P || r || v) (priority)."""
        h = hashlib.sha256()
        h.update(_xdr_uint64(slot_index))
        h.update(_xdr_opaque(prev_value))
        h.update(_xdr_uint32(HASH_P if is_priority else HASH_N))
        h.update(_xdr_int32(round_number))
        h.update(node_id.to_xdr())
        return _hash_to_uint64(h.digest())

    def compute_value_hash(self, slot_index: int, prev_value: bytes, round_number: int, value: bytes) -> int:
        """64-bit G_i(K || r || value), used to pick among a leader's new values."""
        h = hashlib.sha256()
        h.update(_xdr_uint64(slot_index))
        h.update(_xdr_opaque(prev_value))
        h.update(_xdr_uint32(HASH_K))
        h.update(_xdr_int32(round_number))
        h.update(_xdr_opaque(value))
        return _hash_to_uint64(h.digest())

    def get_node_weight(self, node_id: NodeID, qset: SCPQuorumSet, is_local: bool) -> Fraction:
        """weight(v): the fraction of the local node's slices containing v.

        The local node has weight 1; for nested k-of-n it is the product of
        threshold/size along the path to ``node_id`` (0 if absent).
        """
        if is_local:
            return Fraction(1)
        return quorum.node_weight(qset, node_id, None)

    # -- event hooks (no-ops by default) -----------------------------------

    def value_externalized(self, slot_index: int, value: bytes) -> None:
        """The slot decided ``value``; called exactly once per slot."""

    def nominating_value(self, slot_index: int, value: bytes) -> None:
        """The local node started voting to nominate ``value``."""

    def updated_candidate_value(self, slot_index: int, value: bytes) -> None:
        """The composite of the confirmed candidates changed to ``value``."""

    def started_ballot_protocol(self, slot_index: int, ballot: SCPBallot) -> None:
        """The local node moved to its first ballot for the slot."""

    def accepted_ballot_prepared(self, slot_index: int, ballot: SCPBallot) -> None:
        """The local node accepted ``ballot`` as prepared (new p)."""

    def confirmed_ballot_prepared(self, slot_index: int, ballot: SCPBallot) -> None:
        """The local node confirmed ``ballot`` as prepared (new h)."""

    def accepted_commit(self, slot_index: int, ballot: SCPBallot) -> None:
        """The local node accepted to commit ``ballot`` (moved to CONFIRM)."""

    def ballot_did_hear_from_quorum(self, slot_index: int, ballot: SCPBallot) -> None:
        """A quorum including the local node is at counter >= ballot.counter."""
