"""``scpd ledger verify|show``: inspect a node's durable ledger offline.

Both open the database in the data directory without creating anything, so
a mistyped path is an error, not a fresh empty ledger. Opening runs the
store's own checks (SQLite integrity, application id, schema version); a
file that fails them is "unusable" (exit 2). ``verify`` then re-walks the
whole chain, recomputing every hash, and audits every stored EXTERNALIZE
proof against the node's network and quorum set (``scpd.node.proof_audit``),
which is why it reads the node's configuration: exit 0 if all holds, 1 with
the first bad slot if not. ``show`` prints one ledger (the latest by
default) as JSON. It is safe to run both while the node is running: the
database is in WAL mode and they only read (an older schema is refused, not
upgraded, so they never write to a data directory the node may hold).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from scpd.cli.output import print_json
from scpd.errors import UsageError
from scpd.node.ledger import LedgerStore
from scpd.node.proof_audit import first_unproven_ledger
from scpd.nodecore.values import GENESIS_CLOSE_TIME, GENESIS_HASH
from scpd.operator.config import load_config


def register(sub: Any) -> None:
    p = sub.add_parser("ledger", help="verify or show the node's durable ledger")
    actions = p.add_subparsers(dest="ledger_action", metavar="ACTION", required=True)
    ver = actions.add_parser(
        "verify", help="re-walk the hash chain, audit every proof, and report the first bad slot (exit 1), if any"
    )
    ver.add_argument(
        "--config", "-c", required=True, type=Path, help="the node's TOML configuration (network, quorum set)"
    )
    ver.add_argument("--data-dir", type=Path, metavar="D", help="the data directory (default: the configuration's)")
    ver.set_defaults(handler=run_verify)
    show = actions.add_parser("show", help="print a ledger entry as JSON (the latest by default)")
    show.add_argument("--data-dir", required=True, type=Path, metavar="D", help="the node's data directory")
    show.add_argument("--slot", type=int, metavar="N", help="the slot to show (0 is the genesis)")
    show.add_argument("--bodies", action="store_true", help="include each transaction's bytes in base64")
    show.set_defaults(handler=run_show)


def run_verify(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    data_dir = cfg.data_dir if args.data_dir is None else args.data_dir
    with LedgerStore.open_data_dir(data_dir, create=False, migrate=False) as store:
        found = store.verify_chain() or first_unproven_ledger(store, cfg.network_id, cfg.quorum_set, cfg.node_id)
        tip = store.tip()
    if found is not None:
        print(f"ledger broken at slot {found.slot}: {found.reason}")
        return 1
    if tip.slot == 0:
        print("ledger ok: empty (only the genesis)")
    else:
        print(f"ledger ok: {tip.slot} ledgers (slots 1..{tip.slot}), last hash {tip.hash.hex()}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    if args.slot is not None and args.slot < 0:
        raise UsageError(f"--slot must not be negative, got {args.slot}")
    with LedgerStore.open_data_dir(args.data_dir, create=False, migrate=False) as store:
        tip = store.tip()
        slot = tip.slot if args.slot is None else args.slot
        if slot == 0:
            report: dict[str, object] = {
                "slot": 0,
                "genesis": True,
                "hash": GENESIS_HASH.hex(),
                "close_time": GENESIS_CLOSE_TIME,
            }
        else:
            record = store.get(slot)
            if record is None:
                raise UsageError(f"no ledger at slot {slot}: the chain ends at slot {tip.slot}")
            report = record.describe(store.proofs(slot), bodies=args.bodies)
    print_json(report)
    return 0
