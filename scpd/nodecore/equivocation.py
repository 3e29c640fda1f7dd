"""Equivocation: two statements of one node for one slot that cannot both be honest.

Theory of operation
-------------------
An honest node's statements for a slot form a chain under the draft's
ordering (section 3): each NOMINATE's votes and accepted values are supersets
of the previous one's, and each ballot statement is newer than the last
(``is_newer_ballot_statement``) and keeps the protocol's monotone facts. Two
statements that break this cannot come from one honest node, whatever order
the network delivered them in:

* two NOMINATEs neither of which is newer than the other (neither's votes and
  accepted contain the other's);
* two different ballot statements of the same rank (neither newer, e.g. two
  EXTERNALIZEs, or two PREPAREs with the same ballots but other counters);
* a CONFIRM or EXTERNALIZE for value x and a newer statement for another
  value (a node that accepted a commit never leaves its value);
* two PREPAREs where the newer one's prepared ballot p is below the older
  one's (p never goes down).

The rules are deliberately conservative: a report must be proof, never a
guess, because the operator may show it to others. The evidence is the two
signed envelopes, checkable by anyone with the node's public key.

:class:`EquivocationDetector` keeps, per (node, slot, phase), the newest
statement seen (only for trusted, signature-checked envelopes, so memory is
bounded by the trusted quorum times the slots in the window), reports the
first contradiction per (node, slot), and keeps a bounded list of evidence.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import base64
from collections import deque
from dataclasses import dataclass

from scpd.base.types import NodeID, SCPConfirm, SCPEnvelope, SCPExternalize, SCPNomination, SCPPrepare, SCPStatement
from scpd.scp.ballot import is_newer_ballot_statement, working_ballot
from scpd.scp.nomination import is_newer_nomination

__all__ = ["Equivocation", "EquivocationDetector", "contradicts", "is_newer_statement"]

DEFAULT_MAX_EVIDENCE = 64
DEFAULT_MAX_EVIDENCE_PER_NODE = 4


@dataclass(frozen=True, slots=True)
class Equivocation:
    """Proof that ``node`` said two incompatible things about ``slot``."""

    node: NodeID
    slot: int
    first: SCPEnvelope
    second: SCPEnvelope

    def to_json(self) -> dict[str, object]:
        """The evidence as the admin API serves it: both envelopes as base64 XDR."""
        return {
            "node": str(self.node),
            "slot": self.slot,
            "envelopes": [base64.b64encode(e.to_xdr()).decode("ascii") for e in (self.first, self.second)],
        }


def contradicts(a: SCPStatement, b: SCPStatement) -> bool:
    """True when one honest node cannot have made both statements (same node, same slot, same phase)."""
    if a == b:
        return False
    pa, pb = a.pledges, b.pledges
    if isinstance(pa, SCPNomination) and isinstance(pb, SCPNomination):
        return not (is_newer_nomination(pa, pb) or is_newer_nomination(pb, pa))
    if is_newer_ballot_statement(a, b):
        old, new = a, b
    elif is_newer_ballot_statement(b, a):
        old, new = b, a
    else:
        return True  # same rank, different content
    po, pn = old.pledges, new.pledges
    if isinstance(po, SCPConfirm | SCPExternalize):
        return working_ballot(new).value != working_ballot(old).value
    if isinstance(po, SCPPrepare) and isinstance(pn, SCPPrepare) and po.prepared is not None:
        return pn.prepared is None or (pn.prepared.counter, pn.prepared.value) < (
            po.prepared.counter,
            po.prepared.value,
        )
    return False


class EquivocationDetector:
    """Watches one node's view of everyone's statements; reports each equivocating (node, slot) once."""

    def __init__(
        self, max_evidence: int = DEFAULT_MAX_EVIDENCE, max_per_node: int = DEFAULT_MAX_EVIDENCE_PER_NODE
    ) -> None:
        self._max_per_node = max_per_node
        self._newest: dict[tuple[NodeID, int, bool], SCPEnvelope] = {}
        self._reported: set[tuple[NodeID, int]] = set()
        # Equivocating (node, slot) pairs found per node: only trusted nodes are observed, so bounded.
        self.counts: dict[NodeID, int] = {}
        self.evidence: deque[Equivocation] = deque(maxlen=max_evidence)

    @property
    def nodes(self) -> set[NodeID]:
        """Nodes caught equivocating (at least once since start)."""
        return set(self.counts)

    def observe(self, envelope: SCPEnvelope) -> Equivocation | None:
        """Record a signature-checked statement; the evidence if it contradicts one seen before."""
        st = envelope.statement
        nomination = isinstance(st.pledges, SCPNomination)
        key = (st.node_id, st.slot_index, nomination)
        held = self._newest.get(key)
        if held is None:
            self._newest[key] = envelope
            return None
        if contradicts(held.statement, st):
            return self._report(held, envelope)
        if is_newer_statement(held.statement, st):
            self._newest[key] = envelope
        return None

    def forget_below(self, slot: int) -> None:
        """Drop what is held for slots below ``slot`` (the evidence stays)."""
        for key in [k for k in self._newest if k[1] < slot]:
            del self._newest[key]
        self._reported = {r for r in self._reported if r[1] >= slot}

    def _report(self, first: SCPEnvelope, second: SCPEnvelope) -> Equivocation | None:
        node, slot = first.statement.node_id, first.statement.slot_index
        if (node, slot) in self._reported:
            return None
        self._reported.add((node, slot))
        self.counts[node] = self.counts.get(node, 0) + 1
        found = Equivocation(node, slot, first, second)
        mine = [e for e in self.evidence if e.node == node]
        if len(mine) >= self._max_per_node:
            self.evidence.remove(mine[0])
        self.evidence.append(found)
        return found


def is_newer_statement(old: SCPStatement, new: SCPStatement) -> bool:
    """Whether ``new`` supersedes ``old`` (same node, slot and phase): stellar-core's isNewerStatement."""
    po, pn = old.pledges, new.pledges
    if isinstance(po, SCPNomination) and isinstance(pn, SCPNomination):
        return is_newer_nomination(po, pn)
    return is_newer_ballot_statement(old, new)
