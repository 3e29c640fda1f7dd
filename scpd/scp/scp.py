"""The SCP facade: one local node taking part in many independent slots.

Theory of operation
-------------------
``SCP`` is the only entry point of the consensus core. It owns the local
node's identity and quorum set and a map of slot index -> :class:`Slot`,
created lazily the first time a slot is touched. Each slot runs the two
phases of the protocol (``nomination.NominationProtocol`` then
``ballot.BallotProtocol``) independently of every other slot, so slots can be
driven in any order and purged once old.

Inputs are method calls: envelopes received from peers (already decoded and
signature-checked by the caller), ``nominate`` from the application's slot
cadence, timer callbacks the driver fires later. Outputs are calls on the
:class:`~scpd.scp.driver.Driver`: envelopes to sign and emit, timers to arm,
values to validate and combine, event hooks. Nothing in here reads a clock,
touches the network or keeps global state: replaying the same calls replays
the same outputs.

A non-validating node (``is_validator=False``) runs the same state machine so
it follows and externalizes, but never signs or emits anything.
"""

from __future__ import annotations

from typing import Any

from scpd.base import quorum
from scpd.base.types import NodeID, SCPEnvelope, SCPQuorumSet
from scpd.errors import ConsensusError
from scpd.scp.driver import Driver, EnvelopeState
from scpd.scp.federated import QuorumSetCache
from scpd.scp.local_node import LocalNode
from scpd.scp.slot import Slot, SlotEffort

__all__ = ["SCP"]


