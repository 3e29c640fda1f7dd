"""``scpd quorum analyze FILE``: is a network of quorum sets safe and live?"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from scpd.analysis.fbas import Fbas, Organizations, load_fbas, load_organizations
from scpd.analysis.report import (
    ANALYSIS_STEPS,
    MAX_STEPS,
    Analysis,
    SetFigure,
    analyze,
    merge_by_org,
    merge_nodes,
)
from scpd.cli.output import print_json, progress

EPILOG = """\
FILE is stellarbeat JSON (a list of {publicKey, quorumSet}), an scpd TOML
config, or a directory of scpd TOML configs (one node each). A config names
its node by node.public_key, or else by the key of its node.seed or
node.seed_file.

On a terminal, a progress bar on stderr names the step being computed.

The figures after quorum intersection share a budget of --max-steps search
steps: a network past it (25 symmetric validators have over a million
minimal quorums) gets the figures found before, its top tier,
"complete": false and "incomplete": the step that stopped, and one line on
stderr.

Node ids are indices into the input list unless --keys is given.

exit status: 0 when the network enjoys quorum intersection, 1 when it does
not (or has no quorum at all), 2 for bad input.
"""


def register(sub: Any) -> None:
    quorum = sub.add_parser("quorum", help="analyse quorum sets")
    qsub = quorum.add_subparsers(dest="quorum_command", metavar="SUBCOMMAND", required=True)
    p = qsub.add_parser(
        "analyze",
        help="quorum intersection, minimal quorums, blocking and splitting sets, top tier",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", type=Path, metavar="FILE", help="network description (see below)")
    p.add_argument("--format", choices=["json", "text"], default="json", help="output format (default json)")
    p.add_argument("--keys", action="store_true", help="name nodes by public key instead of list index")
    p.add_argument("--list", action="store_true", help="list the sets themselves, not only their counts and sizes")
    p.add_argument("--orgs", type=Path, metavar="ORGS", help="stellarbeat organisations file: also merge by org")
    p.add_argument(
        "--only-core",
        action="store_true",
        help="analyse only the nodes that matter (in some quorum and named by such a node)",
    )
    p.add_argument("--intersection-only", action="store_true", help="only check quorum intersection (fast)")
    p.add_argument(
        "--max-steps",
        type=_positive,
        default=MAX_STEPS,
        metavar="N",
        help=f"search steps for the figures after intersection (default {MAX_STEPS:,})",
    )
    p.set_defaults(handler=run_analyze)


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"not a positive number: {text}")
    return value


def run_analyze(args: argparse.Namespace) -> int:
    fbas = load_fbas(args.file)
    orgs = load_organizations(args.orgs, fbas) if args.orgs else None
    steps = 1 if args.intersection_only else len(ANALYSIS_STEPS)
    with progress(ANALYSIS_STEPS[0], steps) as bar:
        result = analyze(
            fbas,
            only_core=args.only_core,
            intersection_only=args.intersection_only,
            progress=None if bar is None else lambda i, what: bar(i, what),
            max_steps=args.max_steps,
        )
    if result.incomplete is not None:
        print(
            f"scpd: quorum analyze: {result.incomplete} need more than {args.max_steps:,} search steps;"
            " it and the figures after it are left out (--max-steps)",
            file=sys.stderr,
        )
    doc = to_json(result, fbas, orgs, keys=args.keys, list_sets=args.list)
    if args.format == "json":
        print_json(doc)
    else:
        print(to_text(doc))
    return 0 if result.has_quorum_intersection else 1


def to_json(result: Analysis, fbas: Fbas, orgs: Organizations | None, *, keys: bool, list_sets: bool) -> dict[str, Any]:
    """The report as JSON-ready data; node sets as sorted indices or keys."""

    def name(node: int) -> int | str:
        return fbas.nodes[node].key if keys else node

    def nodes(s: frozenset[int]) -> list[int | str]:
        return [name(n) for n in sorted(s)]

    doc: dict[str, Any] = {
        "nodes": result.n_nodes,
        "analysed_nodes": len(result.analysed),
        "unknown_validators": result.unknown_validators,
        "has_quorum": result.has_quorum,
        "has_quorum_intersection": result.has_quorum_intersection,
        "disjoint_quorums": None if result.evidence is None else [nodes(q) for q in result.evidence],
        "complete": result.incomplete is None,
    }
    if result.incomplete is not None:
        doc["incomplete"] = result.incomplete
    if result.top_tier is not None:
        doc["top_tier"] = nodes(result.top_tier)
        doc["top_tier_size"] = len(result.top_tier)
    for label, figure in _figures(result):
        entry = figure.summary()
        if list_sets:
            entry["sets"] = [nodes(s) for s in figure.sets]
        doc[label] = entry
    if orgs is not None and result.top_tier is not None:
        doc["organizations"] = _org_json(result, fbas, orgs, keys=keys, list_sets=list_sets)
    return doc


def _figures(result: Analysis) -> list[tuple[str, SetFigure]]:
    out = [
        ("minimal_quorums", result.minimal_quorums),
        ("minimal_blocking_sets", result.minimal_blocking_sets),
        ("minimal_splitting_sets", result.minimal_splitting_sets),
    ]
    return [(label, f) for label, f in out if f is not None]


def _org_json(result: Analysis, fbas: Fbas, orgs: Organizations, *, keys: bool, list_sets: bool) -> dict[str, Any]:
    n = len(fbas)

    def org_name(org: int) -> int | str:
        if org < len(orgs.names):
            return orgs.names[org]
        node = org - len(orgs.names)
        return fbas.nodes[node].key if keys else node

    def names(s: frozenset[int]) -> list[int | str]:
        return [org_name(o) for o in sorted(s)]

    assert result.top_tier is not None
    top = merge_nodes(result.top_tier, orgs, n)
    doc: dict[str, Any] = {"top_tier": names(top), "top_tier_size": len(top)}
    for label, figure in _figures(result):
        merged = merge_by_org(figure, orgs, n)
        entry = merged.summary()
        if list_sets:
            entry["sets"] = [names(s) for s in merged.sets]
        doc[label] = entry
    return doc


def to_text(doc: dict[str, Any]) -> str:
    """A readable table of the same figures."""
    lines = [
        f"nodes                    {doc['nodes']} ({doc['analysed_nodes']} analysed, "
        f"{doc['unknown_validators']} unknown validators named)",
        f"quorum intersection      {'yes' if doc['has_quorum_intersection'] else 'NO'}",
    ]
    if not doc["has_quorum"]:
        lines.append("                         (there is no quorum at all)")
    if doc["disjoint_quorums"]:
        for q in doc["disjoint_quorums"]:
            lines.append(f"  disjoint quorum        {_set_text(q)}")
    if "incomplete" in doc:
        lines.append(f"incomplete               {doc['incomplete']} and later figures need more search steps")
    lines.extend(_section(doc))
    if "organizations" in doc:
        lines.append("")
        lines.append("merged by organisation")
        lines.extend(_section(doc["organizations"]))
    return "\n".join(lines)


def _section(doc: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if "top_tier" in doc:
        lines.append(f"top tier                 {doc['top_tier_size']} {_set_text(doc['top_tier'])}")
    header = False
    for label in ("minimal_quorums", "minimal_blocking_sets", "minimal_splitting_sets"):
        entry = doc.get(label)
        if entry is None:
            continue
        if not header:
            lines.append(f"{'':25}{'count':>7}{'min':>6}{'max':>6}{'mean':>9}")
            header = True
        mean = "-" if entry["mean_size"] is None else f"{entry['mean_size']:.2f}"
        lo = "-" if entry["min_size"] is None else entry["min_size"]
        hi = "-" if entry["max_size"] is None else entry["max_size"]
        lines.append(f"{label.replace('_', ' '):25}{entry['count']:>7}{lo:>6}{hi:>6}{mean:>9}")
        for s in entry.get("sets", []):
            lines.append(f"  {_set_text(s)}")
    return lines


def _set_text(nodes: list[Any]) -> str:
    return "{" + ", ".join(str(n) for n in nodes) + "}"
