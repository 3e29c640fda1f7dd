"""What a node needs to know about its own quorum configuration.

``check_local_quorum`` is the entry point for ``scpd check-config`` and node
start-up: given the local node's quorum set and the quorum sets it knows for
other validators, it answers three questions an operator must not get wrong:
does the network enjoy quorum intersection (and if not, which two quorums
could agree on different values), is the local node in any quorum at all, and
can one node, or one organisation, failing on its own leave the local node
without a quorum (so that it halts).

Validators whose quorum set is unknown are, by default, treated as never
available (the cautious reading for liveness). With ``unknown_like_local``
they are assumed to use the local node's quorum set, which is the usual state
at start-up, before any peer was heard: the check then says whether the
configuration is sound if everyone it names thinks alike.

Pure: no I/O. The cost grows with the size of the network the node knows
about; call it off the event loop (``loop.run_in_executor``) in the daemon.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from scpd.analysis.engine import Engine
from scpd.analysis.fbas import Fbas, Node, QSet
from scpd.analysis.quorums import Budget, SearchTooLarge, disjoint_quorums
from scpd.base.types import NodeID, SCPQuorumSet

__all__ = ["LocalReport", "check_local_quorum", "qset_from_scp"]


@dataclass(frozen=True)
class LocalReport:
    intersection: bool | None  # every two quorums share a node (None: not known, the search ran out of budget)
    evidence: tuple[frozenset[NodeID], frozenset[NodeID]] | None  # two disjoint quorums, if any
    in_quorum: bool  # the local node belongs to some quorum
    blocking_nodes: tuple[NodeID, ...]  # each alone, failing, leaves the local node without a quorum
    blocking_orgs: tuple[str, ...]  # likewise for whole organisations
    unknown: tuple[NodeID, ...]  # validators named whose quorum sets were not given

    @property
    def ok(self) -> bool:
        return self.intersection is True and self.in_quorum and not self.blocking_nodes and not self.blocking_orgs

    def problems(self, label: Callable[[NodeID], str] = str) -> list[str]:
        """One readable line per problem, empty when ``ok``; ``label`` names a node."""
        out: list[str] = []
        if not self.in_quorum:
            out.append("the local node is in no quorum: it can never externalize a value")
        if self.evidence is not None:
            a, b = (", ".join(sorted(label(n) for n in q)) for q in self.evidence)
            out.append(f"no quorum intersection: {{{a}}} and {{{b}}} are disjoint quorums")
        elif self.intersection is None:
            out.append("quorum intersection not known: the network is too large to search within the budget")
        elif not self.intersection and self.in_quorum:
            out.append("no quorum intersection")
        if self.blocking_nodes:
            names = ", ".join(label(n) for n in self.blocking_nodes)
            out.append(f"a single node failing halts the local node: {names}")
        if self.blocking_orgs:
            out.append(f"a single organisation failing halts the local node: {', '.join(self.blocking_orgs)}")
        return out


def qset_from_scp(qset: SCPQuorumSet) -> QSet:
    return QSet(
        qset.threshold,
        tuple(str(v) for v in qset.validators),
        tuple(qset_from_scp(q) for q in qset.inner_sets),
    )


def check_local_quorum(
    local_node: NodeID,
    local_qset: SCPQuorumSet,
    known: Mapping[NodeID, SCPQuorumSet],
    orgs: Mapping[NodeID, str] | None = None,
    unknown_like_local: bool = False,
    budget: Budget | None = None,
) -> LocalReport:
    """Analyse the network made of the local node, the known validators and those they name.

    With a ``budget``, an intersection search that runs past it leaves ``intersection`` None.
    """
    qsets: dict[str, QSet | None] = {str(n): qset_from_scp(q) for n, q in known.items()}
    local_key = str(local_node)
    qsets[local_key] = qset_from_scp(local_qset)
    ids: dict[str, NodeID] = {str(n): n for n in known}
    ids[local_key] = local_node
    unknown: list[NodeID] = []
    for qset in list(qsets.values()):
        for v in _scp_validators(qset):
            key = str(v)
            ids.setdefault(key, v)
            if key not in qsets:
                unknown.append(v)
    for v in unknown:
        qsets.setdefault(str(v), qsets[local_key] if unknown_like_local else None)
    keys = [local_key, *sorted(k for k in qsets if k != local_key)]
    fbas = Fbas(tuple(Node(k, qsets[k]) for k in keys))
    engine = Engine.build(fbas)
    local_bit = engine.from_original({0})

    def survives(failed: int) -> bool:
        return engine.max_quorum(engine.capable & ~failed) & local_bit != 0

    in_quorum = survives(0)
    searched = True
    try:
        pair = disjoint_quorums(engine, budget=budget)
    except SearchTooLarge:
        pair, searched = None, False
    evidence = None
    if pair is not None:
        evidence = (_node_ids(engine, pair[0], keys, ids), _node_ids(engine, pair[1], keys, ids))
    blocking_nodes: list[NodeID] = []
    if in_quorum:
        for i, key in enumerate(keys[1:], start=1):
            if not survives(engine.from_original({i})):
                blocking_nodes.append(ids[key])
    blocking_orgs: list[str] = []
    if in_quorum and orgs:
        members: dict[str, set[int]] = {}
        for i, key in enumerate(keys):
            org = orgs.get(ids[key])
            if org is not None and i != 0:
                members.setdefault(org, set()).add(i)
        blocking_orgs = sorted(o for o, nodes in members.items() if not survives(engine.from_original(nodes)))
    return LocalReport(
        intersection=(engine.max_quorum(engine.capable) != 0 and pair is None) if searched else None,
        evidence=evidence,
        in_quorum=in_quorum,
        blocking_nodes=tuple(blocking_nodes),
        blocking_orgs=tuple(blocking_orgs),
        unknown=tuple(dict.fromkeys(unknown)),
    )


def _scp_validators(qset: QSet | None) -> list[NodeID]:
    if qset is None:
        return []
    return [NodeID.from_strkey(k) for k in sorted(qset.names())]


def _node_ids(engine: Engine, mask: int, keys: list[str], ids: Mapping[str, NodeID]) -> frozenset[NodeID]:
    return frozenset(ids[keys[i]] for i in engine.to_original(mask))
