"""The ballot protocol of one slot: PREPARE, CONFIRM, EXTERNALIZE.

Theory of operation
-------------------
State (draft 3.4 to 3.6, names as in the draft and stellar-core):

* ``b`` the current ballot, ``p`` and ``p'`` the two highest accepted-prepared
  ballots with different values, ``h`` the highest confirmed-prepared ballot,
  ``c`` the lowest ballot we vote (PREPARE) or accept (CONFIRM) to commit;
* ``phase``: PREPARE until we accept a commit, CONFIRM until we confirm one,
  EXTERNALIZE after (terminal);
* the latest ballot statement of each node, including our own.

Every sane, newer, valid statement is recorded and then drives
``_advance_slot``, which tries the protocol steps in the whitepaper's order,
each a pair "is it true? / apply it": accept prepared (p, p'), confirm
prepared (h, maybe c), accept commit (c, h, move to CONFIRM), confirm commit
(externalize), and finally, at the outermost level only, bump the counter if
a v-blocking set is ahead of us. Each step that changes our state builds our
new statement and feeds it back through the same path (our own statement
counts in the quorums we compute), so a single envelope can cascade through
several steps; what the driver sees is only the last statement of the
cascade (``_send_latest_envelope``).

Implicit statements. CONFIRM <b, nP, nC, nH> also means PREPARE <inf, x> with
p = <nP, x>, and EXTERNALIZE <c, nH> means CONFIRM with b = p = <inf, x>: the
predicates below read those counters as "infinite" (``INFINITE``), exactly
as the draft prescribes, and an EXTERNALIZE counts with the singleton quorum
set {sender}.

Invariants (checked by ``_check_invariants`` after each change):
p' < p and incompatible; h <= b and compatible; c <= h and compatible; in
CONFIRM and EXTERNALIZE, b, p, h and c are all set.

Nothing here touches a clock or the network: timers and emission go through
the slot's driver.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING, Any

from scpd.base.types import (
    NodeID,
    Pledges,
    SCPBallot,
    SCPConfirm,
    SCPEnvelope,
    SCPExternalize,
    SCPPrepare,
    SCPStatement,
)
from scpd.errors import ConsensusError
from scpd.scp.driver import EnvelopeState, TimerId, ValidationLevel
from scpd.scp.federated import LatestStatements, PledgePredicate

if TYPE_CHECKING:
    from scpd.scp.slot import Slot

__all__ = [
    "INFINITE",
    "BallotProtocol",
    "Phase",
    "compatible",
    "is_newer_ballot_statement",
    "is_sane_ballot_statement",
    "less_and_compatible",
    "less_and_incompatible",
    "statement_counter",
    "working_ballot",
]

INFINITE = 0xFFFFFFFF
# A single envelope may cascade through several transitions; more than this
# means the state machine loops, which is a bug.
MAX_ADVANCE_SLOT_RECURSION = 50


class Phase(IntEnum):
    PREPARE = 0
    CONFIRM = 1
    EXTERNALIZE = 2


# -- ballots ---------------------------------------------------------------


def compatible(b1: SCPBallot, b2: SCPBallot) -> bool:
    """Same value (b1 ~ b2)."""
    return b1.value == b2.value


def less_and_compatible(b1: SCPBallot, b2: SCPBallot) -> bool:
    """b1 <= b2 and b1 ~ b2."""
    return b1.value == b2.value and b1.counter <= b2.counter


def less_and_incompatible(b1: SCPBallot, b2: SCPBallot) -> bool:
    """b1 <= b2 and b1 !~ b2."""
    return b1.value != b2.value and (b1.counter, b1.value) <= (b2.counter, b2.value)


def _cmp_optional(b1: SCPBallot | None, b2: SCPBallot | None) -> int:
    """Three-way comparison where an absent ballot is below every ballot."""
    if b1 is None:
        return 0 if b2 is None else -1
    if b2 is None:
        return 1
    k1, k2 = (b1.counter, b1.value), (b2.counter, b2.value)
    return (k1 > k2) - (k1 < k2)


# -- statements ------------------------------------------------------------


def working_ballot(st: SCPStatement) -> SCPBallot:
    """The ballot a statement works on: b for PREPARE, <nC, x> for CONFIRM, c for EXTERNALIZE."""
    pl = st.pledges
    if isinstance(pl, SCPPrepare):
        return pl.ballot
    if isinstance(pl, SCPConfirm):
        return SCPBallot(pl.n_commit, pl.ballot.value)
    if isinstance(pl, SCPExternalize):
        return pl.commit
    raise ConsensusError("working_ballot: not a ballot statement")


def statement_counter(pl: Pledges) -> int:
    """The counter of a ballot statement's b (infinite for EXTERNALIZE)."""
    if isinstance(pl, SCPPrepare | SCPConfirm):
        return pl.ballot.counter
    return INFINITE


