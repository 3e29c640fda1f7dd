"""The whole analysis of a network, as the figures an operator reads.

Theory of operation: compile the network (``engine``), optionally keep only
the nodes that matter, then compute in order of cost: quorum intersection
(with evidence), minimal quorums and the top tier (their union), minimal
blocking sets (hitting sets of the minimal quorums) and minimal splitting
sets. Splitting sets are searched inside the top tier when the network
enjoys quorum intersection: they are the sets of lying nodes that can split
the top tier, and with it every node that relies on it. Results are sets of
original node indices; ``to_json`` renders them as indices or keys.

Every step after the intersection check shares one ``Budget`` of search
steps (``MAX_STEPS`` by default): a network whose figures would take hours
(25 symmetric validators have C(25, 17) = 1,081,575 minimal quorums) gets
the figures computed before the budget ran out, the top tier (found without
listing the minimal quorums), and ``incomplete`` naming the step that stopped.

Merging by organisation maps each node of each result set to its
organisation (a node without one stands for itself) and keeps the minimal
sets, as fbas_analyzer does: "these organisations, failing together, ...".
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from scpd.analysis.blocking import minimal_hitting_sets
from scpd.analysis.engine import Engine, bits
from scpd.analysis.fbas import Fbas, Organizations
from scpd.analysis.quorums import Budget, SearchTooLarge, disjoint_quorums, minimal_quorums, top_tier
from scpd.analysis.splitting import minimal_splitting_sets

__all__ = ["ANALYSIS_STEPS", "MAX_STEPS", "Analysis", "SetFigure", "analyze", "core_nodes", "merge_by_org"]

NodeSet = frozenset[int]


@dataclass(frozen=True)
class SetFigure:
    """A family of minimal sets, smallest first."""

    sets: tuple[NodeSet, ...]

    def summary(self) -> dict[str, Any]:
        sizes = [len(s) for s in self.sets]
        return {
            "count": len(sizes),
            "min_size": min(sizes) if sizes else None,
            "max_size": max(sizes) if sizes else None,
            "mean_size": round(sum(sizes) / len(sizes), 6) if sizes else None,
        }


@dataclass(frozen=True)
class Analysis:
    n_nodes: int
    analysed: NodeSet
    unknown_validators: int
    has_quorum: bool
    has_quorum_intersection: bool
    evidence: tuple[NodeSet, NodeSet] | None
    minimal_quorums: SetFigure | None = None
    top_tier: NodeSet | None = None
    minimal_blocking_sets: SetFigure | None = None
    minimal_splitting_sets: SetFigure | None = None
    # The step (of ANALYSIS_STEPS) that ran out of search steps; its figure and the later ones are None.
    incomplete: str | None = None


def core_nodes(fbas: Fbas) -> NodeSet:
    """The nodes that matter: in some quorum and named by another such node's quorum set."""
    engine = Engine.build(fbas)
    core = engine.max_quorum(engine.capable)
    while True:
        named = 0
        for v in bits(core):
            named |= engine.members[v]
        if core & named == core:
            return engine.to_original(core)
        core &= named
        core = engine.max_quorum(core)


ANALYSIS_STEPS = ("quorum intersection", "minimal quorums", "minimal blocking sets", "minimal splitting sets")
# Search steps the figures after the intersection check may take together (about 17 us each here):
# Stellar's 2020 network (190 nodes, 4,294 minimal quorums) needs about 200,000 for its minimal quorums.
MAX_STEPS = 1_000_000


