"""Minimal splitting sets: the smallest sets of Byzantine nodes that can break safety.

A set S *splits* the network when, with S deleted (S's members lie freely, so
they count as present in everyone's slices but need no slice of their own),
two disjoint quorums exist. This is Mazières' delete operation and the
fbas_analyzer definition; the empty set splits exactly when quorum
intersection fails.

Search: decide the candidates one by one, best-ranked first, in or out of S,
looking for sets of exactly k nodes for k = 1, 2, ... (iterative deepening),
so that whatever splits is minimal and supersets of what was found are never
tried. The deepening stops once no branch was cut by the size limit. A
branch is cut when even the most generous completion cannot split: if some
S' with S <= S' <= S | R (R the undecided candidates) splits with quorums
A and B, then A and B avoid S and are satisfied with S | R present, so a
pair of disjoint quorums must exist with S deleted and R helping both sides.
That relaxed check is one ``disjoint_quorums`` call.

Candidates: a member of a minimal splitting set must be needed by a node of
one of the two quorums (otherwise it could be dropped from S), so only nodes
named in the quorum set of a node that can be in some quorum are tried. They
need not be able to be in a quorum themselves: a lying node needs no slice.
"""

from __future__ import annotations

import itertools

from scpd.analysis.engine import Engine, bits
from scpd.analysis.quorums import Budget, disjoint_quorums

__all__ = ["minimal_splitting_sets", "splits"]


def splits(
    engine: Engine, faulty: int, universe: int | None = None, budget: Budget | None = None
) -> tuple[int, int] | None:
    """Two disjoint quorums once ``faulty`` is deleted, or None."""
    if universe is None:
        universe = engine.capable
    return disjoint_quorums(engine, universe & ~faulty, faulty, budget)


def minimal_splitting_sets(engine: Engine, universe: int | None = None, budget: Budget | None = None) -> list[int]:
    """Every minimal splitting set of the nodes in ``universe`` (all by default).

    A ``budget`` is shared by the search and the intersection checks it makes.
    """
    if universe is None:
        universe = engine.capable
    if splits(engine, 0, universe, budget) is not None:
        return [0]
    referenced = 0
    for v in bits(universe & engine.capable):
        referenced |= engine.members[v]
    candidates = list(bits(referenced))
    # twin_before[c]: the previous candidate that is c's twin, if any (see _twins)
    twin_before = _twins(engine, universe, candidates)
    found: list[int] = []
    # Iterative deepening on the size of S: when sets of size k are tried, every
    # splitting set of size below k is known, so whatever splits now is minimal,
    # and a candidate that would complete a known splitting set is no help.
    limit = 1
    while True:
        cut = _search(engine, universe, candidates, twin_before, found, limit, budget)
        if not cut:
            return sorted(found, key=lambda m: (m.bit_count(), m))
        limit += 1


def _search(
    engine: Engine,
    universe: int,
    candidates: list[int],
    twin_before: dict[int, int],
    found: list[int],
    limit: int,
    budget: Budget | None,
) -> bool:
    """Record the splitting sets of exactly ``limit`` nodes; True if some branch was cut by the limit.

    Only canonical sets are tried (a node is taken only if its earlier twin
    is); each one that splits is recorded with all its images under the twin
    permutations, which split too.
    """
    cut = False
    n = len(candidates)
    stack: list[tuple[int, int, int]] = [(0, 0, 0)]  # (next candidate, S, |S|)
    while stack:
        i, chosen, size = stack.pop()
        if budget is not None:
            budget.spend()
        if size == limit:
            if not any(not f & ~chosen for f in found) and splits(engine, chosen, universe, budget) is not None:
                found.extend(_images(chosen, twin_before))
            continue
        if i == n:
            continue
        rest = 0
        for c in candidates[i:]:
            bit = 1 << c
            if not any(not f & ~(chosen | bit) for f in found):
                rest |= bit
        if not rest or disjoint_quorums(engine, universe & ~chosen, chosen | rest, budget) is None:
            continue
        if size + 1 == limit and n - i > 1:
            cut = True
        stack.append((i + 1, chosen, size))
        c = candidates[i]
        if c not in twin_before or chosen >> twin_before[c] & 1:
            stack.append((i + 1, chosen | 1 << c, size + 1))
    return cut


def _twins(engine: Engine, universe: int, candidates: list[int]) -> dict[int, int]:
    """Twin classes (see ``Engine.twin_classes``) among the candidates, as each
    member's predecessor in its class: S splits iff S with twins swapped does,
    so only one arrangement need be searched."""
    classes = engine.twins(universe, 0)
    before: dict[int, int] = {}
    last: dict[int, int] = {}
    for c in candidates:
        root = classes.get(c)
        if root is None:
            continue
        if root in last:
            before[c] = last[root]
        last[root] = c
    return before


def _images(chosen: int, twin_before: dict[int, int]) -> list[int]:
    """Every set obtained from ``chosen`` by permuting twins."""
    classes: dict[int, list[int]] = {}
    for c in sorted(twin_before):
        root = twin_before[c]
        while root in twin_before:
            root = twin_before[root]
        classes.setdefault(root, [root]).append(c)
    out = [chosen]
    for members in classes.values():
        k = sum(chosen >> m & 1 for m in members)
        if k == 0 or k == len(members):
            continue
        base = [s & ~sum(1 << m for m in members) for s in out]
        out = [b | sum(1 << m for m in combo) for b in base for combo in itertools.combinations(members, k)]
    return out
