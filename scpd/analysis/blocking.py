"""Minimal blocking sets: the smallest sets whose failure halts everyone.

A set B is *blocking* when no quorum survives without it, i.e. when B meets
every quorum. Every quorum contains a minimal one, so B is blocking iff it
meets every minimal quorum: minimal blocking sets are the minimal hitting
sets (transversals) of the minimal quorums. They are enumerated with MMCS
(Murakami and Uno, 2014): grow a hitting set by branching on the elements of
an uncovered set, keep for each chosen element the sets only it covers (its
"critical" sets), and abandon a branch as soon as some chosen element has no
critical set left, since it could then be dropped and the result would not be
minimal. Each minimal hitting set is produced exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence

from scpd.analysis.engine import bits
from scpd.analysis.quorums import Budget

__all__ = ["minimal_hitting_sets"]


def minimal_hitting_sets(sets: Sequence[int], budget: Budget | None = None) -> list[int]:
    """Every minimal set (mask) meeting each of ``sets``; ``[0]`` when there is nothing to meet.

    When one of ``sets`` is empty nothing can meet it, and the answer is ``[]``.
    A ``budget`` is spent one step per branch (``SearchTooLarge`` past it).
    """
    if any(s == 0 for s in sets):
        return []
    if not sets:
        return [0]
    universe = 0
    for s in sets:
        universe |= s
    # hits[v]: mask over set indices of the sets containing node v
    hits: dict[int, int] = {v: 0 for v in bits(universe)}
    for i, s in enumerate(sets):
        for v in bits(s):
            hits[v] |= 1 << i
    out: list[int] = []
    _mmcs(sets, hits, 0, {}, (1 << len(sets)) - 1, universe, out, budget)
    return out


def _mmcs(
    sets: Sequence[int],
    hits: dict[int, int],
    chosen: int,
    crit: dict[int, int],
    uncovered: int,
    cand: int,
    out: list[int],
    budget: Budget | None,
) -> None:
    if budget is not None:
        budget.spend()
    if not uncovered:
        out.append(chosen)
        return
    # Branch on the uncovered set with the fewest candidates: the smallest fan-out.
    best = -1
    best_count = -1
    for i in bits(uncovered):
        count = (sets[i] & cand).bit_count()
        if best < 0 or count < best_count:
            best, best_count = i, count
            if count <= 1:
                break
    branch = sets[best] & cand
    cand &= ~branch
    for v in bits(branch):
        covered = hits[v]
        new_crit = {u: c & ~covered for u, c in crit.items()}
        if all(new_crit.values()):
            new_crit[v] = covered & uncovered
            _mmcs(sets, hits, chosen | 1 << v, new_crit, uncovered & ~covered, cand, out, budget)
        cand |= 1 << v
