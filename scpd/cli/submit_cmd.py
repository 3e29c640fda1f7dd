"""``scpd submit --node URL FILE|-``: hand one transaction to a running node.

The file's bytes (or stdin's, for ``-``) are the opaque transaction; it is
posted raw to ``URL/tx`` and the node's JSON answer is printed. Exit 0 when
the node queued it or already knew it, 1 when the node refused it (too
large, queue full), 2 for a usage problem or an unreachable node.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from scpd.cli.output import print_json
from scpd.errors import UsageError

__all__ = ["register", "run_submit"]

TIMEOUT = 10.0


def register(sub: Any) -> None:
    p = sub.add_parser("submit", help="submit a transaction to a running node's HTTP API")
    p.add_argument("--node", required=True, metavar="URL", help="the node's HTTP address, e.g. http://127.0.0.1:11626")
    p.add_argument("file", metavar="FILE", help="the transaction's bytes, or - for stdin")
    p.set_defaults(handler=run_submit)


def _read(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise UsageError(f"{name}: cannot read: {exc.strerror}") from None


def run_submit(args: argparse.Namespace) -> int:
    base = str(args.node).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise UsageError(f"--node {args.node}: expected an http:// URL")
    tx = _read(args.file)
    req = urllib.request.Request(
        f"{base}/tx", data=tx, method="POST", headers={"Content-Type": "application/octet-stream"}
    )
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
        if exc.code >= 500 and exc.code != 503:
            raise UsageError(f"{base}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise UsageError(f"{base}: cannot reach the node: {getattr(exc, 'reason', exc)}") from None
    try:
        answer = json.loads(body)
    except ValueError:
        raise UsageError(f"{base}: the answer is not JSON") from None
    print_json(answer, indent=None, sort_keys=True)
    return 0 if isinstance(answer, dict) and answer.get("status") in ("queued", "already-known") else 1
