"""One consensus slot: a nomination protocol and a ballot protocol side by side.

Theory of operation
-------------------
A slot routes each statement to its phase (NOMINATE to nomination, the rest
to the ballot protocol) and gives both phases what they share: the driver,
the local node, quorum-set resolution, federated voting over a phase's
latest statements, signing, value validation, and the one-shot
``value_externalized`` notification.

``fully_validated`` starts True for a validator and False for a watcher; it
drops to False the first time a value is only MAYBE_VALID. While False the
slot keeps running the protocol but never emits, which is how a watcher
follows the network silently.

Memory is bounded by the number of distinct senders: each phase keeps only
the latest statement per node, never a history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scpd.base.types import NodeID, SCPEnvelope, SCPNomination, SCPQuorumSet, SCPStatement
from scpd.scp.ballot import BallotProtocol, Phase
from scpd.scp.driver import Driver, EnvelopeState, ValidationLevel
from scpd.scp.federated import (
    LatestStatements,
    PledgePredicate,
    QuorumSetCache,
    federated_accept,
    federated_ratify,
)
from scpd.scp.local_node import LocalNode
from scpd.scp.nomination import NominationProtocol

__all__ = ["Slot", "SlotEffort"]


@dataclass(frozen=True, slots=True)
class SlotEffort:
    """How much work deciding a slot took, for the node's histograms."""

    nomination_rounds: int  # rounds of nomination run (0: the slot was decided without nominating)
    commit_counter: int | None  # the counter of the ballot committed (None: nothing committed yet)


class Slot:
    """The state of one slot index for the local node."""

    def __init__(self, slot_index: int, driver: Driver, local_node: LocalNode, qsets: QuorumSetCache) -> None:
        self.slot_index = slot_index
        self.driver = driver
        self.local_node = local_node
        self._qsets = qsets
        self.intern = qsets.intern
        self.fully_validated = local_node.is_validator
        self.externalized_value: bytes | None = None
        self.nomination = NominationProtocol(self)
        self.ballot = BallotProtocol(self)

    # -- inputs ------------------------------------------------------------

    def process_envelope(self, envelope: SCPEnvelope, self_envelope: bool) -> EnvelopeState:
        if isinstance(envelope.statement.pledges, SCPNomination):
            return self.nomination.process_envelope(envelope, self_envelope)
        return self.ballot.process_envelope(envelope, self_envelope)

    def nominate(self, value: bytes, prev_value: bytes, timed_out: bool) -> bool:
        return self.nomination.nominate(value, prev_value, timed_out)

    def stop_nomination(self) -> None:
        self.nomination.stop()

    def bump_state(self, value: bytes, force: bool) -> bool:
        return self.ballot.bump_state(value, force)

    def set_state_from_envelope(self, envelope: SCPEnvelope) -> None:
        if isinstance(envelope.statement.pledges, SCPNomination):
            self.nomination.set_state_from_envelope(envelope)
        else:
            self.ballot.set_state_from_envelope(envelope)
            if self.ballot.phase == Phase.EXTERNALIZE and self.ballot.commit is not None:
                # Decided before the restart: the application already heard about it.
                self.externalized_value = self.ballot.commit.value

    def stop_all_timers(self) -> None:
        self.nomination.stop_timer()
        self.ballot.stop_timer()

    # -- services for the phases -------------------------------------------

    @property
    def latest_composite_candidate(self) -> bytes | None:
        return self.nomination.latest_composite

    def externalize(self, value: bytes) -> None:
        """Record the decision and tell the driver, once."""
        if self.externalized_value is None:
            self.externalized_value = value
            self.driver.value_externalized(self.slot_index, value)

    def create_envelope(self, statement: SCPStatement) -> SCPEnvelope:
        """Sign our statement (a watcher never signs: its statements are never sent)."""
        if not self.local_node.is_validator:
            return SCPEnvelope(statement, b"")
        return self.driver.sign_envelope(statement)

    def validate_value(self, value: bytes, nomination: bool) -> ValidationLevel:
        return self.driver.validate_value(self.slot_index, value, nomination)

    def qset_of_statement(self, st: SCPStatement) -> SCPQuorumSet | None:
        """The quorum set a statement names (None for EXTERNALIZE, whose set is {sender}, or if unknown)."""
        return self._qsets.of_pledges(st.pledges)

    def qset_is_sane(self, qset: SCPQuorumSet) -> bool:
        return self._qsets.is_sane(qset)

    def is_v_blocking(self, nodes: set[NodeID]) -> bool:
        return self._qsets.compiled(self.local_node.quorum_set).blocked_by(nodes)

    def federated_accept(self, latest: LatestStatements, voted: PledgePredicate, accepted: PledgePredicate) -> bool:
        return federated_accept(self.local_node.quorum_set, latest, self._qsets, voted, accepted)

    def federated_ratify(self, latest: LatestStatements, voted: PledgePredicate) -> bool:
        return federated_ratify(self.local_node.quorum_set, latest, self._qsets, voted)

    # -- queries -----------------------------------------------------------

    def get_latest_messages_send(self) -> list[SCPEnvelope]:
        if not self.fully_validated:
            return []
        return [e for e in (self.nomination.last_envelope, self.ballot.last_envelope) if e is not None]

    def get_externalizing_state(self) -> list[SCPEnvelope]:
        return self.ballot.get_externalizing_state()

    def get_latest_message(self, node_id: NodeID) -> SCPEnvelope | None:
        env = self.ballot.latest.get(node_id)
        return env if env is not None else self.nomination.latest.get(node_id)

    def effort(self) -> SlotEffort:
        commit = self.ballot.commit
        return SlotEffort(self.nomination.round_number, None if commit is None else commit.counter)

    def snapshot(self) -> dict[str, Any]:
        value_str = self.driver.value_to_str
        return {
            "slot": self.slot_index,
            "fully_validated": self.fully_validated,
            "externalized": None if self.externalized_value is None else value_str(self.externalized_value),
            "nomination": self.nomination.snapshot(value_str),
            "ballot": self.ballot.snapshot(value_str),
        }