def is_sane_ballot_statement(st: SCPStatement, self_statement: bool = False) -> bool:
    """The draft's invariants on a ballot statement's fields.

    PREPARE: b.n > 0 (our own may be 0 before it is ever emitted), p' < p
    with a different value, nH <= p.n, and nC <= nH <= b.n when nC is set.
    CONFIRM: b.n > 0 and nCommit <= nH <= b.n. EXTERNALIZE: c.n > 0 and
    nH >= c.n.
    """
    pl = st.pledges
    if isinstance(pl, SCPPrepare):
        if pl.ballot.counter == 0 and not self_statement:
            return False
        if pl.prepared is not None and pl.prepared_prime is not None:
            if not less_and_incompatible(pl.prepared_prime, pl.prepared):
                return False
        elif pl.prepared_prime is not None:
            return False
        if pl.n_h != 0 and (pl.prepared is None or pl.n_h > pl.prepared.counter):
            return False
        return pl.n_c == 0 or (pl.n_h != 0 and pl.ballot.counter >= pl.n_h >= pl.n_c)
    if isinstance(pl, SCPConfirm):
        return pl.ballot.counter > 0 and pl.n_commit <= pl.n_h <= pl.ballot.counter
    if isinstance(pl, SCPExternalize):
        return pl.commit.counter > 0 and pl.n_h >= pl.commit.counter
    return False


def is_newer_ballot_statement(old: SCPStatement, new: SCPStatement) -> bool:
    """Total order of one node's ballot statements (stellar-core isNewerStatement).

    PREPARE < CONFIRM < EXTERNALIZE; PREPAREs by (b, p, p', nH); CONFIRMs by
    (b, nP, nH); an EXTERNALIZE is never superseded.
    """
    o, n = old.pledges, new.pledges
    if o.TYPE != n.TYPE:
        # Statement types are numbered PREPARE=0, CONFIRM=1, EXTERNALIZE=2.
        return o.TYPE < n.TYPE
    if isinstance(o, SCPPrepare) and isinstance(n, SCPPrepare):
        for a, b in ((o.ballot, n.ballot), (o.prepared, n.prepared), (o.prepared_prime, n.prepared_prime)):
            c = _cmp_optional(a, b)
            if c != 0:
                return c < 0
        return o.n_h < n.n_h
    if isinstance(o, SCPConfirm) and isinstance(n, SCPConfirm):
        c = _cmp_optional(o.ballot, n.ballot)
        if c != 0:
            return c < 0
        if o.n_prepared != n.n_prepared:
            return o.n_prepared < n.n_prepared
        return o.n_h < n.n_h
    return False


def _has_prepared(ballot: SCPBallot, pl: Pledges) -> bool:
    """Does a statement accept ``ballot`` as prepared (explicitly or implicitly)?"""
    if isinstance(pl, SCPPrepare):
        return (pl.prepared is not None and less_and_compatible(ballot, pl.prepared)) or (
            pl.prepared_prime is not None and less_and_compatible(ballot, pl.prepared_prime)
        )
    if isinstance(pl, SCPConfirm):
        return ballot.value == pl.ballot.value and ballot.counter <= pl.n_prepared
    if isinstance(pl, SCPExternalize):
        return ballot.value == pl.commit.value
    return False


def _votes_prepare(ballot: SCPBallot, pl: Pledges) -> bool:
    """Does a statement vote to prepare ``ballot`` (b >= ballot, same value; implicit for CONFIRM/EXTERNALIZE)?"""
    if isinstance(pl, SCPPrepare):
        return less_and_compatible(ballot, pl.ballot)
    if isinstance(pl, SCPConfirm):
        return ballot.value == pl.ballot.value
    if isinstance(pl, SCPExternalize):
        return ballot.value == pl.commit.value
    return False


