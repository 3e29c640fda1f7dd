"""``scpd xdr decode|encode TYPE``: look inside SCP wire values and build them.

Operators paste base64 XDR captured from a live network (logs, Horizon, a
packet dump) and get the JSON of ``scpd.base.xdr_json``; ``encode`` turns that
JSON, perhaps edited, back into base64. Decoding is the strict network decoder,
so whatever decodes re-encodes to the very same bytes.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
from typing import Any

from scpd.base.xdr_json import WIRE_TYPES, from_json, to_json
from scpd.cli.output import print_json
from scpd.errors import UsageError


def register(sub: Any) -> None:
    p = sub.add_parser("xdr", help="decode or encode SCP wire values (base64 XDR <-> JSON)")
    actions = p.add_subparsers(dest="xdr_action", metavar="ACTION", required=True)
    types = sorted(WIRE_TYPES)
    dec = actions.add_parser("decode", help="base64 XDR on stdin -> JSON on stdout")
    dec.add_argument("type", metavar="TYPE", choices=types, help="one of: " + ", ".join(types))
    dec.set_defaults(handler=run_decode)
    enc = actions.add_parser("encode", help="JSON on stdin -> base64 XDR on stdout")
    enc.add_argument("type", metavar="TYPE", choices=types, help="one of: " + ", ".join(types))
    enc.set_defaults(handler=run_encode)


def run_decode(args: argparse.Namespace) -> int:
    raw = decode_base64(sys.stdin.buffer.read(), "stdin")
    value = WIRE_TYPES[args.type].from_xdr(raw)
    print_json(to_json(value))
    return 0


def run_encode(args: argparse.Namespace) -> int:
    data = parse_json(sys.stdin.buffer.read(), "stdin")
    value = from_json(WIRE_TYPES[args.type], data)
    print(base64.b64encode(value.to_xdr()).decode("ascii"))
    return 0


def decode_base64(text: bytes, where: str) -> bytes:
    """Strict base64, or a ``UsageError`` naming ``where``.

    Whitespace anywhere is dropped first: ``base64`` and ``openssl base64`` wrap
    their output at 76 or 64 columns, and operators paste exactly that.
    """
    stripped = b"".join(text.split())
    if not stripped:
        raise UsageError(f"{where}: empty input, expected base64 XDR")
    try:
        return base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        raise UsageError(f"{where}: not valid base64") from None


def parse_json(text: bytes, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{where}: not UTF-8 text") from None
    except RecursionError:
        raise UsageError(f"{where}: JSON nested too deeply") from None
