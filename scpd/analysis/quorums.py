"""Minimal quorums and quorum intersection, by branch and bound.

Theory of operation (after Lachowski 2019 and the fbas_analyzer project): a
search grows a *selection* that the quorum being looked for must contain and
an *available* set it must stay inside. While the selection is not a quorum,
some member of it is unsatisfied, and any quorum containing the selection
must contain one more of that member's validators: branch on the
best-ranked such validator, in or out. Taking a node out shrinks the
available set to its largest quorum (``max_quorum``); if the selection no
longer fits inside, no quorum is down this branch. Every branch decides one
node, so each quorum is reached at most once, and stopping as soon as the
selection is a quorum means only the smallest quorums on each path are seen.

Quorum intersection is the search for a pair of disjoint quorums. By the
component argument (see ``engine``), two components that each hold a quorum
are such a pair. Inside the one component that holds quorums, look for a
quorum whose complement still contains a quorum, and prune every selection
whose complement contains none: complements only shrink as selections grow.
This prune is what keeps a well-configured network's check fast.

The top tier (the union of the minimal quorums) needs no list of them: the
same search skips every branch whose available nodes are all in the union
found so far, since no quorum down that branch can add a node. A symmetric
network of 25 validators has C(25, 17) = 1,081,575 minimal quorums but a top
tier found in a few dozen branches.

Searches run over the *universe* they are given, with *helpers*: nodes that
count as present without being members (deleted, Byzantine nodes). With no
helpers this is the plain FBAS. A ``Budget`` bounds the branches a search may
examine, for callers (the running node) that must bound the CPU they spend.
"""

from __future__ import annotations

from collections.abc import Callable

from scpd.analysis.engine import Engine

__all__ = ["Budget", "SearchTooLarge", "disjoint_quorums", "minimal_quorums", "top_tier"]


class SearchTooLarge(Exception):
    """A search examined more branches than its budget allowed."""


class Budget:
    """The branches a search may still examine; shared by the searches it is passed to."""

    def __init__(self, steps: int) -> None:
        self.left = steps

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise SearchTooLarge("quorum search exceeded its budget")


def minimal_quorums(
    engine: Engine, universe: int | None = None, helpers: int = 0, budget: Budget | None = None
) -> list[int]:
    """Every minimal quorum inside ``universe`` (all nodes by default), as masks."""
    if universe is None:
        universe = engine.capable
    found: list[int] = []
    for cluster in engine.clusters(universe, helpers):
        _minimal_in(engine, cluster, helpers, found.append, lambda available: False, budget)
    return found


def top_tier(engine: Engine, universe: int | None = None, helpers: int = 0, budget: Budget | None = None) -> int:
    """The union of the minimal quorums inside ``universe``, as a mask."""
    if universe is None:
        universe = engine.capable
    union = 0

    def add(quorum: int) -> None:
        nonlocal union
        union |= quorum

    for cluster in engine.clusters(universe, helpers):
        _minimal_in(engine, cluster, helpers, add, lambda available: not available & ~union, budget)
    return union


def _minimal_in(
    engine: Engine,
    cluster: int,
    helpers: int,
    found: Callable[[int], None],
    useless: Callable[[int], bool],
    budget: Budget | None,
) -> None:
    # Explicit stack of (selection, available): no recursion limit to worry about.
    stack = [(0, engine.max_quorum(cluster, helpers))]
    while stack:
        selection, available = stack.pop()
        if useless(available):
            continue
        if budget is not None:
            budget.spend()
        choices = _branch_on(engine, selection, available, helpers)
        if choices is None:
            if engine.is_minimal_quorum(selection, helpers):
                found(selection)
            continue
        pick = choices & -choices
        if not pick:
            continue
        narrower = engine.max_quorum(available & ~pick, helpers)
        if narrower and not selection & ~narrower:
            stack.append((selection, narrower))
        stack.append((selection | pick, available))


def disjoint_quorums(
    engine: Engine, universe: int | None = None, helpers: int = 0, budget: Budget | None = None
) -> tuple[int, int] | None:
    """Two disjoint minimal quorums inside ``universe``, or None when all quorums intersect.

    None also when there is no quorum at all; callers that care tell the two
    apart with ``max_quorum``.
    """
    if universe is None:
        universe = engine.capable
    clusters = engine.clusters(universe, helpers)
    if len(clusters) >= 2:
        first = engine.minimize_quorum(engine.max_quorum(clusters[0], helpers), helpers)
        second = engine.minimize_quorum(engine.max_quorum(clusters[1], helpers), helpers)
        return first, second
    if not clusters:
        return None
    pair = _disjoint_in(engine, clusters[0], helpers, budget)
    if pair is None:
        return None
    first = engine.minimize_quorum(pair[0], helpers)
    second = engine.minimize_quorum(engine.max_quorum(clusters[0] & ~first, helpers), helpers)
    return first, second


def _disjoint_in(engine: Engine, cluster: int, helpers: int, budget: Budget | None) -> tuple[int, int] | None:
    # State: (selection, available, rest, pool). ``rest`` is the largest quorum
    # disjoint from the selection, kept up to date incrementally (max_quorum of
    # a subset lies inside max_quorum of the set). Symmetry: the two quorums
    # are interchangeable, so let the first hold the best-ranked node of the
    # pair; a node taken out before the first one is chosen leaves ``pool``,
    # the nodes the second quorum may use, as well.
    # Twins: a node left out takes its undecided twins out with it, since a
    # solution using a twin instead maps onto one using the node itself.
    twins = engine.twins(cluster, helpers)
    top = engine.max_quorum(cluster, helpers)
    stack = [(0, top, top)]
    while stack:
        selection, available, rest = stack.pop()
        if budget is not None:
            budget.spend()
        choices = _branch_on(engine, selection, available, helpers)
        if choices is None:
            return selection, rest
        pick = choices & -choices
        if not pick:
            continue
        out = pick | (twins.get(pick.bit_length() - 1, 0) & available & ~selection)
        narrower = engine.max_quorum(available & ~out, helpers)
        if selection:
            if narrower and not selection & ~narrower:
                stack.append((selection, narrower, rest))
        elif narrower:
            stack.append((0, narrower, narrower))
        smaller_rest = engine.max_quorum(rest & ~pick, helpers) if rest & pick else rest
        if smaller_rest:
            stack.append((selection | pick, available, smaller_rest))
    return None


def _branch_on(engine: Engine, selection: int, available: int, helpers: int) -> int | None:
    """The nodes a search may add to ``selection`` next; None when ``selection`` is a quorum already.

    A selection that is not a quorum has a member whose slices it lacks: every
    quorum extending it holds one of that member's validators, so those are
    the only branches (the lowest such member, for a deterministic order).
    """
    if not selection:
        return available
    missing = engine.unsatisfied(selection, selection | helpers)
    if not missing:
        return None
    low = missing & -missing
    return engine.members[low.bit_length() - 1] & available & ~selection
