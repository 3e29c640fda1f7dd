"""The nomination protocol of one slot (draft 3.3, Simplified SCP "Nomination").

Theory of operation
-------------------
Nomination is federated voting on "nominate x" for many values x at once.
Each node keeps three growing sets: ``votes`` (X, values it votes to
nominate), ``accepted`` (Y, values it accepted as nominated) and
``candidates`` (Z, values it confirmed nominated). A NOMINATE statement
carries X and Y; it supersedes the sender's previous one only if neither set
shrank and one grew.

Rounds and leaders. ``nominate`` starts round 1 and each expiry of the
NOMINATION timer starts the next round (timeouts escalate through
``Driver.compute_timeout``). Every round adds the node(s) of highest
priority among this round's neighbors to the set of round leaders; leaders
accumulate, so a dead leader is eventually outnumbered. Only a leader
introduces a new value: the local node echoes one new value per leader,
taken from the leader's accepted set, or from its votes when none of its
accepted values is valid; and, when it is a leader itself and votes for
nothing yet, it votes for its own value. A round that would add no new leader
is skipped at once (stellar-core's "fast timeout"), at most
``MAX_FAST_TIMEOUTS`` rounds per update (fewer in large sets) and never in
search of a node that cannot lead (weight 0), so leader selection always ends.

Votes stop as soon as any value is confirmed nominated (a candidate exists):
no more echoing, the round timer is stopped. Accepting continues, so that
members of an intact set confirm each other's values. Each time the
candidates grow, the driver combines them into the composite value, which
starts the ballot protocol (or is used at its next bump).

Statement sanity lives here too: votes and accepted strictly sorted, not both
empty, every value not INVALID for the driver.
"""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING, Any

from scpd.base import quorum
from scpd.base.types import NodeID, SCPEnvelope, SCPNomination, SCPQuorumSet, SCPStatement
from scpd.errors import ConsensusError
from scpd.scp.driver import UINT64_MAX, EnvelopeState, TimerId, ValidationLevel
from scpd.scp.federated import LatestStatements, PledgePredicate

if TYPE_CHECKING:
    from scpd.scp.slot import Slot

__all__ = [
    "MAX_FAST_TIMEOUTS",
    "MAX_NEIGHBOR_TESTS",
    "NominationProtocol",
    "is_newer_nomination",
    "is_sane_nomination",
    "possible_leaders",
]

# Rounds skipped at most in one leader update ("fast timeouts"), and fewer in
# a large quorum set: each round costs a neighbor test (and, for a neighbor,
# a priority hash) per node that can lead, and one update makes at most
# MAX_NEIGHBOR_TESTS of those tests (plus one round's worth), a few tens of
# milliseconds, whatever the set.
MAX_FAST_TIMEOUTS = 64
MAX_NEIGHBOR_TESTS = 4096


def _strictly_sorted(values: tuple[bytes, ...]) -> bool:
    return all(a < b for a, b in pairwise(values))


def is_sane_nomination(nom: SCPNomination) -> bool:
    """Votes and accepted strictly sorted (so no duplicates) and not both empty."""
    return bool(nom.votes or nom.accepted) and _strictly_sorted(nom.votes) and _strictly_sorted(nom.accepted)


def is_newer_nomination(old: SCPNomination, new: SCPNomination) -> bool:
    """``new`` supersedes ``old``: neither set shrank and at least one grew."""
    old_votes, new_votes = set(old.votes), set(new.votes)
    old_acc, new_acc = set(old.accepted), set(new.accepted)
    if not (old_votes <= new_votes and old_acc <= new_acc):
        return False
    return len(new_votes) > len(old_votes) or len(new_acc) > len(old_acc)


