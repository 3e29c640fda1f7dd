"""Who we listen to: the transitive closure of our quorum set.

Theory of operation
-------------------
SCP lets anyone run a node and connect, but only the nodes our quorum depends
on can influence what we decide: our quorum set, the quorum sets of its
members, theirs, and so on (stellar-core's ``QuorumTracker``). A statement
from any other key can never be part of a quorum or a v-blocking set of
ours, so the herder drops it before spending a signature check on it, and it
can neither steer a slot nor our idea of the network's slot, nor be kept as
a ledger proof, nor make us fetch anything.

Bootstrapping: at first we know only our own quorum set, so the closure is
us and our validators (distance 1). A member's statement names its quorum
set by hash; once that set is fetched and the statement accepted, the herder
calls :meth:`TrustedQuorum.note` and the closure grows by the member's
validators (distance 2), and so on. A node in the closure whose quorum set we
do not know yet is a leaf: trusted, but it adds nobody.

A node that declares a new quorum set may shrink the closure, so every change
recomputes it breadth-first from the local node (closest nodes first), which
also drops the declarations of nodes no longer in it: memory is bounded by
the closure, and the closure by ``max_nodes`` (a faulty member could name
thousands of keys of its own; the nearest ones are kept).

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import deque

from scpd.base.quorum import all_validators, quorum_set_hash
from scpd.base.types import NodeID, SCPQuorumSet

__all__ = ["DEFAULT_MAX_TRUSTED", "TrustedQuorum"]

DEFAULT_MAX_TRUSTED = 10_000


class TrustedQuorum:
    """The nodes reachable from the local node through the quorum sets we know, with their distance."""

    def __init__(self, local: NodeID, quorum_set: SCPQuorumSet, max_nodes: int = DEFAULT_MAX_TRUSTED) -> None:
        self.local = local
        self.max_nodes = max_nodes
        self._declared: dict[NodeID, tuple[bytes, SCPQuorumSet]] = {local: (quorum_set_hash(quorum_set), quorum_set)}
        self._distance: dict[NodeID, int] = {}
        self._rebuild()

    def __contains__(self, node: object) -> bool:
        return node in self._distance

    def __len__(self) -> int:
        return len(self._distance)

    def distance(self, node: NodeID) -> int | None:
        """Hops from the local node (0 for it, 1 for its validators), or None when not trusted."""
        return self._distance.get(node)

    def quorum_set_of(self, node: NodeID) -> SCPQuorumSet | None:
        """The quorum set ``node`` last declared, if it is trusted and we know it."""
        declared = self._declared.get(node)
        return None if declared is None else declared[1]

    def note(self, node: NodeID, qset: SCPQuorumSet, qset_hash: bytes | None = None) -> bool:
        """``node`` declared ``qset`` in a statement we accepted; True when the closure changed.

        Declarations of nodes outside the closure are ignored (they cannot
        matter to us, and keeping them would let strangers fill our memory).
        This runs for every accepted envelope, so the caller passes the hash
        the statement names (``qset_hash``) rather than have it computed again.
        """
        distance = self._distance.get(node)
        if distance is None or node == self.local:
            return False
        h = quorum_set_hash(qset) if qset_hash is None else qset_hash
        known = self._declared.get(node)
        if known is not None and known[0] == h:
            return False
        self._declared[node] = (h, qset)
        if known is None and all(self._distance.get(m, distance + 2) <= distance + 1 for m in all_validators(qset)):
            # A first declaration naming only nodes already reached at most one hop further: the
            # breadth-first walk would visit the same nodes at the same distances (the usual case,
            # each validator of a well-connected quorum declaring its set once).
            return False
        before = self._distance
        self._rebuild()
        return self._distance != before

    def _rebuild(self) -> None:
        distance: dict[NodeID, int] = {self.local: 0}
        frontier: deque[NodeID] = deque([self.local])
        while frontier and len(distance) < self.max_nodes:
            node = frontier.popleft()
            declared = self._declared.get(node)
            if declared is None:
                continue
            # Sorted so that which nodes make the cut at max_nodes does not depend on set order.
            for member in sorted(all_validators(declared[1]), key=lambda n: n.ed25519):
                if member not in distance and len(distance) < self.max_nodes:
                    distance[member] = distance[node] + 1
                    frontier.append(member)
        self._distance = distance
        self._declared = {n: d for n, d in self._declared.items() if n in distance}
