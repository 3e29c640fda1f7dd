"""``scpd check-config FILE [--strict]``: check a node configuration without starting it.

It runs exactly the checks ``scpd run`` runs before starting (``load_config``,
which includes the quorum-intersection hook
``scpd.operator.config_quorum.quorum_intersection_warnings``), prints a short summary
on success and each warning on stderr. A bad configuration is the usual one
line ``scpd: error: FILE: key.path: problem`` and exit code 2; ``--strict``
treats warnings the same way.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from scpd.operator.config import load_config
from scpd.operator.config_node import NodeConfig
from scpd.operator.config_quorum import format_quorum_set


def register(sub: Any) -> None:
    p = sub.add_parser(
        "check-config",
        help="check a node configuration file without starting the node",
        description="Validate a node configuration exactly as `scpd run` would, without starting anything.",
    )
    p.add_argument("file", metavar="FILE", help="the node's TOML configuration")
    p.add_argument(
        "--strict",
        action="store_true",
        help="treat warnings (seed readable by others, threshold not a majority, ...) as errors",
    )
    p.set_defaults(handler=run_check_config)


def run_check_config(args: argparse.Namespace) -> int:
    cfg = load_config(args.file, strict=args.strict)
    for line in summary(cfg):
        print(line)
    for warning in cfg.warnings:
        print(f"scpd: warning: {args.file}: {warning}", file=sys.stderr)
    return 0


def summary(cfg: NodeConfig) -> list[str]:
    """What an operator wants to confirm: who, which network, which quorum set."""
    role = "validator" if cfg.is_validator else "watcher"
    lines = [
        f"{cfg.path}: OK",
        f"node:        {cfg.label(cfg.node_id)}, {role}",
        f"network:     {cfg.network_passphrase!r} (id {cfg.network_id.hex()[:16]}...)",
        f"listen:      {cfg.listen}, dialing {len(cfg.peers)} peer(s), "
        f"{len(cfg.known_addresses)} other known validator address(es)",
        f"data dir:    {cfg.data_dir}",
        f"http:        {cfg.http_listen if cfg.http_listen else 'disabled'}",
        f"quorum set:  hash {cfg.quorum_set_hash.hex()}",
    ]
    lines.extend("  " + line for line in format_quorum_set(cfg.quorum_set, cfg.label))
    return lines
