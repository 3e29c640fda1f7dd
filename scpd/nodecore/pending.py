"""Envelopes for future slots wait here until their slot is the one being decided.

Theory of operation
-------------------
A value names a tx set that builds on the previous ledger, so a value for
slot ``s`` can only be judged once ledger ``s - 1`` is written. Handing the
core a statement it cannot judge is what let one signed PREPARE with an
unjudgeable value from any key switch a future slot into watch-only mode
(the core's ``fully_validated`` flag). So, like stellar-core's
``PendingEnvelopes`` (processed "up to the next ledger"), the herder keeps
statements for slots after the current one here, and takes a slot's
statements out only when that slot becomes current; then it fetches what
they reference and hands them to the core, where every value is judged
FULLY_VALID or INVALID.

Only the newest statement per (node, slot, phase) is worth keeping (SCP
statements supersede each other), so a newer one replaces the held one and
an older or equal one is dropped. Bounds, all checked before anything is
stored:

* per signer: ``per_node`` envelopes and ``per_node_bytes`` bytes, so one
  node, even a faulty member of our quorum, can fill only its own share;
* in total: ``total`` envelopes and ``total_bytes`` bytes. When full, an
  envelope for a nearer slot evicts one of the farthest slot (the nearer
  slot is needed first); otherwise the newcomer is refused.

Pure: no I/O, no clock. The caller passes each envelope's encoded size.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from scpd.base.types import NodeID, SCPEnvelope, SCPNomination
from scpd.nodecore.equivocation import is_newer_statement

__all__ = ["Held", "PendingEnvelopes", "PendingLimits", "PendingOutcome"]


@dataclass(frozen=True, slots=True)
class PendingLimits:
    per_node: int = 64
    per_node_bytes: int = 1 << 20
    total: int = 4096
    total_bytes: int = 16 << 20


class PendingOutcome(Enum):
    HELD = "held"  # new, or newer than what the node had for that slot and phase
    STALE = "stale"  # not newer than the held statement (or the same)
    NODE_FULL = "node_full"  # the signer used up its share
    FULL = "full"  # every slot held is nearer than this one and the total is used up


@dataclass(frozen=True, slots=True)
class Held:
    """One waiting envelope, with who sent it (to fetch its tx sets from) and its size."""

    envelope: SCPEnvelope
    origin: NodeID
    size: int


_Key = tuple[int, NodeID, bool]


class PendingEnvelopes:
    """Future-slot envelopes by slot, bounded per signer and in total (count and bytes)."""

    def __init__(self, limits: PendingLimits | None = None) -> None:
        self.limits = limits if limits is not None else PendingLimits()
        self._held: dict[_Key, Held] = {}
        self._per_node: dict[NodeID, tuple[int, int]] = {}
        self.total_bytes = 0

    def __len__(self) -> int:
        return len(self._held)

    def slots(self) -> list[int]:
        return sorted({k[0] for k in self._held})

    def add(self, envelope: SCPEnvelope, size: int, origin: NodeID) -> PendingOutcome:
        st = envelope.statement
        key = (st.slot_index, st.node_id, isinstance(st.pledges, SCPNomination))
        old = self._held.get(key)
        if old is not None and not is_newer_statement(old.envelope.statement, st):
            return PendingOutcome.STALE
        freed = (1, old.size) if old is not None else (0, 0)
        count, used = self._per_node.get(st.node_id, (0, 0))
        lim = self.limits
        if count - freed[0] + 1 > lim.per_node or used - freed[1] + size > lim.per_node_bytes:
            return PendingOutcome.NODE_FULL
        if old is not None:
            self._remove(key)
        while len(self._held) + 1 > lim.total or self.total_bytes + size > lim.total_bytes:
            farthest = max(self._held, default=None, key=lambda k: k[0])
            if farthest is None or farthest[0] <= st.slot_index:
                return PendingOutcome.FULL
            self._remove(farthest)
        self._held[key] = Held(envelope, origin, size)
        count, used = self._per_node.get(st.node_id, (0, 0))
        self._per_node[st.node_id] = (count + 1, used + size)
        self.total_bytes += size
        return PendingOutcome.HELD

    def take(self, slot: int) -> list[Held]:
        """Remove and return the envelopes of ``slot`` (oldest first), dropping every slot below it."""
        out = [h for k, h in self._held.items() if k[0] == slot]
        for key in [k for k in self._held if k[0] <= slot]:
            self._remove(key)
        return out

    def _remove(self, key: _Key) -> None:
        held = self._held.pop(key)
        count, used = self._per_node[key[1]]
        if count == 1:
            del self._per_node[key[1]]
        else:
            self._per_node[key[1]] = (count - 1, used - held.size)
        self.total_bytes -= held.size
