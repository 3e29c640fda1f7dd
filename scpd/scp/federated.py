"""Federated voting over the latest statement of each node.

Theory of operation
-------------------
Both phases decide with the same two questions (Simplified SCP, "Federated
voting"), asked over the latest statement of each node:

* *accept* a statement when a v-blocking set claims to accept it, or when a
  quorum including us votes for it or accepts it;
* *ratify* (confirm) it when a quorum including us accepts it.

A quorum is found as the greatest fixpoint of "drop every node whose own
slices are not satisfied by the remaining nodes", then checked against the
local node's quorum set. Each node's quorum set comes from its statement (the
hash it names, or the singleton {node} for EXTERNALIZE, which the draft
defines as valid for every quorum, so such a node is never dropped); a node
whose set is unknown counts in no quorum.

This is the innermost loop of the whole daemon: every received envelope runs
several of these questions. Two facts keep it cheap. Nodes that agree send
identical pledges, so :class:`LatestStatements` groups nodes by pledges and a
predicate is evaluated once per distinct pledge, not once per node. And few
distinct quorum sets exist, so each fixpoint round evaluates one slice
predicate per distinct set (``QuorumSetCache`` hands out one shared object
per hash, which makes grouping by identity sound).

The predicates themselves are ``scpd.base.quorum``'s (``SlicePredicate``,
its compiled form); only the quorum search is written again here, because
grouping nodes by statement and by quorum set is what makes it fast. The
test suite checks that it agrees with ``scpd.base.quorum.is_quorum``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, ItemsView, Iterator
from typing import TYPE_CHECKING

from scpd.base.quorum import SlicePredicate, sanity_violations
from scpd.base.types import (
    NodeID,
    Pledges,
    SCPConfirm,
    SCPEnvelope,
    SCPExternalize,
    SCPNomination,
    SCPPrepare,
    SCPQuorumSet,
)

if TYPE_CHECKING:
    from scpd.scp.driver import Driver
    from scpd.scp.local_node import LocalNode

__all__ = [
    "LatestStatements",
    "PledgePredicate",
    "QuorumSetCache",
    "federated_accept",
    "federated_ratify",
    "is_quorum",
]

PledgePredicate = Callable[[Pledges], bool]


class LatestStatements:
    """The latest envelope of each node for one phase, also grouped by identical pledges.

    Node IDs go through ``intern`` so that every set of nodes holds the same
    objects as the compiled quorum sets: set operations then compare by
    identity instead of calling the dataclass ``__eq__``.
    """

    __slots__ = ("_envelopes", "_groups", "_intern")

    def __init__(self, intern: Callable[[NodeID], NodeID]) -> None:
        self._intern = intern
        self._envelopes: dict[NodeID, SCPEnvelope] = {}
        self._groups: dict[Pledges, set[NodeID]] = {}

    def record(self, envelope: SCPEnvelope) -> None:
        """Make ``envelope`` its sender's latest (the caller checked it is newer)."""
        st = envelope.statement
        node = self._intern(st.node_id)
        old = self._envelopes.get(node)
        if old is not None:
            group = self._groups[old.statement.pledges]
            group.discard(node)
            if not group:
                del self._groups[old.statement.pledges]
        self._envelopes[node] = envelope
        self._groups.setdefault(st.pledges, set()).add(node)

    def get(self, node: NodeID) -> SCPEnvelope | None:
        return self._envelopes.get(node)

    def __contains__(self, node: object) -> bool:
        return node in self._envelopes

    def __len__(self) -> int:
        return len(self._envelopes)

    def __iter__(self) -> Iterator[NodeID]:
        return iter(self._envelopes)

    def items(self) -> ItemsView[NodeID, SCPEnvelope]:
        return self._envelopes.items()

    def groups(self) -> ItemsView[Pledges, set[NodeID]]:
        """Distinct pledges and the nodes whose latest statement they are."""
        return self._groups.items()

    def distinct(self) -> Collection[Pledges]:
        return self._groups.keys()

    def nodes_where(self, predicate: PledgePredicate) -> set[NodeID]:
        """The nodes whose latest pledges satisfy ``predicate``."""
        result: set[NodeID] = set()
        for pledges, nodes in self._groups.items():
            if predicate(pledges):
                result |= nodes
        return result


