"""Quorum-set predicates: slices, v-blocking sets, quorums, sanity, weights.

Theory of operation: an ``SCPQuorumSet`` is a recursive k-of-n predicate. A
set of nodes *satisfies* it (contains a slice) when at least ``threshold`` of
its entries are satisfied, an entry being a validator in the set or an inner
set satisfied recursively. A set is *v-blocking* when it intersects every
slice, i.e. when fewer than ``threshold`` entries remain satisfiable once the
set is removed. A set of nodes contains a *quorum* for a node when, after
repeatedly dropping every member whose own slices are not satisfied by the
remaining members (the greatest fixpoint), what is left still satisfies the
node's quorum set.

Everything here is a pure function of its arguments: no I/O, no caching, no
clock. This module is the one home of these predicates. The plain functions
are the reference; ``SlicePredicate`` is the same two predicates compiled for
the consensus core's innermost loop (validators as a frozenset, so counting
the present ones is one set intersection). Two other forms exist elsewhere
for speed and are tested against these: the core's grouped quorum search
(``scpd.scp.federated.is_quorum``) and the analyser's bitset engine
(``scpd.analysis.engine``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from fractions import Fraction

from scpd.base.types import MAX_QSET_DEPTH, MAX_QSET_NODES, NodeID, SCPQuorumSet
from scpd.errors import QuorumSetError

__all__ = [
    "SlicePredicate",
    "Violation",
    "all_validators",
    "check_sanity",
    "closest_v_blocking",
    "find_quorum",
    "is_quorum",
    "is_quorum_slice",
    "is_v_blocking",
    "max_quorum",
    "node_weight",
    "normalize",
    "quorum_set_hash",
    "sanity_violations",
    "singleton_quorum_set",
]

QsetLookup = Callable[[NodeID], SCPQuorumSet | None]


def is_quorum_slice(qset: SCPQuorumSet, nodes: Collection[NodeID]) -> bool:
    """True when ``nodes`` contains at least one slice of ``qset``."""
    left = qset.threshold
    if left <= 0:
        return True
    for v in qset.validators:
        if v in nodes:
            left -= 1
            if left == 0:
                return True
    for inner in qset.inner_sets:
        if is_quorum_slice(inner, nodes):
            left -= 1
            if left == 0:
                return True
    return False


def is_v_blocking(qset: SCPQuorumSet, nodes: Collection[NodeID]) -> bool:
    """True when ``nodes`` intersects every slice of ``qset``.

    A set with threshold 0 has the empty slice, which nothing can block.
    """
    if qset.threshold <= 0:
        return False
    left = len(qset.validators) + len(qset.inner_sets) - qset.threshold + 1
    for v in qset.validators:
        if v in nodes:
            left -= 1
            if left <= 0:
                return True
    for inner in qset.inner_sets:
        if is_v_blocking(inner, nodes):
            left -= 1
            if left <= 0:
                return True
    return False


class SlicePredicate:
    """A quorum set compiled for fast membership tests: the same answers as ``is_quorum_slice`` and ``is_v_blocking``.

    Validators become a frozenset, so counting the ones present is one C-level
    set intersection instead of a Python loop. Only for sane sets (no
    duplicate validators), which is all the consensus core ever uses. Node IDs
    go through ``intern`` so that the sets hold the same objects as the
    caller's node sets, and compare by identity first.
    """

    __slots__ = ("entries", "inner", "threshold", "validators")

    def __init__(self, qset: SCPQuorumSet, intern: Callable[[NodeID], NodeID] = lambda n: n) -> None:
        self.threshold = qset.threshold
        self.validators = frozenset(intern(v) for v in qset.validators)
        self.inner = tuple(SlicePredicate(i, intern) for i in qset.inner_sets)
        self.entries = len(qset.validators) + len(qset.inner_sets)

    def satisfied_by(self, nodes: Collection[NodeID]) -> bool:
        """``nodes`` contains a slice (``is_quorum_slice``)."""
        need = self.threshold - len(self.validators.intersection(nodes))
        if need <= 0:
            return True
        for inner in self.inner:
            if inner.satisfied_by(nodes):
                need -= 1
                if need <= 0:
                    return True
        return False

    def blocked_by(self, nodes: Collection[NodeID]) -> bool:
        """``nodes`` intersects every slice (``is_v_blocking``)."""
        if self.threshold <= 0:
            return False
        left = self.entries - self.threshold + 1 - len(self.validators.intersection(nodes))
        if left <= 0:
            return True
        for inner in self.inner:
            if inner.blocked_by(nodes):
                left -= 1
                if left <= 0:
                    return True
        return False


def max_quorum(nodes: Collection[NodeID], qset_of: QsetLookup) -> frozenset[NodeID]:
    """The union of every quorum inside ``nodes`` (the greatest fixpoint; empty when there is none).

    ``qset_of`` gives each node's quorum set (None when unknown, which drops
    the node: we cannot count on a node whose slices we do not know).
    """
    members = set(nodes)
    while True:
        dropped = [n for n in members if not _satisfied(qset_of(n), members)]
        if not dropped:
            return frozenset(members)
        members.difference_update(dropped)


def find_quorum(qset: SCPQuorumSet, nodes: Collection[NodeID], qset_of: QsetLookup) -> frozenset[NodeID]:
    """The largest quorum inside ``nodes`` satisfying ``qset``, or the empty set (see ``max_quorum``)."""
    members = max_quorum(nodes, qset_of)
    return members if is_quorum_slice(qset, members) else frozenset()


def is_quorum(qset: SCPQuorumSet, nodes: Collection[NodeID], qset_of: QsetLookup) -> bool:
    """True when ``nodes`` contains a quorum that satisfies ``qset``."""
    return bool(find_quorum(qset, nodes, qset_of)) or (qset.threshold <= 0)


def _satisfied(qset: SCPQuorumSet | None, members: Collection[NodeID]) -> bool:
    return qset is not None and is_quorum_slice(qset, members)


def all_validators(qset: SCPQuorumSet) -> set[NodeID]:
    """Every validator named anywhere in ``qset``."""
    return set(_iter_validators(qset))


def _iter_validators(qset: SCPQuorumSet) -> Iterator[NodeID]:
    yield from qset.validators
    for inner in qset.inner_sets:
        yield from _iter_validators(inner)


def quorum_set_hash(qset: SCPQuorumSet) -> bytes:
    """The identity of a quorum set: SHA-256 of its XDR."""
    return hashlib.sha256(qset.to_xdr()).digest()


def singleton_quorum_set(node: NodeID) -> SCPQuorumSet:
    """The trivial set {node} that EXTERNALIZE's second implicit statement uses."""
    return SCPQuorumSet(1, (node,), ())


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken sanity rule: ``name`` is stable, ``path`` locates it."""

    name: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.name} at {self.path}: {self.message}"


def sanity_violations(qset: SCPQuorumSet, extra_checks: bool = False) -> list[Violation]:
    """Every sanity rule ``qset`` breaks (empty when sane).

    Rules (docs/configuration.md, `[quorum_set]`): at most MAX_QSET_DEPTH levels, 1..MAX_QSET_NODES
    validators in all, no validator twice, 1 <= threshold <= entries. With
    ``extra_checks``, each threshold must also be a strict majority of its
    entries, which is what makes a symmetric set tolerate failures safely.
    """
    found: list[Violation] = []
    seen: set[NodeID] = set()
    _check_level(qset, "quorum_set", 1, seen, found, extra_checks)
    if not seen:
        found.append(Violation("no-validators", "quorum_set", "the quorum set names no validator"))
    elif len(seen) > MAX_QSET_NODES:
        found.append(
            Violation("too-many-validators", "quorum_set", f"{len(seen)} validators, at most {MAX_QSET_NODES}")
        )
    return found


def _check_level(
    qset: SCPQuorumSet, path: str, depth: int, seen: set[NodeID], found: list[Violation], extra: bool
) -> None:
    if depth > MAX_QSET_DEPTH:
        found.append(Violation("nesting-too-deep", path, f"more than {MAX_QSET_DEPTH} levels of nesting"))
        return
    entries = len(qset.validators) + len(qset.inner_sets)
    if qset.threshold < 1:
        found.append(Violation("threshold-zero", path, "threshold must be at least 1"))
    elif qset.threshold > entries:
        found.append(
            Violation("threshold-above-entries", path, f"threshold {qset.threshold} exceeds its {entries} entries")
        )
    elif extra and 2 * qset.threshold <= entries:
        found.append(
            Violation(
                "threshold-not-majority", path, f"threshold {qset.threshold} of {entries} is not a strict majority"
            )
        )
    for i, v in enumerate(qset.validators):
        if v in seen:
            found.append(Violation("duplicate-validator", f"{path}.validators[{i}]", f"{v} appears more than once"))
        seen.add(v)
    for i, inner in enumerate(qset.inner_sets):
        _check_level(inner, f"{path}.inner_sets[{i}]", depth + 1, seen, found, extra)


def check_sanity(qset: SCPQuorumSet, extra_checks: bool = False) -> None:
    """Raise ``QuorumSetError`` naming every violated rule, if any."""
    found = sanity_violations(qset, extra_checks)
    if found:
        raise QuorumSetError("quorum set is not sane: " + "; ".join(str(v) for v in found))


def normalize(qset: SCPQuorumSet, remove: NodeID | None = None) -> SCPQuorumSet:
    """A canonical equivalent of ``qset``, optionally without node ``remove``.

    Removing a node lowers the threshold of its set by one (the node counts as
    always satisfied, as it does for itself). Then an inner 1-of-{v} becomes
    plain ``v`` in its parent, a 1-of-{inner} collapses to the inner set, and
    validators and inner sets are sorted so equal predicates compare equal.
    """
    result = _normalize_level(qset, remove)
    while result.threshold == 1 and not result.validators and len(result.inner_sets) == 1:
        result = result.inner_sets[0]
    return result


def _normalize_level(qset: SCPQuorumSet, remove: NodeID | None) -> SCPQuorumSet:
    threshold = qset.threshold
    validators = []
    for v in qset.validators:
        if v == remove:
            threshold -= 1
        else:
            validators.append(v)
    inner_sets = []
    for inner in qset.inner_sets:
        norm = normalize(inner, remove)
        if norm.threshold == 1 and len(norm.validators) == 1 and not norm.inner_sets:
            validators.append(norm.validators[0])
        else:
            inner_sets.append(norm)
    validators.sort()
    inner_sets.sort(key=_order_key)
    return SCPQuorumSet(max(threshold, 0), tuple(validators), tuple(inner_sets))


def _order_key(qset: SCPQuorumSet) -> tuple[object, ...]:
    return (tuple(v.ed25519 for v in qset.validators), tuple(_order_key(i) for i in qset.inner_sets), qset.threshold)


def node_weight(qset: SCPQuorumSet, node: NodeID, local_node: NodeID | None = None) -> Fraction:
    """Leader-selection weight of ``node`` in the local node's ``qset``.

    The fraction of slices containing the node: for nested k-of-n, the
    product of threshold/entries along the path to its first occurrence. The
    local node itself has weight 1; a node absent from ``qset`` has weight 0.
    """
    if node == local_node:
        return Fraction(1)
    return _weight(qset, node)


def _weight(qset: SCPQuorumSet, node: NodeID) -> Fraction:
    entries = len(qset.validators) + len(qset.inner_sets)
    if entries == 0:
        return Fraction(0)
    share = Fraction(qset.threshold, entries)
    if node in qset.validators:
        return share
    for inner in qset.inner_sets:
        w = _weight(inner, node)
        if w:
            return share * w
    return Fraction(0)


def closest_v_blocking(
    qset: SCPQuorumSet, alive: Collection[NodeID], excluded: NodeID | None = None
) -> frozenset[NodeID] | None:
    """The fewest nodes of ``alive`` whose failure makes the failed nodes v-blocking for ``qset``.

    Nodes outside ``alive`` count as failed already, so the answer is empty
    when they block ``qset`` on their own; ``excluded`` (the local node) never
    fails. None when no failure of ``alive`` can block ``qset``. This is what
    stellar-core reports as ``fail_at`` (the size) and ``fail_with``.

    Exact for sane sets (no validator twice): entries then fail independently,
    so blocking a level means failing its ``entries - threshold + 1`` cheapest
    entries, each entry's cost found recursively.
    """
    if qset.threshold <= 0:
        return None
    needed = len(qset.validators) + len(qset.inner_sets) - qset.threshold + 1
    costs: list[frozenset[NodeID]] = []
    for v in qset.validators:
        if v == excluded:
            continue
        costs.append(frozenset([v]) if v in alive else frozenset())
    for inner in qset.inner_sets:
        cost = closest_v_blocking(inner, alive, excluded)
        if cost is not None:
            costs.append(cost)
    if len(costs) < needed:
        return None
    costs.sort(key=len)
    return frozenset().union(*costs[:needed])
