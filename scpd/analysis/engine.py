"""The compact form every analysis runs on: node sets as int bitsets.

Theory of operation: the analysis asks one question millions of times, "is
node v satisfied when exactly these nodes are present?", so it must be cheap.
Nodes are renumbered by rank (most depended-upon first), a node set is a
Python int with bit i set for internal node i, and a quorum set is compiled
to a nested tuple ``(threshold, validator_mask, inner_sets)``; satisfaction is
then a popcount and a few recursive calls. Nodes without a quorum set, and
validators that are not nodes, simply never appear in a mask.

Everything rests on three facts:

* ``max_quorum(U)`` (drop unsatisfied members until none is left, the greatest
  fixpoint) is the union of all quorums inside ``U``; it is empty iff ``U``
  contains no quorum, and it is monotone in ``U``.
* Every quorum contains a quorum inside a single strongly connected component
  of the "v names w in its quorum set" graph (take a component that reaches no
  other component meeting the quorum), so minimal quorums each live in one
  component, and two components that each contain a quorum give two disjoint
  quorums at once.
* *Helpers* generalise the FBAS with a set deleted (Mazières' delete
  operation): a deleted node cannot be in a quorum but counts as present for
  everyone else's slices, which is how a Byzantine node can help two sides.

Why not ``scpd.base.quorum``, the one reference implementation of these
predicates: its node sets are Python sets of keys, and a search over
millions of candidate sets spends its time building and intersecting them;
here a set is an int and a slice test is a popcount, with ``max_quorum`` a
worklist that re-examines only the dependents of a dropped node. The engine
also reads networks as they are published (validators listed twice,
thresholds out of range, validators that are no node), which the reference
predicates answer the same way. ``tests/test_analysis_predicates.py`` checks
that ``satisfied`` and ``max_quorum`` agree with ``is_quorum_slice`` and
``scpd.base.quorum.max_quorum`` on random nested networks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

from scpd.analysis.fbas import Fbas, QSet

__all__ = ["CQSet", "Engine", "bits", "popcount"]

# (threshold, mask of direct validators, compiled inner sets)
CQSet = tuple[int, int, tuple["CQSet", ...]]


def bits(mask: int) -> Iterator[int]:
    """Positions of the set bits, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def popcount(mask: int) -> int:
    return mask.bit_count()


def satisfied(q: CQSet, present: int) -> bool:
    """Does ``present`` contain a slice of ``q``?

    The hottest function of the analysis: inner sets are tested inline with a
    popcount and only nested ones cost a recursive call.
    """
    threshold, vmask, inner = q
    need = threshold - (vmask & present).bit_count()
    if need <= 0:
        return True
    left = len(inner)
    if need > left:
        return False
    for iq in inner:
        left -= 1
        if (iq[1] & present).bit_count() >= iq[0] or (iq[2] and satisfied(iq, present)):
            need -= 1
            if need == 0:
                return True
        elif need > left:
            return False
    return False


