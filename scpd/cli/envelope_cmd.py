"""``scpd envelope verify``: check the signatures of captured SCP envelopes.

Reads base64 ``SCPEnvelope``s one per line (blank lines ignored), as an
operator collects them from logs, and prints one JSON line per envelope as it
goes, so it also works at the end of a pipe that never closes. A line that is
not an envelope stops the run with a one-line error naming that line (exit 2):
garbage in the input means the capture itself is broken, and guessing past it
would hide that. Exit 1 if any signature is invalid, 0 only if all are valid.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from scpd.base.keys import network_id, verify_envelope
from scpd.base.types import SCPEnvelope
from scpd.cli.output import print_json
from scpd.cli.xdr_cmd import decode_base64
from scpd.errors import ScpdError, UsageError


def register(sub: Any) -> None:
    p = sub.add_parser("envelope", help="work with signed SCP envelopes")
    actions = p.add_subparsers(dest="envelope_action", metavar="ACTION", required=True)
    ver = actions.add_parser("verify", help="verify base64 SCPEnvelopes read one per line from stdin")
    ver.add_argument(
        "--network-passphrase",
        required=True,
        metavar="P",
        help='network the envelopes were signed for, e.g. "Public Global Stellar Network ; September 2015"',
    )
    ver.set_defaults(handler=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    net_id = network_id(args.network_passphrase)
    seen = 0
    all_valid = True
    for number, line in enumerate(sys.stdin.buffer, start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            envelope, statement_xdr = SCPEnvelope.from_xdr_with_statement(decode_base64(line, where))
        except UsageError:
            raise
        except ScpdError as exc:
            raise UsageError(f"{where}: {exc}") from None
        valid = verify_envelope(net_id, envelope, statement_xdr)
        all_valid = all_valid and valid
        seen += 1
        statement = envelope.statement
        report = {
            "line": number,
            "node": str(statement.node_id),
            "slot": statement.slot_index,
            "type": statement.type.name,
            "signature_valid": valid,
        }
        print_json(report, indent=None, flush=True)
    if seen == 0:
        raise UsageError("stdin: no envelopes to verify")
    return 0 if all_valid else 1