def analyze(
    fbas: Fbas,
    *,
    only_core: bool = False,
    intersection_only: bool = False,
    progress: Callable[[int, str], None] | None = None,
    max_steps: int = MAX_STEPS,
) -> Analysis:
    """Analyse ``fbas``; with ``only_core`` the nodes that do not matter are dropped first.

    ``progress(i, step)`` hears when step i of ``ANALYSIS_STEPS`` starts
    (only the first with ``intersection_only``). The steps after the first
    share ``max_steps`` search steps (see the module's docstring).
    """

    current = 0

    def step(i: int) -> None:
        nonlocal current
        current = i
        if progress is not None:
            progress(i, ANALYSIS_STEPS[i])

    step(0)
    keep = set(core_nodes(fbas)) if only_core else None
    engine = Engine.build(fbas, keep)
    universe = engine.capable
    has_quorum = engine.max_quorum(universe) != 0
    pair = disjoint_quorums(engine, universe)
    evidence = None if pair is None else (engine.to_original(pair[0]), engine.to_original(pair[1]))
    base = Analysis(
        n_nodes=len(fbas),
        analysed=frozenset(engine.order),
        unknown_validators=len(fbas.unknown_validators()),
        has_quorum=has_quorum,
        # No quorum at all is no safety either: nothing can ever be agreed (fbas_analyzer agrees).
        has_quorum_intersection=has_quorum and pair is None,
        evidence=evidence,
    )
    if intersection_only:
        return base
    budget = Budget(max_steps)
    figures: dict[str, Any] = {}
    try:
        step(1)
        mqs = minimal_quorums(engine, universe, budget=budget)
        top = 0
        for q in mqs:
            top |= q
        figures["minimal_quorums"] = _figure(engine, mqs)
        figures["top_tier"] = engine.to_original(top)
        step(2)
        figures["minimal_blocking_sets"] = _figure(engine, minimal_hitting_sets(mqs, budget) if mqs else [])
        step(3)
        figures["minimal_splitting_sets"] = _figure(engine, _splitting(fbas, engine, top, pair, has_quorum, budget))
    except SearchTooLarge:
        figures["incomplete"] = ANALYSIS_STEPS[current]
        if "top_tier" not in figures:
            with contextlib.suppress(SearchTooLarge):
                figures["top_tier"] = engine.to_original(top_tier(engine, universe, budget=Budget(max_steps)))
    return dataclasses.replace(base, **figures)


def _splitting(
    fbas: Fbas, engine: Engine, top: int, pair: tuple[int, int] | None, has_quorum: bool, budget: Budget
) -> list[int]:
    """The minimal splitting sets of the top tier (see the module's docstring), as masks of ``engine``."""
    if pair is not None:
        return [0]
    if not has_quorum:
        return []
    tier = Engine.build(fbas, set(engine.to_original(top)))
    return [engine.from_original(tier.to_original(s)) for s in minimal_splitting_sets(tier, budget=budget)]


def _figure(engine: Engine, masks: Sequence[int]) -> SetFigure:
    sets = [engine.to_original(m) for m in masks]
    return SetFigure(tuple(sorted(sets, key=lambda s: (len(s), sorted(s)))))


def merge_by_org(figure: SetFigure, orgs: Organizations, n_nodes: int) -> SetFigure:
    """Each set as the set of organisations running its nodes, minimal ones only.

    Organisation i is numbered i; a node without an organisation is numbered
    ``len(orgs.names) + node`` so it keeps standing for itself.
    """
    org_of = orgs.org_of(n_nodes)
    base = len(orgs.names)
    merged = {frozenset(_org_id(org_of, base, n) for n in s) for s in figure.sets}
    ordered = sorted(merged, key=lambda s: (len(s), sorted(s)))
    kept: list[NodeSet] = []
    for s in ordered:
        if not any(k <= s for k in kept):
            kept.append(s)
    return SetFigure(tuple(kept))


def merge_nodes(nodes: NodeSet, orgs: Organizations, n_nodes: int) -> NodeSet:
    org_of = orgs.org_of(n_nodes)
    return frozenset(_org_id(org_of, len(orgs.names), n) for n in nodes)


def _org_id(org_of: list[int | None], base: int, node: int) -> int:
    org = org_of[node]
    return base + node if org is None else org