class QuorumSetCache:
    """Quorum sets by hash, shared by every slot of one ``SCP``.

    Asks the driver once per hash and keeps only the sets it found, so a
    set that was unknown is looked up again next time (it may have been
    fetched since). Sanity verdicts are cached with the set. The cache is
    cleared wholesale past ``limit`` entries, which bounds its memory.
    """

    def __init__(self, driver: Driver, local_node: LocalNode, limit: int = 4096) -> None:
        self._driver = driver
        self._local = local_node
        self._limit = limit
        self._by_hash: dict[bytes, SCPQuorumSet] = {}
        self._sane: dict[int, tuple[SCPQuorumSet, bool]] = {}
        self._compiled: dict[int, tuple[SCPQuorumSet, SlicePredicate]] = {}
        self._nodes: dict[NodeID, NodeID] = {}

    def by_hash(self, qset_hash: bytes) -> SCPQuorumSet | None:
        if qset_hash == self._local.quorum_set_hash:
            return self._local.quorum_set
        qset = self._by_hash.get(qset_hash)
        if qset is None:
            qset = self._driver.get_quorum_set(qset_hash)
            if qset is not None:
                if len(self._by_hash) >= self._limit:
                    self._by_hash.clear()
                self._by_hash[qset_hash] = qset
        return qset

    def of_pledges(self, pledges: Pledges) -> SCPQuorumSet | None:
        """The quorum set a (non-EXTERNALIZE) statement names, if known."""
        if isinstance(pledges, SCPPrepare | SCPConfirm | SCPNomination):
            return self.by_hash(pledges.quorum_set_hash)
        return None

    def compiled(self, qset: SCPQuorumSet) -> SlicePredicate:
        """The fast predicate of ``qset`` (cached per object, which the cache makes one per hash)."""
        entry = self._compiled.get(id(qset))
        if entry is None or entry[0] is not qset:
            if len(self._compiled) >= self._limit:
                self._compiled.clear()
            entry = self._compiled[id(qset)] = (qset, SlicePredicate(qset, self.intern))
        return entry[1]

    def intern(self, node: NodeID) -> NodeID:
        """One shared object per node ID (see ``LatestStatements``)."""
        found = self._nodes.get(node)
        if found is None:
            if len(self._nodes) >= 16 * self._limit:
                # Forgetting is safe (equality still holds), only slower.
                self._nodes.clear()
            found = self._nodes[node] = node
        return found

    def is_sane(self, qset: SCPQuorumSet) -> bool:
        entry = self._sane.get(id(qset))
        if entry is None or entry[0] is not qset:
            if len(self._sane) >= self._limit:
                self._sane.clear()
            entry = self._sane[id(qset)] = (qset, not sanity_violations(qset))
        return entry[1]


def is_quorum(local_qset: SCPQuorumSet, nodes: set[NodeID], latest: LatestStatements, qsets: QuorumSetCache) -> bool:
    """True when ``nodes`` (senders in ``latest``) contain a quorum satisfying ``local_qset``.

    Same answer as ``scpd.base.quorum.is_quorum`` with each node's quorum set
    taken from its statement; faster, as the module docstring explains: the
    fixpoint drops whole groups of nodes that name one quorum set, and tests
    one slice predicate per group instead of one per node.
    """
    local = qsets.compiled(local_qset)
    if not local.satisfied_by(nodes):
        return False
    members = set(nodes)
    # Members grouped by the quorum set their statement names. EXTERNALIZE
    # senders use {self}, always satisfied while they are members: no group.
    by_qset: dict[int, tuple[SlicePredicate, set[NodeID]]] = {}
    for pledges, senders in latest.groups():
        if isinstance(pledges, SCPExternalize):
            continue
        in_members = senders & members
        if not in_members:
            continue
        qset = qsets.of_pledges(pledges)
        if qset is None:
            members -= in_members
            continue
        entry = by_qset.get(id(qset))
        if entry is None:
            by_qset[id(qset)] = (qsets.compiled(qset), in_members)
        else:
            entry[1].update(in_members)
    groups = list(by_qset.values())
    # Bounded: every pass that does not return empties at least one group.
    while True:
        if not local.satisfied_by(members):
            return False
        dropped = False
        for predicate, group in groups:
            if group and not predicate.satisfied_by(members):
                members -= group
                group.clear()
                dropped = True
        if not dropped:
            return True


def federated_accept(
    local_qset: SCPQuorumSet,
    latest: LatestStatements,
    qsets: QuorumSetCache,
    voted: PledgePredicate,
    accepted: PledgePredicate,
) -> bool:
    """Accept: a v-blocking set accepted, or a quorum voted-or-accepted."""
    accepting = latest.nodes_where(accepted)
    if qsets.compiled(local_qset).blocked_by(accepting):
        return True
    supporting = accepting | latest.nodes_where(voted)
    return is_quorum(local_qset, supporting, latest, qsets)


def federated_ratify(
    local_qset: SCPQuorumSet, latest: LatestStatements, qsets: QuorumSetCache, voted: PledgePredicate
) -> bool:
    """Ratify: a quorum (including us, through our own statement) voted for it."""
    return is_quorum(local_qset, latest.nodes_where(voted), latest, qsets)
