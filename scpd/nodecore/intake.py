"""The intake of peers' SCP envelopes: cheapest checks first, then the consensus core.

Envelopes arrive hostile (rule 2 of docs/architecture.md, docs/security.md). In order: our
own statement echoed back; a signer outside the transitive closure of our
quorum set (``trust``); a slot too far behind (a late EXTERNALIZE of a
recent slot excepted); the signature, verified at most once per envelope
(``sigcache``) and over the statement bytes as received (``ScpMessage``);
then, signed and trusted, the statement's slot counts as a claim that the
network is there (catch-up); a slot too far ahead; whether the signer
contradicts itself (``equivocation``). A statement for a slot we
already wrote is at most a late proof; one for a future slot waits in
``pending`` until its slot is current; one for the current slot goes to the
consensus core once what it names is here (``fetches``). An invalid envelope
scores its sender.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scpd.base.keys import verify_envelope
from scpd.base.types import NodeID, SCPEnvelope, SCPExternalize
from scpd.nodecore.actions import Relay, Score, Verdict
from scpd.nodecore.known_sets import qset_hash_of
from scpd.nodecore.messages import ScpMessage
from scpd.nodecore.pending import PendingOutcome
from scpd.scp.driver import EnvelopeState

if TYPE_CHECKING:
    from scpd.nodecore.core import NodeCore

__all__ = ["INVALID_ENVELOPE_POINTS", "Intake"]

# What an envelope the consensus core finds invalid costs its sender, when judged after its arrival.
INVALID_ENVELOPE_POINTS = 25


class Intake:
    def __init__(self, core: NodeCore) -> None:
        self._core = core

    def receive(self, peer: NodeID, message: ScpMessage) -> Verdict:
        """Judge a peer's envelope, cheapest checks first."""
        core, obs = self._core, self._core.observer
        settings = core.settings
        envelope = message.envelope
        statement = envelope.statement
        node, slot = statement.node_id, statement.slot_index
        current = core.current_slot
        obs.envelope_received()
        if node == core.node_id:
            obs.envelope_rejected("own_envelope")
            return Verdict.IGNORE
        if node not in core.trust:
            obs.envelope_rejected("untrusted")
            return Verdict.IGNORE
        late_proof = isinstance(statement.pledges, SCPExternalize) and slot + settings.keep_slots >= current
        if slot + settings.max_slots_behind < current and not late_proof:
            obs.envelope_rejected("slot_out_of_range")
            return Verdict.IGNORE
        if not self._signature_ok(message):
            obs.envelope_rejected("bad_signature")
            obs.bad_signature(peer, node, slot)
            return Verdict.REJECT
        core.catching.note_network_slot(node, slot)
        if slot > current + settings.max_slots_ahead:
            # Far ahead of us: too early for the consensus core, but (signed) it says we may be behind.
            obs.envelope_rejected("slot_out_of_range")
            return Verdict.IGNORE
        found = core.equivocations.observe(envelope)
        if found is not None:
            obs.equivocation_found(found)
        if slot <= core.tip.slot:
            # Decided and written: never fed to the consensus core again (after a restart it has no
            # state for it and could answer with statements older than what we sent before).
            if late_proof:
                core.writer.late_proof(envelope)
            return Verdict.IGNORE
        if slot > current:
            self._hold(peer, envelope, len(message.envelope_xdr))
            return Verdict.IGNORE
        return self.judge(peer, envelope)

    def _signature_ok(self, message: ScpMessage) -> bool:
        """Verify the signature, at most once per envelope (good or bad) while it is remembered.

        Both the cache key and the signed bytes come from the message's encoding: for a received
        envelope, the very bytes it was decoded from (no re-encode).
        """
        core = self._core
        obs = core.observer

        def verify() -> bool:
            ok = verify_envelope(core.net_id, message.envelope, message.statement_xdr)
            obs.signature_verified(ok)
            return ok

        checked = core.signatures.verifications
        ok = core.signatures.check(message.envelope_xdr, verify)
        if core.signatures.verifications == checked:
            obs.signature_remembered()
        return ok

    def _hold(self, peer: NodeID, envelope: SCPEnvelope, size: int) -> None:
        """A future slot's envelope waits for its slot (``pending``); relayed once the consensus core took it."""
        core = self._core
        outcome = core.pending.add(envelope, size, peer)
        if outcome is PendingOutcome.NODE_FULL or outcome is PendingOutcome.FULL:
            core.observer.envelope_rejected(f"pending_{outcome.value}")
        core.observer.pending_changed(len(core.pending), core.pending.total_bytes)

    def release(self) -> None:
        """The current slot moved: its waiting envelopes go on (fetch, then consensus); older state is dropped."""
        core = self._core
        oldest_kept = max(0, core.current_slot - core.settings.keep_slots)
        core.equivocations.forget_below(oldest_kept)
        core.writer.forget_late_proofs_below(oldest_kept)
        for held in core.pending.take(core.current_slot):
            self.judged_late(held.origin, held.envelope, self.judge(held.origin, held.envelope))
        core.observer.pending_changed(len(core.pending), core.pending.total_bytes)

    def judge(self, origin: NodeID, envelope: SCPEnvelope) -> Verdict:
        """A current-slot envelope: to the consensus core now, or once its quorum set and tx sets are fetched."""
        missing_qset, missing_tx_sets = self._core.sets.missing(envelope.statement)
        if missing_qset is None and not missing_tx_sets:
            return self.to_consensus(envelope)
        self._core.fetches.wait_for(origin, envelope, missing_qset, missing_tx_sets)
        return Verdict.IGNORE

    def judged_late(self, origin: NodeID, envelope: SCPEnvelope, verdict: Verdict) -> None:
        """Act on the verdict on an envelope judged after its arrival (released or fetched)."""
        if verdict is Verdict.ACCEPT:
            self._core.emit(Relay(ScpMessage(envelope), origin))
        elif verdict is Verdict.REJECT and self._core.is_connected(origin):
            self._core.emit(Score(origin, "invalid SCP envelope", INVALID_ENVELOPE_POINTS))

    def to_consensus(self, envelope: SCPEnvelope) -> Verdict:
        core = self._core
        node = envelope.statement.node_id
        before = core.scp.get_latest_message(node)
        state = core.scp.receive_envelope(envelope)
        if node in core.members and core.scp.get_latest_message(node) is not before:
            # Its statements advanced: alive. A relayed copy of an old statement changes nothing here,
            # so a dead member is not kept "alive" by others re-flooding its last words.
            core.heard_at[node] = core.now
        if state is EnvelopeState.VALID:
            core.observer.envelope_accepted()
            statement = envelope.statement
            qset_hash = qset_hash_of(statement)
            qset = core.sets.quorum_set(qset_hash)
            if qset is not None and core.trust.note(statement.node_id, qset, qset_hash):
                core.observer.trusted_nodes_changed(len(core.trust))
            return Verdict.ACCEPT
        core.observer.envelope_rejected("invalid")
        return Verdict.REJECT
