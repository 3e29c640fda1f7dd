"""The quorum set of a configuration judged: stellar-core's safety rules, the local analysis, and display.

``quorum_safety_problems`` is stellar-core's FAILURE_SAFETY and UNSAFE_QUORUM
check: the resolver refuses a set that fails it unless the file says
``unsafe_quorum = true``. ``quorum_intersection_warnings`` runs the quorum
analysis on the node's own set and reports what it finds as warnings (the
loader adds them to ``NodeConfig.warnings``).
"""

from __future__ import annotations

import typing

from scpd.analysis.local import check_local_quorum
from scpd.base import quorum
from scpd.base.types import NodeID, SCPQuorumSet
from scpd.operator.config_node import ConfigWarning, NodeConfig

__all__ = ["format_quorum_set", "quorum_intersection_warnings", "quorum_safety_problems"]


def quorum_intersection_warnings(cfg: NodeConfig) -> list[ConfigWarning]:
    """The quorum analysis of this node's configuration, as warnings on ``quorum_set``.

    A configuration only knows its own quorum set, so the check assumes every
    validator in it uses the same set (the usual symmetric deployment;
    ``scpd quorum analyze`` checks a whole network with everyone's real
    sets). It warns when two disjoint quorums exist, when the node is in no
    quorum, and when a single node, or a single organisation (the
    ``organization`` of ``[[validators]]`` entries), failing halts this one. Warnings are
    printed by ``check-config`` and logged by the daemon at start;
    ``--strict`` refuses the configuration.
    """
    orgs = {v.node_id: v.organization for v in cfg.validators if v.organization is not None}
    report = check_local_quorum(cfg.node_id, cfg.quorum_set, {}, orgs=orgs, unknown_like_local=True)
    return [ConfigWarning("quorum_set", problem) for problem in report.problems(cfg.label)]


def quorum_safety_problems(qset: SCPQuorumSet, label: typing.Callable[[NodeID], str] = str) -> list[str]:
    """Why ``qset`` is unsafe by stellar-core's rules, as ``key: problem`` texts (empty when safe).

    With n top-level entries the set must tolerate f = floor((n - 1) / 3)
    failures, at least one (stellar-core's FAILURE_SAFETY = -1, its default):
    n >= 4, fewer than f + 1 failures never halt the node, the top-level
    threshold is at least n - f (about two thirds), and every inner set's
    threshold is a strict majority of its entries (stellar-core's checks
    behind UNSAFE_QUORUM = false).
    """
    n = len(qset.validators) + len(qset.inner_sets)
    f = (n - 1) // 3
    problems = []
    if f == 0:
        problems.append(
            f"quorum_set: {n} top-level {'entry tolerates' if n == 1 else 'entries tolerate'} no failure "
            "(tolerating one takes at least 4, as 3f + 1)"
        )
    else:
        blocking = quorum.closest_v_blocking(qset, quorum.all_validators(qset))
        if blocking is not None and len(blocking) <= f:
            names = ", ".join(label(v) for v in sorted(blocking))
            problems.append(
                f"quorum_set: {len(blocking)} failure(s) ({names}) halt this node, "
                f"but its {n} top-level entries should withstand {f}"
            )
    if qset.threshold < n - f:
        problems.append(
            f"quorum_set.threshold: {qset.threshold} of {n} is below {n - f} (two thirds): "
            "two disjoint groups could each reach a quorum"
        )
    for v in quorum.sanity_violations(qset, extra_checks=True):
        if v.name == "threshold-not-majority" and v.path != "quorum_set":
            problems.append(f"{v.path}.threshold: {v.message}")
    return problems


def format_quorum_set(qset: SCPQuorumSet, label: typing.Callable[[NodeID], str], indent: str = "  ") -> list[str]:
    """The set as indented lines: ``3 of 4:`` then its validators and inner sets."""
    lines: list[str] = []

    def walk(q: SCPQuorumSet, depth: int) -> None:
        pad = indent * depth
        lines.append(f"{pad}{q.threshold} of {len(q.validators) + len(q.inner_sets)}:")
        for v in q.validators:
            lines.append(f"{pad}{indent}{label(v)}")
        for inner in q.inner_sets:
            walk(inner, depth + 1)

    walk(qset, 0)
    return lines