@dataclass(frozen=True)
class Engine:
    """A network compiled for analysis; internal node i is original node ``order[i]``."""

    order: tuple[int, ...]  # internal -> original index
    qsets: tuple[CQSet | None, ...]  # by internal index
    members: tuple[int, ...]  # mask of every node a node's quorum set names
    capable: int  # nodes whose quorum set can be satisfied at all
    dependents: tuple[int, ...]  # mask of the nodes whose quorum sets name a node

    @classmethod
    def build(cls, fbas: Fbas, keep: set[int] | None = None) -> Engine:
        """Compile ``fbas``, optionally keeping only the original nodes in ``keep``.

        Dropped nodes and unknown validators are simply absent: they never count
        towards any threshold.
        """
        kept = range(len(fbas)) if keep is None else sorted(keep)
        order = _rank(fbas, list(kept))
        position = {orig: i for i, orig in enumerate(order)}
        qsets: list[CQSet | None] = []
        members: list[int] = []
        for orig in order:
            qset = fbas.nodes[orig].qset
            if qset is None:
                qsets.append(None)
                members.append(0)
                continue
            compiled = _compile(qset, fbas, position)
            qsets.append(compiled)
            members.append(_members(compiled))
        dependents = [0] * len(order)
        for v, m in enumerate(members):
            for w in bits(m):
                dependents[w] |= 1 << v
        engine = cls(tuple(order), tuple(qsets), tuple(members), 0, tuple(dependents))
        everyone = (1 << len(order)) - 1
        capable = 0
        for v, q in enumerate(qsets):
            if q is not None and satisfied(q, everyone):
                capable |= 1 << v
        object.__setattr__(engine, "capable", capable)
        return engine

    # --- translation ---

    @property
    def size(self) -> int:
        return len(self.order)

    def to_original(self, mask: int) -> frozenset[int]:
        return frozenset(self.order[i] for i in bits(mask))

    def from_original(self, nodes: Sequence[int] | frozenset[int] | set[int]) -> int:
        position = {orig: i for i, orig in enumerate(self.order)}
        mask = 0
        for n in nodes:
            if n in position:
                mask |= 1 << position[n]
        return mask

    # --- the primitives ---

    def unsatisfied(self, nodes: int, present: int) -> int:
        """Members of ``nodes`` whose slices are not in ``present``."""
        out = 0
        qsets = self.qsets
        for v in bits(nodes):
            q = qsets[v]
            if q is None or not satisfied(q, present):
                out |= 1 << v
        return out

    def is_quorum(self, nodes: int, helpers: int = 0) -> bool:
        return nodes != 0 and self.unsatisfied(nodes, nodes | helpers) == 0

    def max_quorum(self, universe: int, helpers: int = 0) -> int:
        """The largest quorum inside ``universe`` (0 if none); ``helpers`` count as present.

        A worklist: a node is re-examined only when one of its validators left.
        """
        q = universe & self.capable
        pending = q
        qsets = self.qsets
        dependents = self.dependents
        while pending:
            low = pending & -pending
            pending ^= low
            v = low.bit_length() - 1
            if not satisfied(qsets[v], q | helpers):  # type: ignore[arg-type]  # capable => compiled
                q ^= low
                pending |= dependents[v] & q
        return q

    def minimize_quorum(self, quorum: int, helpers: int = 0) -> int:
        """A minimal quorum inside the quorum ``quorum``."""
        for v in bits(quorum):
            if quorum >> v & 1:
                smaller = self.max_quorum(quorum & ~(1 << v), helpers)
                if smaller:
                    quorum = smaller
        return quorum

    def is_minimal_quorum(self, quorum: int, helpers: int = 0) -> bool:
        return all(self.max_quorum(quorum & ~(1 << v), helpers) == 0 for v in bits(quorum))

    def components(self, nodes: int, helpers: int = 0) -> list[int]:
        """Strongly connected components of the dependency graph restricted to ``nodes``.

        Iterative Tarjan; edges to helpers are left out since helpers are present
        whatever happens.
        """
        succ = {v: self.members[v] & nodes & ~helpers for v in bits(nodes)}
        index: dict[int, int] = {}
        low: dict[int, int] = {}
        on_stack = 0
        stack: list[int] = []
        out: list[int] = []
        counter = 0
        for root in bits(nodes):
            if root in index:
                continue
            work: list[tuple[int, Iterator[int]]] = [(root, bits(succ[root]))]
            index[root] = low[root] = counter
            counter += 1
            stack.append(root)
            on_stack |= 1 << root
            while work:
                v, it = work[-1]
                advanced = False
                for w in it:
                    if w not in index:
                        index[w] = low[w] = counter
                        counter += 1
                        stack.append(w)
                        on_stack |= 1 << w
                        work.append((w, bits(succ[w])))
                        advanced = True
                        break
                    if on_stack >> w & 1:
                        low[v] = min(low[v], index[w])
                if advanced:
                    continue
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[v])
                if low[v] == index[v]:
                    comp = 0
                    while True:
                        w = stack.pop()
                        on_stack &= ~(1 << w)
                        comp |= 1 << w
                        if w == v:
                            break
                    out.append(comp)
        return out

    @cached_property
    def twin_classes(self) -> tuple[int, ...]:
        """Classes of interchangeable nodes (only classes of two or more), as masks.

        u and v are twins when swapping them maps every quorum set onto the
        quorum set of the swapped node: an automorphism of the network, so any
        search may treat them as one. Found cheaply: twins name-share every
        validator list they appear in (same signature), and their own quorum
        sets must agree once u and v are swapped.
        """
        signature: dict[int, list[tuple[int, tuple[int, ...]]]] = {v: [] for v in range(self.size)}
        for x, q in enumerate(self.qsets):
            if q is not None:
                _occurrences(q, x, (), signature)
        groups: dict[tuple[tuple[int, tuple[int, ...]], ...], list[int]] = {}
        for v in range(self.size):
            groups.setdefault(tuple(sorted(signature[v])), []).append(v)
        classes: list[int] = []
        for members in groups.values():
            reps: list[list[int]] = []
            for v in members:
                for cls in reps:
                    u = cls[0]
                    if _canon(self.qsets[u], u, v) == _canon(self.qsets[v], -1, -1):
                        cls.append(v)
                        break
                else:
                    reps.append([v])
            classes.extend(sum(1 << v for v in cls) for cls in reps if len(cls) > 1)
        return tuple(classes)

    def twins(self, universe: int, helpers: int) -> dict[int, int]:
        """For each node with a twin, the mask of its class, split so that the
        swap also keeps ``universe`` and ``helpers`` in place."""
        out: dict[int, int] = {}
        for cls in self.twin_classes:
            for part in (cls & universe & helpers, cls & universe & ~helpers, cls & ~universe & helpers):
                if part & (part - 1):
                    for v in bits(part):
                        out[v] = part
            rest = cls & ~universe & ~helpers
            if rest & (rest - 1):
                for v in bits(rest):
                    out[v] = rest
        return out

    def clusters(self, universe: int, helpers: int = 0) -> list[int]:
        """Components of ``universe`` that contain a quorum: every minimal quorum lies in one."""
        top = self.max_quorum(universe, helpers)
        return [c for c in self.components(top, helpers) if self.max_quorum(c, helpers)]