class SCP:
    """A local node's consensus state across slots."""

    def __init__(self, driver: Driver, node_id: NodeID, is_validator: bool, quorum_set: SCPQuorumSet) -> None:
        """Create the core for ``node_id`` with ``quorum_set`` (checked for sanity).

        Raises ``QuorumSetError`` if the quorum set breaks a sanity rule.
        """
        quorum.check_sanity(quorum_set)
        self.driver = driver
        self.local_node = LocalNode(node_id, is_validator, quorum_set)
        self._qsets = QuorumSetCache(driver, self.local_node)
        self._slots: dict[int, Slot] = {}

    # -- local node --------------------------------------------------------

    @property
    def node_id(self) -> NodeID:
        return self.local_node.node_id

    @property
    def is_validator(self) -> bool:
        return self.local_node.is_validator

    @property
    def quorum_set(self) -> SCPQuorumSet:
        return self.local_node.quorum_set

    @property
    def quorum_set_hash(self) -> bytes:
        return self.local_node.quorum_set_hash

    # -- inputs ------------------------------------------------------------

    def receive_envelope(self, envelope: SCPEnvelope) -> EnvelopeState:
        """Process an envelope from a peer (or our own, echoed back).

        The caller has verified the signature. Returns INVALID if the
        statement breaks a sanity rule (the sender is to blame), VALID
        otherwise, including when it is older than what we hold and ignored.
        May call ``emit_envelope``, timers and hooks on the driver, including
        ``value_externalized`` (exactly once per slot, the first time the
        slot decides).

        A statement bearing our own node id is ignored (VALID): ours enter
        the core only as we emit them, so a copy from the network says
        nothing new, and a different one (another process using our key)
        must never replace the record of what we said.
        """
        if envelope.statement.node_id == self.local_node.node_id:
            return EnvelopeState.VALID
        slot = self._get_slot(envelope.statement.slot_index, create=True)
        assert slot is not None
        return slot.process_envelope(envelope, self_envelope=False)

    def nominate(self, slot_index: int, value: bytes, prev_value: bytes) -> bool:
        """Start (or continue) nominating ``value`` for a slot.

        ``prev_value`` is the value decided for the previous slot; it seeds
        the leader-selection hash. Returns True if this call changed what
        the node votes for (and so emitted a new NOMINATE statement). Arms the
        NOMINATION timer; each expiry runs another round with more leaders.
        """
        slot = self._get_slot(slot_index, create=True)
        assert slot is not None
        return slot.nominate(value, prev_value, timed_out=False)

    def bump_state(self, slot_index: int, value: bytes, force: bool = True) -> bool:
        """Move the slot's ballot protocol to its next ballot with ``value``.

        The daemon never needs this (nomination starts balloting by itself);
        it exists for tests and tools, like stellar-core's ``bumpState``.
        Returns True if a new ballot was adopted (and emitted).
        """
        slot = self._get_slot(slot_index, create=True)
        assert slot is not None
        return slot.bump_state(value, force)

    def stop_nomination(self, slot_index: int) -> None:
        """Stop the nomination rounds of a slot (its timer is stopped)."""
        slot = self._get_slot(slot_index, create=False)
        if slot is not None:
            slot.stop_nomination()

    def set_state_from_envelope(self, slot_index: int, envelope: SCPEnvelope) -> None:
        """Restore the local node's own state from one of its persisted envelopes.

        Call after a restart, before any other input for the slot, with the
        last NOMINATE and/or the last ballot envelope the node emitted. The
        node adopts that state without emitting, so it never contradicts
        what it sent before the crash (an EXTERNALIZE restores the decision
        without calling ``value_externalized`` again). Raises
        ``ConsensusError`` for an envelope that is not the local node's for
        this slot, is not sane, or comes after the phase already started.
        """
        if envelope.statement.node_id != self.node_id or envelope.statement.slot_index != slot_index:
            raise ConsensusError("set_state_from_envelope: envelope is not the local node's for this slot")
        slot = self._get_slot(slot_index, create=True)
        assert slot is not None
        slot.set_state_from_envelope(envelope)

    # -- queries -----------------------------------------------------------

    def get_latest_messages_send(self, slot_index: int) -> list[SCPEnvelope]:
        """The local node's latest emitted envelopes for a slot (NOMINATE then ballot)."""
        slot = self._get_slot(slot_index, create=False)
        return [] if slot is None else slot.get_latest_messages_send()

    def get_externalizing_state(self, slot_index: int) -> list[SCPEnvelope]:
        """Envelopes that let a lagging peer catch up on a decided slot.

        Once the slot externalized: the latest ballot envelope of every node
        (including ours) that helped decide, i.e. that is in CONFIRM or
        EXTERNALIZE for the decided value; empty before that.
        """
        slot = self._get_slot(slot_index, create=False)
        return [] if slot is None else slot.get_externalizing_state()

    def get_latest_message(self, node_id: NodeID) -> SCPEnvelope | None:
        """The newest envelope heard from ``node_id`` across the known slots."""
        for index in sorted(self._slots, reverse=True):
            env = self._slots[index].get_latest_message(node_id)
            if env is not None:
                return env
        return None

    def get_externalized_value(self, slot_index: int) -> bytes | None:
        """The value the slot externalized, or None if not (yet) decided."""
        slot = self._get_slot(slot_index, create=False)
        return None if slot is None else slot.externalized_value

    def is_slot_fully_validated(self, slot_index: int) -> bool:
        """False if the slot saw a value the driver only judged MAYBE_VALID."""
        slot = self._get_slot(slot_index, create=False)
        return slot is not None and slot.fully_validated

    def known_slots(self) -> list[int]:
        """Indices of the slots currently held, ascending."""
        return sorted(self._slots)

    def empty(self) -> bool:
        return not self._slots

    def effort(self, slot_index: int) -> SlotEffort | None:
        """How much work deciding a slot took (nomination rounds, committed counter); None if unknown."""
        slot = self._get_slot(slot_index, create=False)
        return None if slot is None else slot.effort()

    def snapshot(self, slot_index: int) -> dict[str, Any] | None:
        """A JSON-able picture of a slot's state, or None if the slot is unknown.

        Keys: ``slot``, ``fully_validated``, ``externalized``, ``nomination``
        (round, started, stopped, round_leaders, votes, accepted, candidates,
        latest_composite, heard_from) and ``ballot`` (phase, b, p, p', h, c,
        heard_from_quorum, current_message_level, heard_from). Values and
        keys are printed as strings (``driver.value_to_str`` / strkeys).
        """
        slot = self._get_slot(slot_index, create=False)
        return None if slot is None else slot.snapshot()

    # -- maintenance -------------------------------------------------------

    def purge_slots(self, below: int, keep: int | None = None) -> None:
        """Forget every slot with index < ``below`` except ``keep`` (if given).

        Pending timers of the purged slots are stopped.
        """
        for index in [i for i in self._slots if i < below and i != keep]:
            self._slots.pop(index).stop_all_timers()

    def _get_slot(self, slot_index: int, create: bool) -> Slot | None:
        slot = self._slots.get(slot_index)
        if slot is None and create:
            slot = Slot(slot_index, self.driver, self.local_node, self._qsets)
            self._slots[slot_index] = slot
        return slot