def _votes_commit(value: bytes, low: int, high: int, pl: Pledges) -> bool:
    """Does a statement vote to commit every ballot <n, value> with low <= n <= high?"""
    if isinstance(pl, SCPPrepare):
        return pl.ballot.value == value and pl.n_c != 0 and pl.n_c <= low and high <= pl.n_h
    if isinstance(pl, SCPConfirm):
        return pl.ballot.value == value and pl.n_commit <= low
    if isinstance(pl, SCPExternalize):
        return pl.commit.value == value and pl.commit.counter <= low
    return False


def _accepts_commit(value: bytes, low: int, high: int, pl: Pledges) -> bool:
    """Does a statement accept to commit every ballot <n, value> with low <= n <= high?"""
    if isinstance(pl, SCPConfirm):
        return pl.ballot.value == value and pl.n_commit <= low and high <= pl.n_h
    if isinstance(pl, SCPExternalize):
        return pl.commit.value == value and pl.commit.counter <= low
    return False


def _find_extended_interval(boundaries: set[int], pred: Any) -> tuple[int, int]:
    """The widest [low, high] over ``boundaries`` satisfying ``pred``, found from the top.

    First pins the highest boundary b with pred([b, b]), then lowers the
    bottom while pred still holds. Returns (0, 0) if none.
    """
    low = high = 0
    for b in sorted(boundaries, reverse=True):
        if low == 0:
            cur = (b, b)
        elif b > high:
            continue
        else:
            cur = (b, high)
        if pred(cur[0], cur[1]):
            low, high = cur
        elif low != 0:
            break
    return low, high


