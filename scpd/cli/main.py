"""Entry point of the ``scpd`` command.

Each subcommand lives in its own module exposing ``register(subparsers)``; the
registered handler takes the parsed arguments and returns an exit code. Every
``ScpdError`` becomes one line on stderr and its exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from scpd import __version__
from scpd.errors import ScpdError

# Modules under scpd.cli, each adding its own subcommands.
COMMAND_MODULES = [
    "keys_cmd",
    "xdr_cmd",
    "envelope_cmd",
    "config_cmd",
    "simulate_cmd",
    "ledger_cmd",
    "run_cmd",
    "submit_cmd",
    "quorum_cmd",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scpd", description="Stellar Consensus Protocol validator daemon")
    parser.add_argument("--version", action="version", version=f"scpd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"scpd.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ScpdError as exc:
        print(f"scpd: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
    return code