def possible_leaders(qset: SCPQuorumSet, local: NodeID) -> frozenset[NodeID]:
    """The nodes other than ``local`` that can ever lead a nomination round.

    A node leads only if it can be a neighbor, i.e. has a non-zero weight
    (the default ``Driver.get_node_weight``) in the set normalised without
    the local node, as the protocol computes it. Empty when the set names
    nobody else, or when ``local`` alone satisfies it at the top level (a
    1-of-n set that includes ``local``): nomination would then only ever
    follow the local node, which stellar-core refuses at start (PR 4528).
    """
    normalized = quorum.normalize(qset, remove=local)
    return frozenset(n for n in quorum.all_validators(normalized) - {local} if quorum.node_weight(normalized, n) > 0)


class NominationProtocol:
    """The nomination state machine of one slot (owned by :class:`Slot`)."""

    def __init__(self, slot: Slot) -> None:
        self._slot = slot
        self.round_number = 0
        self.started = False
        self.previous_value = b""
        self.round_leaders: set[NodeID] = set()
        self.votes: set[bytes] = set()
        self.accepted: set[bytes] = set()
        self.candidates: set[bytes] = set()
        self.latest_composite: bytes | None = None
        self.latest = LatestStatements(slot.intern)
        self.last_envelope: SCPEnvelope | None = None
        self.timer_armed = False

    # -- receiving ---------------------------------------------------------

    def process_envelope(self, envelope: SCPEnvelope, self_envelope: bool) -> EnvelopeState:
        st = envelope.statement
        nom = st.pledges
        assert isinstance(nom, SCPNomination)
        if not self._is_sane(st, nom):
            if self_envelope:
                raise ConsensusError("nomination produced an insane statement")
            return EnvelopeState.INVALID
        old = self.latest.get(st.node_id)
        if old is not None:
            old_nom = old.statement.pledges
            assert isinstance(old_nom, SCPNomination)
            if not is_newer_nomination(old_nom, nom):
                if self_envelope:
                    raise ConsensusError("nomination produced a stale statement")
                return EnvelopeState.VALID
        self.latest.record(envelope)
        if self.started:
            self._advance(st.node_id, nom)
        return EnvelopeState.VALID

    def _is_sane(self, st: SCPStatement, nom: SCPNomination) -> bool:
        if not is_sane_nomination(nom):
            return False
        qset = self._slot.qset_of_statement(st)
        if qset is not None and not self._slot.qset_is_sane(qset):
            return False
        for v in (*nom.votes, *nom.accepted):
            if self._slot.validate_value(v, nomination=True) == ValidationLevel.INVALID:
                return False
        return True

    def _advance(self, sender: NodeID, nom: SCPNomination) -> None:
        modified = False
        new_candidates = False
        # Promote votes to accepted: a quorum voted-or-accepted, or a v-blocking set accepted.
        for v in nom.votes:
            if v in self.accepted:
                continue
            if self._slot.federated_accept(self.latest, _votes_for(v), _accepts(v)):
                if self._slot.validate_value(v, nomination=True) == ValidationLevel.FULLY_VALID:
                    self.accepted.add(v)
                    self.votes.add(v)
                    modified = True
                else:
                    # It made it far: vote for a valid variation if there is one.
                    variant = self._slot.driver.extract_valid_value(self._slot.slot_index, v)
                    if variant and variant not in self.votes:
                        self.votes.add(variant)
                        modified = True
        # Promote accepted values to candidates: a quorum accepted.
        for a in sorted(self.accepted - self.candidates):
            if self._slot.federated_ratify(self.latest, _accepts(a)):
                self.candidates.add(a)
                new_candidates = True
                self.stop_timer()  # no more rounds: votes stop once a value is confirmed
        # Echo a round leader's value, only while looking for candidates.
        if not self.candidates and sender in self.round_leaders:
            new_vote = self._new_value_from(nom)
            if new_vote is not None:
                self.votes.add(new_vote)
                modified = True
                self._slot.driver.nominating_value(self._slot.slot_index, new_vote)
        if modified:
            self._emit_nomination()
        if new_candidates:
            composite = self._slot.driver.combine_candidates(self._slot.slot_index, frozenset(self.candidates))
            if composite is not None:
                self.latest_composite = composite
                self._slot.driver.updated_candidate_value(self._slot.slot_index, composite)
                self._slot.bump_state(composite, force=False)

    # -- leaders -----------------------------------------------------------

    def _hash_node(self, is_priority: bool, node: NodeID) -> int:
        return self._slot.driver.compute_hash_node(
            self._slot.slot_index, self.previous_value, is_priority, self.round_number, node
        )

    def _neighbor_bounds(self) -> list[tuple[NodeID, int]]:
        """Every node of the local quorum set (self first) with floor(weight * (2^64 - 1)).

        Weights depend only on the local quorum set, so they are computed
        once per set (on the local node) rather than every round of every
        slot. As in stellar-core they are taken in the set normalized without
        the local node, whose own weight is 1.
        """
        local = self._slot.local_node
        cached = local.neighbor_bounds
        if cached is None:
            qset = quorum.normalize(local.quorum_set, remove=local.node_id)
            cached = []
            for node in [local.node_id, *sorted(quorum.all_validators(qset) - {local.node_id})]:
                w = self._slot.driver.get_node_weight(node, qset, node == local.node_id)
                cached.append((node, (w.numerator * UINT64_MAX) // w.denominator))
            local.neighbor_bounds = cached
        return cached

    def _node_priority(self, node: NodeID, bound: int) -> int:
        """priority(n, v) if v is in neighbors(n) (G_i(N || n || v) <= bound), else 0."""
        if bound > 0 and self._hash_node(False, node) <= bound:
            return self._hash_node(True, node)
        return 0

    def _update_round_leaders(self) -> None:
        """Add this round's top-priority neighbors (ties included) to the leaders.

        If that adds nobody new (or nobody has any priority), the round is
        skipped at once ("fast timeout") and the next one tried, as in
        stellar-core. Two bounds keep this from spinning: only nodes with a
        non-zero weight can ever lead (with a 1-of-n set that includes us,
        normalised without us, every other weight is 0), so once all of those
        lead there is nothing to look for; and at most ``MAX_FAST_TIMEOUTS``
        rounds (fewer in a large set, see ``MAX_NEIGHBOR_TESTS``) are skipped
        per call, so a node of tiny weight that keeps losing the draw costs a
        bounded amount of work (the next timeout tries again).
        """
        bounds = self._neighbor_bounds()
        local_id = bounds[0][0]
        eligible = sum(1 for _, bound in bounds if bound > 0)
        rounds = max(1, min(MAX_FAST_TIMEOUTS, MAX_NEIGHBOR_TESTS // max(eligible, 1)))
        for _ in range(rounds):
            if len(self.round_leaders) >= eligible:
                return
            leaders: set[NodeID] = set()
            top = 0
            for node, bound in bounds:
                w = self._node_priority(node, bound)
                if w > top:
                    top = w
                    leaders = set()
                if w == top and (w > 0 or node == local_id):
                    leaders.add(node)
            if top == 0:
                leaders = set()
            before = len(self.round_leaders)
            self.round_leaders |= leaders
            if len(self.round_leaders) != before:
                return
            self.round_number += 1

    def _new_value_from(self, nom: SCPNomination) -> bytes | None:
        """The new value to echo from a leader: from its accepted values, else from its votes.

        Votes are only looked at when none of the leader's accepted values
        is valid for us. Among the valid values we do not vote for yet, the
        one with the highest value hash wins, so every echoing node picks
        the same one.
        """
        best: bytes | None = None
        best_hash = -1
        found_valid = False
        for values in (nom.accepted, nom.votes):
            if found_valid:
                break
            for value in values:
                if self._slot.validate_value(value, nomination=True) == ValidationLevel.FULLY_VALID:
                    candidate: bytes | None = value
                else:
                    candidate = self._slot.driver.extract_valid_value(self._slot.slot_index, value)
                if not candidate:
                    continue
                found_valid = True
                if candidate in self.votes:
                    continue
                h = self._slot.driver.compute_value_hash(
                    self._slot.slot_index, self.previous_value, self.round_number, candidate
                )
                if h >= best_hash:
                    best, best_hash = candidate, h
        return best

    # -- rounds ------------------------------------------------------------

    def nominate(self, value: bytes, previous_value: bytes, timed_out: bool) -> bool:
        """Run the next round; return True if our votes grew (and were emitted).

        Echo one new value per round leader; if we are a leader ourselves
        and vote for nothing yet, vote for ``value``.
        """
        if self.candidates:
            return False  # votes stop once a value is confirmed nominated
        if timed_out and not self.started:
            return False
        self.started = True
        self.previous_value = previous_value
        self.round_number += 1
        self._update_round_leaders()
        updated = False
        driver, index = self._slot.driver, self._slot.slot_index
        for leader in sorted(self.round_leaders):
            env = self.latest.get(leader)
            if env is None:
                continue
            new_vote = self._new_value_from(_nom(env.statement))
            if new_vote is not None:
                self.votes.add(new_vote)
                updated = True
                driver.nominating_value(index, new_vote)
        if self._slot.local_node.node_id in self.round_leaders and not self.votes:
            self.votes.add(value)
            updated = True
            driver.nominating_value(index, value)
        timeout = driver.compute_timeout(self.round_number, True)
        self.timer_armed = True
        driver.setup_timer(index, TimerId.NOMINATION, timeout, lambda: self._timer_expired(value, previous_value))
        if updated:
            self._emit_nomination()
        return updated

    def _timer_expired(self, value: bytes, previous_value: bytes) -> None:
        self.timer_armed = False
        self.nominate(value, previous_value, timed_out=True)

    def stop(self) -> None:
        """Stop running rounds; statements are still recorded."""
        self.started = False
        self.stop_timer()

    def stop_timer(self) -> None:
        if self.timer_armed:
            self.timer_armed = False
            self._slot.driver.stop_timer(self._slot.slot_index, TimerId.NOMINATION)

    # -- emitting ----------------------------------------------------------

    def _emit_nomination(self) -> None:
        local = self._slot.local_node
        nom = SCPNomination(local.quorum_set_hash, tuple(sorted(self.votes)), tuple(sorted(self.accepted)))
        envelope = self._slot.create_envelope(SCPStatement(local.node_id, self._slot.slot_index, nom))
        self._slot.process_envelope(envelope, self_envelope=True)
        last = self.last_envelope
        if last is None or is_newer_nomination(_nom(last.statement), nom):
            self.last_envelope = envelope
            if self._slot.fully_validated:
                self._slot.driver.emit_envelope(envelope)

    # -- restore and queries -----------------------------------------------

    def set_state_from_envelope(self, envelope: SCPEnvelope) -> None:
        if self.started:
            raise ConsensusError("cannot restore nomination state after nomination started")
        nom = _nom(envelope.statement)
        if not is_sane_nomination(nom):
            raise ConsensusError("cannot restore from an insane nomination statement")
        self.latest.record(envelope)
        self.accepted.update(nom.accepted)
        self.votes.update(nom.votes)
        self.last_envelope = envelope

    def snapshot(self, value_str: Any) -> dict[str, Any]:
        return {
            "round": self.round_number,
            "started": self.started,
            "round_leaders": sorted(str(n) for n in self.round_leaders),
            "votes": [value_str(v) for v in sorted(self.votes)],
            "accepted": [value_str(v) for v in sorted(self.accepted)],
            "candidates": [value_str(v) for v in sorted(self.candidates)],
            "latest_composite": None if self.latest_composite is None else value_str(self.latest_composite),
            "heard_from": sorted(str(n) for n in self.latest),
        }


def _nom(st: SCPStatement) -> SCPNomination:
    pl = st.pledges
    assert isinstance(pl, SCPNomination)
    return pl


def _votes_for(value: bytes) -> PledgePredicate:
    return lambda pl: isinstance(pl, SCPNomination) and value in pl.votes


def _accepts(value: bytes) -> PledgePredicate:
    return lambda pl: isinstance(pl, SCPNomination) and value in pl.accepted