class BallotProtocol:
    """The ballot state machine of one slot (owned by :class:`Slot`)."""

    def __init__(self, slot: Slot) -> None:
        self._slot = slot
        self.phase = Phase.PREPARE
        self.current: SCPBallot | None = None  # b
        self.prepared: SCPBallot | None = None  # p
        self.prepared_prime: SCPBallot | None = None  # p'
        self.high: SCPBallot | None = None  # h
        self.commit: SCPBallot | None = None  # c
        # Once we confirmed a ballot prepared (or accepted a commit), every
        # later ballot keeps that value: stellar-core's mValueOverride.
        self.value_override: bytes | None = None
        self.heard_from_quorum = False
        self.timer_armed = False
        self.latest = LatestStatements(slot.intern)
        self.last_envelope: SCPEnvelope | None = None  # newest statement of ours
        self.last_envelope_emitted: SCPEnvelope | None = None
        self._message_level = 0

    # -- receiving ---------------------------------------------------------

    def process_envelope(self, envelope: SCPEnvelope, self_envelope: bool) -> EnvelopeState:
        """Record a ballot statement if sane, newer and valid, then advance.

        Insane statements and invalid values are INVALID. A statement that is
        not newer than the sender's last is ignored (VALID: reordering is
        not the sender's fault). After EXTERNALIZE, statements are only
        recorded if compatible with the decided value (for catch-up help).
        """
        st = envelope.statement
        qset = self._slot.qset_of_statement(st)
        if not is_sane_ballot_statement(st, self_envelope) or (qset is not None and not self._slot.qset_is_sane(qset)):
            if self_envelope:
                raise ConsensusError("ballot protocol produced an insane statement")
            return EnvelopeState.INVALID
        old = self.latest.get(st.node_id)
        if old is not None and not is_newer_ballot_statement(old.statement, st):
            if self_envelope:
                raise ConsensusError("ballot protocol produced a stale statement")
            return EnvelopeState.VALID
        level = self._validate_values(st)
        if level == ValidationLevel.INVALID:
            if self_envelope:
                raise ConsensusError("ballot protocol produced a statement with an invalid value")
            return EnvelopeState.INVALID
        if self.phase != Phase.EXTERNALIZE:
            if level == ValidationLevel.MAYBE_VALID:
                self._slot.fully_validated = False
            self.latest.record(envelope)
            self._advance_slot(st)
            return EnvelopeState.VALID
        assert self.commit is not None
        if working_ballot(st).value == self.commit.value:
            self.latest.record(envelope)
        return EnvelopeState.VALID

    def _validate_values(self, st: SCPStatement) -> ValidationLevel:
        pl = st.pledges
        values: set[bytes] = set()
        if isinstance(pl, SCPPrepare):
            if pl.ballot.counter != 0:
                values.add(pl.ballot.value)
            if pl.prepared is not None:
                values.add(pl.prepared.value)
        elif isinstance(pl, SCPConfirm):
            values.add(pl.ballot.value)
        elif isinstance(pl, SCPExternalize):
            values.add(pl.commit.value)
        result = ValidationLevel.FULLY_VALID
        for v in values:
            level = self._slot.validate_value(v, nomination=False)
            if level == ValidationLevel.INVALID:
                return ValidationLevel.INVALID
            if level == ValidationLevel.MAYBE_VALID:
                result = ValidationLevel.MAYBE_VALID
        return result

    def _advance_slot(self, hint: SCPStatement) -> None:
        """Try every protocol step in order, then bump; emit once at the end."""
        self._message_level += 1
        if self._message_level >= MAX_ADVANCE_SLOT_RECURSION:
            raise ConsensusError("maximum number of transitions reached in advance_slot")
        did_work = self._attempt_accept_prepared(hint)
        did_work = self._attempt_confirm_prepared(hint) or did_work
        did_work = self._attempt_accept_commit(hint) or did_work
        did_work = self._attempt_confirm_commit(hint) or did_work
        if self._message_level == 1:
            # Each bump moves us to a higher counter that some other sender
            # holds, so there are at most as many bumps as senders.
            for _ in range(len(self.latest) + 1):
                if not self._attempt_bump():
                    break
                did_work = True
            self._check_heard_from_quorum()
        self._message_level -= 1
        if did_work:
            self._send_latest_envelope()

    # -- step 1: accept prepared -------------------------------------------

    def _prepare_candidates(self, hint: SCPStatement) -> list[SCPBallot]:
        """Ballots the hint makes interesting to (accept/confirm as) prepare, highest first."""
        pl = hint.pledges
        hints: list[SCPBallot] = []
        if isinstance(pl, SCPPrepare):
            hints.append(pl.ballot)
            if pl.prepared is not None:
                hints.append(pl.prepared)
            if pl.prepared_prime is not None:
                hints.append(pl.prepared_prime)
        elif isinstance(pl, SCPConfirm):
            hints.append(SCPBallot(pl.n_prepared, pl.ballot.value))
            hints.append(SCPBallot(INFINITE, pl.ballot.value))
        elif isinstance(pl, SCPExternalize):
            hints.append(SCPBallot(INFINITE, pl.commit.value))
        candidates: set[SCPBallot] = set()
        statements = list(self.latest.distinct())
        for top in set(hints):
            for spl in statements:
                if isinstance(spl, SCPPrepare):
                    for b in (spl.ballot, spl.prepared, spl.prepared_prime):
                        if b is not None and less_and_compatible(b, top):
                            candidates.add(b)
                elif isinstance(spl, SCPConfirm):
                    if spl.ballot.value == top.value:
                        candidates.add(top)
                        if spl.n_prepared < top.counter:
                            candidates.add(SCPBallot(spl.n_prepared, top.value))
                elif isinstance(spl, SCPExternalize) and spl.commit.value == top.value:
                    candidates.add(top)
        return sorted(candidates, key=lambda b: (b.counter, b.value), reverse=True)

    def _attempt_accept_prepared(self, hint: SCPStatement) -> bool:
        if self.phase not in (Phase.PREPARE, Phase.CONFIRM):
            return False
        for ballot in self._prepare_candidates(hint):
            if self.phase == Phase.CONFIRM:
                # Only a ballot that raises p (p ~ c here) is of interest.
                assert self.prepared is not None
                if not less_and_compatible(self.prepared, ballot):
                    continue
            if self.prepared_prime is not None and _cmp_optional(ballot, self.prepared_prime) <= 0:
                continue  # neither a candidate for p nor for p'
            if self.prepared is not None and less_and_compatible(ballot, self.prepared):
                continue  # already covered by p
            if self._slot.federated_accept(self.latest, _bind1(_votes_prepare, ballot), _bind1(_has_prepared, ballot)):
                return self._set_accept_prepared(ballot)
        return False

    def _set_accept_prepared(self, ballot: SCPBallot) -> bool:
        did_work = self._set_prepared(ballot)
        # c is reset when p or p' outranks h with another value.
        high = self.high
        if (
            self.commit is not None
            and high is not None
            and (
                (self.prepared is not None and less_and_incompatible(high, self.prepared))
                or (self.prepared_prime is not None and less_and_incompatible(high, self.prepared_prime))
            )
        ):
            assert self.phase == Phase.PREPARE
            self.commit = None
            did_work = True
        if did_work:
            self._slot.driver.accepted_ballot_prepared(self._slot.slot_index, ballot)
            self._emit_current_state()
        return did_work

    def _set_prepared(self, ballot: SCPBallot) -> bool:
        """Raise p (pushing an incompatible old p into p'), or raise p' only."""
        if self.prepared is None:
            self.prepared = ballot
            return True
        comp = _cmp_optional(self.prepared, ballot)
        if comp < 0:
            if not compatible(self.prepared, ballot):
                self.prepared_prime = self.prepared
            self.prepared = ballot
            return True
        if comp > 0 and (self.prepared_prime is None or _cmp_optional(self.prepared_prime, ballot) < 0):
            self.prepared_prime = ballot
            return True
        return False

    # -- step 2: confirm prepared ------------------------------------------

    def _attempt_confirm_prepared(self, hint: SCPStatement) -> bool:
        if self.phase != Phase.PREPARE or self.prepared is None:
            return False
        candidates = self._prepare_candidates(hint)
        new_h: SCPBallot | None = None
        index = 0
        for index, ballot in enumerate(candidates):  # noqa: B007 - c's search resumes at h's index
            if self.high is not None and _cmp_optional(self.high, ballot) >= 0:
                break
            if self._slot.federated_ratify(self.latest, _bind1(_has_prepared, ballot)):
                new_h = ballot
                break
        if new_h is None:
            return False
        new_c: SCPBallot | None = None
        b = self.current
        if (
            self.commit is None
            and (self.prepared is None or not less_and_incompatible(new_h, self.prepared))
            and (self.prepared_prime is None or not less_and_incompatible(new_h, self.prepared_prime))
        ):
            # Lowest c: walk down from h while the ballots stay confirmed
            # prepared and not below b.
            for ballot in candidates[index:]:
                if b is not None and _cmp_optional(ballot, b) < 0:
                    break
                if not less_and_compatible(ballot, new_h):
                    continue
                if self._slot.federated_ratify(self.latest, _bind1(_has_prepared, ballot)):
                    new_c = ballot
                else:
                    break
        return self._set_confirm_prepared(new_c, new_h)

    def _set_confirm_prepared(self, new_c: SCPBallot | None, new_h: SCPBallot) -> bool:
        did_work = False
        self.value_override = new_h.value
        # h and c only move when b is compatible with the new h.
        if self.current is None or compatible(self.current, new_h):
            if self.high is None or _cmp_optional(new_h, self.high) > 0:
                did_work = True
                self.high = new_h
            if new_c is not None and new_c.counter != 0:
                assert self.commit is None
                self.commit = new_c
                did_work = True
            if did_work:
                self._slot.driver.confirmed_ballot_prepared(self._slot.slot_index, new_h)
        did_work = self._update_current_if_needed(new_h) or did_work
        if did_work:
            self._emit_current_state()
        return did_work

    def _update_current_if_needed(self, h: SCPBallot) -> bool:
        """Step 8 of the paper: b must be at least h."""
        if self.current is None or _cmp_optional(self.current, h) < 0:
            self._bump_to_ballot(h, check=True)
            return True
        return False

    # -- step 3: accept commit ---------------------------------------------

    def _commit_boundaries(self, value: bytes) -> set[int]:
        result: set[int] = set()
        for pl in self.latest.distinct():
            if isinstance(pl, SCPPrepare):
                if pl.ballot.value == value and pl.n_c != 0:
                    result.add(pl.n_c)
                    result.add(pl.n_h)
            elif isinstance(pl, SCPConfirm):
                if pl.ballot.value == value:
                    result.add(pl.n_commit)
                    result.add(pl.n_h)
            elif isinstance(pl, SCPExternalize) and pl.commit.value == value:
                result.update((pl.commit.counter, pl.n_h, INFINITE))
        return result

    @staticmethod
    def _commit_hint(hint: SCPStatement, allow_prepare: bool) -> SCPBallot | None:
        """The ballot <nH, x> a hint suggests committing (None if it suggests none)."""
        pl = hint.pledges
        if isinstance(pl, SCPPrepare):
            return SCPBallot(pl.n_h, pl.ballot.value) if allow_prepare and pl.n_c != 0 else None
        if isinstance(pl, SCPConfirm):
            return SCPBallot(pl.n_h, pl.ballot.value)
        if isinstance(pl, SCPExternalize):
            return SCPBallot(pl.n_h, pl.commit.value)
        return None

    def _attempt_accept_commit(self, hint: SCPStatement) -> bool:
        if self.phase not in (Phase.PREPARE, Phase.CONFIRM):
            return False
        ballot = self._commit_hint(hint, allow_prepare=True)
        if ballot is None:
            return False
        if self.phase == Phase.CONFIRM:
            assert self.high is not None
            if not compatible(ballot, self.high):
                return False
        value = ballot.value
        boundaries = self._commit_boundaries(value)
        if not boundaries:
            return False

        def pred(low: int, high: int) -> bool:
            return self._slot.federated_accept(
                self.latest,
                lambda pl: _votes_commit(value, low, high, pl),
                lambda pl: _accepts_commit(value, low, high, pl),
            )

        low, high = _find_extended_interval(boundaries, pred)
        if low == 0:
            return False
        if self.phase == Phase.CONFIRM:
            assert self.high is not None
            if high <= self.high.counter:
                return False
        return self._set_accept_commit(SCPBallot(low, value), SCPBallot(high, value))

    def _set_accept_commit(self, c: SCPBallot, h: SCPBallot) -> bool:
        did_work = False
        self.value_override = h.value
        if self.high != h or self.commit != c:
            self.commit = c
            self.high = h
            did_work = True
        if self.phase == Phase.PREPARE:
            self.phase = Phase.CONFIRM
            if self.current is not None and not less_and_compatible(h, self.current):
                self._bump_to_ballot(h, check=False)
            self.prepared_prime = None
            did_work = True
        if did_work:
            self._update_current_if_needed(h)
            self._slot.driver.accepted_commit(self._slot.slot_index, h)
            self._emit_current_state()
        return did_work

    # -- step 4: confirm commit --------------------------------------------

    def _attempt_confirm_commit(self, hint: SCPStatement) -> bool:
        if self.phase != Phase.CONFIRM or self.high is None or self.commit is None:
            return False
        ballot = self._commit_hint(hint, allow_prepare=False)
        if ballot is None or not compatible(ballot, self.commit):
            return False
        value = ballot.value
        boundaries = self._commit_boundaries(value)

        def pred(low: int, high: int) -> bool:
            return self._slot.federated_ratify(self.latest, lambda pl: _accepts_commit(value, low, high, pl))

        low, high = _find_extended_interval(boundaries, pred)
        if low == 0:
            return False
        return self._set_confirm_commit(SCPBallot(low, value), SCPBallot(high, value))

    def _set_confirm_commit(self, c: SCPBallot, h: SCPBallot) -> bool:
        self.commit = c
        self.high = h
        self._update_current_if_needed(h)
        self.phase = Phase.EXTERNALIZE
        self._emit_current_state()
        self._slot.stop_nomination()
        self.stop_timer()
        self._slot.externalize(c.value)
        return True

    # -- step 5: counters --------------------------------------------------

    def _attempt_bump(self) -> bool:
        """If a v-blocking set is at a higher counter, jump to the lowest counter it no longer outruns."""
        if self.phase not in (Phase.PREPARE, Phase.CONFIRM):
            return False
        local = self.current.counter if self.current is not None else 0
        counters = [(statement_counter(pl), nodes) for pl, nodes in self.latest.groups()]

        def ahead_of(n: int) -> set[NodeID]:
            ahead: set[NodeID] = set()
            for c, nodes in counters:
                if c > n:
                    ahead |= nodes
            return ahead

        if not self._slot.is_v_blocking(ahead_of(local)):
            return False
        for target in sorted({c for c, _ in counters if c > local}):
            if not self._slot.is_v_blocking(ahead_of(target)):
                return self._abandon_ballot(target)
        return False

    def _abandon_ballot(self, n: int) -> bool:
        """Move to counter ``n`` (or b.n + 1 when n is 0) with the value the rules pick."""
        value = self._slot.latest_composite_candidate
        if not value and self.current is not None:
            value = self.current.value
        if not value:
            return False
        if n == 0:
            return self.bump_state(value, force=True)
        return self._bump_state_to(value, n)

    def bump_state(self, value: bytes, force: bool) -> bool:
        """Start balloting with ``value`` (no-op if already started unless ``force``)."""
        if not force and self.current is not None:
            return False
        n = self.current.counter + 1 if self.current is not None else 1
        return self._bump_state_to(value, n)

    def _bump_state_to(self, value: bytes, n: int) -> bool:
        if self.phase not in (Phase.PREPARE, Phase.CONFIRM):
            return False
        if n > INFINITE:
            return False
        # Value choice: h's (or a commit's) value once we have one, else ours.
        new_b = SCPBallot(n, self.value_override if self.value_override is not None else value)
        if not self._update_current_value(new_b):
            return False
        self._emit_current_state()
        self._check_heard_from_quorum()
        return True

    def _update_current_value(self, ballot: SCPBallot) -> bool:
        if self.phase not in (Phase.PREPARE, Phase.CONFIRM):
            return False
        if self.current is None:
            self._bump_to_ballot(ballot, check=True)
            self._check_invariants()
            return True
        if self.commit is not None and not compatible(self.commit, ballot):
            return False
        comp = _cmp_optional(self.current, ballot)
        if comp > 0:
            # Never move b down: we may already have sent statements above it.
            return False
        if comp < 0:
            self._bump_to_ballot(ballot, check=True)
            self._check_invariants()
            return True
        return False

    def _bump_to_ballot(self, ballot: SCPBallot, check: bool) -> None:
        if self.phase == Phase.EXTERNALIZE:
            raise ConsensusError("cannot change the ballot after externalizing")
        if check and self.current is not None and _cmp_optional(ballot, self.current) < 0:
            raise ConsensusError("ballot must move up only")
        if self.current is None:
            self._slot.driver.started_ballot_protocol(self._slot.slot_index, ballot)
        got_bumped = self.current is None or self.current.counter != ballot.counter
        self.current = ballot
        # Invariant h ~ b: an h of another value no longer applies, and c
        # exists only with h.
        if self.high is not None and not compatible(self.current, self.high):
            self.high = None
            self.commit = None
        if got_bumped:
            self.heard_from_quorum = False

    # -- timer -------------------------------------------------------------

    def _check_heard_from_quorum(self) -> None:
        """Arm the ballot timer once a quorum including us is at counter >= b.n.

        Statements only move forward, so once heard for a counter the answer
        cannot flip back until b.n changes (which clears the flag).
        """
        if self.current is None or self.heard_from_quorum:
            return
        n = self.current.counter

        def at_counter(pl: Pledges) -> bool:
            return not isinstance(pl, SCPPrepare) or n <= pl.ballot.counter

        if self._slot.federated_ratify(self.latest, at_counter):
            self.heard_from_quorum = True
            self._slot.driver.ballot_did_hear_from_quorum(self._slot.slot_index, self.current)
            if self.phase != Phase.EXTERNALIZE:
                self._start_timer()
        else:
            self.stop_timer()

    def _start_timer(self) -> None:
        assert self.current is not None
        timeout = self._slot.driver.compute_timeout(self.current.counter, False)
        self.timer_armed = True
        self._slot.driver.setup_timer(self._slot.slot_index, TimerId.BALLOT, timeout, self._timer_expired)

    def stop_timer(self) -> None:
        if self.timer_armed:
            self.timer_armed = False
            self._slot.driver.stop_timer(self._slot.slot_index, TimerId.BALLOT)

    def _timer_expired(self) -> None:
        self.timer_armed = False
        self._abandon_ballot(0)

    # -- emitting ----------------------------------------------------------

    def _create_statement(self) -> SCPStatement:
        self._check_invariants()
        local = self._slot.local_node
        if self.phase == Phase.PREPARE:
            b = self.current if self.current is not None else SCPBallot(0, b"")
            pledges: SCPPrepare | SCPConfirm | SCPExternalize = SCPPrepare(
                quorum_set_hash=local.quorum_set_hash,
                ballot=b,
                prepared=self.prepared,
                prepared_prime=self.prepared_prime,
                n_c=self.commit.counter if self.commit is not None else 0,
                n_h=self.high.counter if self.high is not None else 0,
            )
        elif self.phase == Phase.CONFIRM:
            assert self.current and self.prepared and self.commit and self.high
            pledges = SCPConfirm(
                ballot=self.current,
                n_prepared=self.prepared.counter,
                n_commit=self.commit.counter,
                n_h=self.high.counter,
                quorum_set_hash=local.quorum_set_hash,
            )
        else:
            assert self.commit and self.high
            pledges = SCPExternalize(
                commit=self.commit, n_h=self.high.counter, commit_quorum_set_hash=local.quorum_set_hash
            )
        return SCPStatement(local.node_id, self._slot.slot_index, pledges)

    def _emit_current_state(self) -> None:
        """Build our statement, feed it through our own processing, queue it for emission."""
        statement = self._create_statement()
        own = self.latest.get(statement.node_id)
        if own is not None and own.statement == statement:
            return  # e.g. h moved to another value with the same counter
        envelope = self._slot.create_envelope(statement)
        self._slot.process_envelope(envelope, self_envelope=True)
        if self.current is not None and (
            self.last_envelope is None or is_newer_ballot_statement(self.last_envelope.statement, statement)
        ):
            self.last_envelope = envelope
            self._send_latest_envelope()

    def _send_latest_envelope(self) -> None:
        """Emit our newest statement, only at the end of a cascade and only for validators."""
        if self._message_level != 0 or self.last_envelope is None or not self._slot.fully_validated:
            return
        if self.last_envelope is not self.last_envelope_emitted:
            self.last_envelope_emitted = self.last_envelope
            self._slot.driver.emit_envelope(self.last_envelope)

    def _check_invariants(self) -> None:
        if self.phase != Phase.PREPARE and not (self.current and self.prepared and self.commit and self.high):
            raise ConsensusError("CONFIRM/EXTERNALIZE without b, p, c and h")
        if self.current is not None and self.current.counter == 0:
            raise ConsensusError("b.n must not be 0")
        p, p_prime, b, h, c = self.prepared, self.prepared_prime, self.current, self.high, self.commit
        if p is not None and p_prime is not None and not less_and_incompatible(p_prime, p):
            raise ConsensusError("p' must be below p and incompatible with it")
        if h is not None and (b is None or not less_and_compatible(h, b)):
            raise ConsensusError("h must be below b and compatible with it")
        if c is not None and (h is None or not less_and_compatible(c, h)):
            raise ConsensusError("c must be below h and compatible with it")

    # -- restore and queries -----------------------------------------------

    def set_state_from_envelope(self, envelope: SCPEnvelope) -> None:
        """Adopt our own persisted statement as the current state, without emitting."""
        if self.current is not None:
            raise ConsensusError("cannot restore state after the ballot protocol started")
        st = envelope.statement
        if not is_sane_ballot_statement(st):
            raise ConsensusError("cannot restore from an insane ballot statement")
        self.latest.record(envelope)
        self.last_envelope = envelope
        self.last_envelope_emitted = envelope
        pl = st.pledges
        if isinstance(pl, SCPPrepare):
            b = pl.ballot
            self._bump_to_ballot(b, check=True)
            self.prepared = pl.prepared
            self.prepared_prime = pl.prepared_prime
            if pl.n_h:
                self.high = SCPBallot(pl.n_h, b.value)
                self.value_override = b.value
            if pl.n_c:
                self.commit = SCPBallot(pl.n_c, b.value)
            self.phase = Phase.PREPARE
        elif isinstance(pl, SCPConfirm):
            v = pl.ballot.value
            self._bump_to_ballot(pl.ballot, check=True)
            self.prepared = SCPBallot(pl.n_prepared, v)
            self.high = SCPBallot(pl.n_h, v)
            self.commit = SCPBallot(pl.n_commit, v)
            self.value_override = v
            self.phase = Phase.CONFIRM
        elif isinstance(pl, SCPExternalize):
            v = pl.commit.value
            self._bump_to_ballot(SCPBallot(INFINITE, v), check=True)
            self.prepared = SCPBallot(INFINITE, v)
            self.high = SCPBallot(pl.n_h, v)
            self.commit = pl.commit
            self.value_override = v
            self.phase = Phase.EXTERNALIZE
        self._check_invariants()

    def get_externalizing_state(self) -> list[SCPEnvelope]:
        if self.phase != Phase.EXTERNALIZE:
            return []
        assert self.commit is not None
        local_id = self._slot.local_node.node_id
        result = []
        for node, env in self.latest.items():
            if node != local_id:
                if working_ballot(env.statement).value == self.commit.value:
                    result.append(env)
            elif self._slot.fully_validated:
                result.append(env)
        return result

    def snapshot(self, value_str: Any) -> dict[str, Any]:
        def ballot(b: SCPBallot | None) -> list[Any] | None:
            return None if b is None else [b.counter, value_str(b.value)]

        return {
            "phase": self.phase.name,
            "b": ballot(self.current),
            "p": ballot(self.prepared),
            "p_prime": ballot(self.prepared_prime),
            "h": ballot(self.high),
            "c": ballot(self.commit),
            "heard_from_quorum": self.heard_from_quorum,
            "heard_from": sorted(str(n) for n in self.latest),
        }


def _bind1(fn: Any, ballot: SCPBallot) -> PledgePredicate:
    def predicate(pl: Pledges) -> bool:
        return bool(fn(ballot, pl))

    return predicate
