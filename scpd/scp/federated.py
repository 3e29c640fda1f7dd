"""Federated voting over the latest statement of each node.

Theory of operation
-------------------
Both phases decide with the same two questions (Simplified SCP, "Federated
voting"), asked over a map node -> latest statement:

* *accept* a statement when a v-blocking set claims to accept it, or when a
  quorum including us votes for it or accepts it;
* *ratify* (confirm) it when a quorum including us accepts it.

A quorum is found as the greatest fixpoint of "drop every node whose own
slices are not satisfied by the remaining nodes", then checked against the
local node's quorum set. Each node's quorum set comes from its statement (the
hash it names, or the singleton {node} for EXTERNALIZE, which the draft
defines as valid for every quorum); a node whose set is unknown counts in no
quorum.

This is the innermost loop of the whole daemon (every received envelope runs
several of these), so the quorum search groups nodes by quorum-set object:
with the usual few distinct sets in a network, each fixpoint round evaluates
a handful of slice predicates instead of one per node. Statements' quorum
sets are resolved through ``QsetResolver``, which returns one shared object
per hash, and that is what makes the grouping by identity sound.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING

from scpd.base.quorum import is_quorum_slice, is_v_blocking, sanity_violations, singleton_quorum_set
from scpd.base.types import (
    NodeID,
    SCPConfirm,
    SCPEnvelope,
    SCPExternalize,
    SCPNomination,
    SCPPrepare,
    SCPQuorumSet,
    SCPStatement,
)

if TYPE_CHECKING:
    from scpd.scp.driver import Driver
    from scpd.scp.local_node import LocalNode

__all__ = [
    "QsetResolver",
    "QuorumSetCache",
    "StatementPredicate",
    "federated_accept",
    "federated_ratify",
    "is_quorum",
    "nodes_where",
]

StatementPredicate = Callable[[SCPStatement], bool]
QsetResolver = Callable[[SCPStatement], SCPQuorumSet | None]


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
        self._singletons: dict[NodeID, SCPQuorumSet] = {}
        self._sane: dict[int, tuple[SCPQuorumSet, bool]] = {}

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

    def of_statement(self, st: SCPStatement) -> SCPQuorumSet | None:
        """The statement's quorum set: the one it names, or {sender} for EXTERNALIZE."""
        pl = st.pledges
        if isinstance(pl, SCPExternalize):
            single = self._singletons.get(st.node_id)
            if single is None:
                if len(self._singletons) >= self._limit:
                    self._singletons.clear()
                single = self._singletons[st.node_id] = singleton_quorum_set(st.node_id)
            return single
        if isinstance(pl, SCPPrepare | SCPConfirm | SCPNomination):
            return self.by_hash(pl.quorum_set_hash)
        return None

    def is_sane(self, qset: SCPQuorumSet) -> bool:
        entry = self._sane.get(id(qset))
        if entry is None or entry[0] is not qset:
            if len(self._sane) >= self._limit:
                self._sane.clear()
            entry = self._sane[id(qset)] = (qset, not sanity_violations(qset))
        return entry[1]


def nodes_where(envelopes: Mapping[NodeID, SCPEnvelope], predicate: StatementPredicate) -> set[NodeID]:
    """The nodes whose latest statement satisfies ``predicate``."""
    return {node for node, env in envelopes.items() if predicate(env.statement)}


def is_quorum(
    local_qset: SCPQuorumSet,
    nodes: Collection[NodeID],
    envelopes: Mapping[NodeID, SCPEnvelope],
    qset_of: QsetResolver,
) -> bool:
    """True when ``nodes`` contains a quorum that satisfies ``local_qset``.

    Same answer as ``scpd.base.quorum.is_quorum``, faster: it fails early
    when even the local slice is missing and evaluates each distinct quorum
    set once per fixpoint round.
    """
    if not is_quorum_slice(local_qset, nodes):
        return False
    members = set(nodes)
    qsets: dict[NodeID, SCPQuorumSet | None] = {n: qset_of(envelopes[n].statement) for n in members}
    while True:
        verdicts: dict[int, bool] = {}
        dropped = []
        for node in members:
            qset = qsets[node]
            if qset is None:
                dropped.append(node)
                continue
            key = id(qset)
            ok = verdicts.get(key)
            if ok is None:
                ok = verdicts[key] = is_quorum_slice(qset, members)
            if not ok:
                dropped.append(node)
        if not dropped:
            return True
        members.difference_update(dropped)
        if not is_quorum_slice(local_qset, members):
            return False


def federated_accept(
    local_qset: SCPQuorumSet,
    envelopes: Mapping[NodeID, SCPEnvelope],
    qset_of: QsetResolver,
    voted: StatementPredicate,
    accepted: StatementPredicate,
) -> bool:
    """Accept: a v-blocking set accepted, or a quorum voted-or-accepted."""
    accepting = nodes_where(envelopes, accepted)
    if is_v_blocking(local_qset, accepting):
        return True
    supporting = accepting | nodes_where(envelopes, voted)
    return is_quorum(local_qset, supporting, envelopes, qset_of)


def federated_ratify(
    local_qset: SCPQuorumSet,
    envelopes: Mapping[NodeID, SCPEnvelope],
    qset_of: QsetResolver,
    voted: StatementPredicate,
) -> bool:
    """Ratify: a quorum (including us, through our own statement) voted for it."""
    return is_quorum(local_qset, nodes_where(envelopes, voted), envelopes, qset_of)