Canon = tuple[int, int, tuple["Canon", ...]] | None


def _canon(q: CQSet | None, u: int, v: int) -> Canon:
    """A comparable form of ``q`` with nodes u and v swapped (-1: no swap)."""
    if q is None:
        return None
    threshold, mask, inner = q
    if u >= 0 and (mask >> u & 1) != (mask >> v & 1):
        mask ^= 1 << u | 1 << v
    return (threshold, mask, tuple(sorted((_canon(i, u, v) for i in inner), key=repr)))


def _occurrences(q: CQSet, x: int, path: tuple[int, ...], out: dict[int, list[tuple[int, tuple[int, ...]]]]) -> None:
    for v in bits(q[1]):
        out[v].append((x, path))
    for i, inner in enumerate(q[2]):
        _occurrences(inner, x, (*path, i), out)


def _compile(qset: QSet, fbas: Fbas, position: dict[int, int]) -> CQSet:
    """Compile one quorum set; duplicates of a validator become 1-of-1 inner sets so each still counts."""
    mask = 0
    inner: list[CQSet] = []
    for key in qset.validators:
        orig = fbas.index.get(key)
        pos = position.get(orig) if orig is not None else None
        bit = 0 if pos is None else 1 << pos
        if bit and mask & bit:
            inner.append((1, bit, ()))
        else:
            mask |= bit
    inner.extend(_compile(q, fbas, position) for q in qset.inner_sets)
    return (qset.threshold, mask, tuple(inner))


def _members(q: CQSet) -> int:
    mask = q[1]
    for iq in q[2]:
        mask |= _members(iq)
    return mask


def _rank(fbas: Fbas, kept: list[int]) -> list[int]:
    """Kept nodes, most depended-upon first: a node scores the weight with which it
    appears in the quorum sets of others (1/size per level), ties by position."""
    score = dict.fromkeys(kept, 0.0)

    def visit(q: QSet, weight: float) -> None:
        entries = len(q.validators) + len(q.inner_sets)
        if entries == 0:
            return
        share = weight * min(q.threshold, entries) / entries
        for key in q.validators:
            orig = fbas.index.get(key)
            if orig in score:
                score[orig] += share
        for inner in q.inner_sets:
            visit(inner, share)

    for orig in kept:
        qset = fbas.nodes[orig].qset
        if qset is not None:
            visit(qset, 1.0)
    return sorted(kept, key=lambda n: (-score[n], n))
