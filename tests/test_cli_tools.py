"""The operator tools, run as a real ``scpd`` process exactly as an operator would."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from testdata import PUBNET_ENVELOPES

from scpd.base import strkey
from scpd.base.keys import Keypair
from scpd.base.types import (
    PublicKey,
    SCPBallot,
    SCPConfirm,
    SCPEnvelope,
    SCPExternalize,
    SCPNomination,
    SCPPrepare,
    SCPQuorumSet,
    SCPStatement,
    XdrType,
)

REPO = Path(__file__).resolve().parent.parent
PUBNET = json.loads(PUBNET_ENVELOPES.read_text())
PASSPHRASE = PUBNET["network_passphrase"]
REAL_B64 = [e["xdr_base64"] for e in PUBNET["envelopes"]]


def scpd(*args: str, stdin: str | bytes = b"") -> subprocess.CompletedProcess[str]:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    proc = subprocess.run(
        [sys.executable, "-m", "scpd", *args], input=data, capture_output=True, cwd=REPO, timeout=60, check=False
    )
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result
    assert result.stderr.startswith("scpd: error: "), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr


# --- keygen -----------------------------------------------------------------------------


def test_keygen_prints_a_seed_and_its_public_key() -> None:
    result = scpd("keygen")
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    kp = Keypair.from_seed_strkey(lines["seed"])
    assert str(kp.public_key) == lines["public key"]


def test_keygen_makes_a_new_key_each_time() -> None:
    assert scpd("keygen").stdout != scpd("keygen").stdout


def test_keygen_out_writes_a_private_file_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "node.seed"
    result = scpd("keygen", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    seed_text = out.read_text()
    assert seed_text.startswith("S") and seed_text.strip() not in result.stdout
    public = result.stdout.splitlines()[-1].removeprefix("public key: ")
    assert str(Keypair.from_seed_strkey(seed_text).public_key) == public

    again = scpd("keygen", "--out", str(out))
    assert_one_line_error(again, str(out), "already exists")
    assert out.read_text() == seed_text


# --- xdr decode / encode ------------------------------------------------------------------


def round_trip(type_name: str, b64: str) -> dict[str, object] | str:
    decoded = scpd("xdr", "decode", type_name, stdin=b64 + "\n")
    assert decoded.returncode == 0, decoded.stderr
    data: dict[str, object] | str = json.loads(decoded.stdout)
    encoded = scpd("xdr", "encode", type_name, stdin=decoded.stdout)
    assert encoded.returncode == 0, encoded.stderr
    assert encoded.stdout.strip() == b64
    return data


@pytest.mark.parametrize("entry", PUBNET["envelopes"], ids=lambda e: e["type"])
def test_xdr_round_trip_of_pubnet_envelopes(entry: dict[str, object]) -> None:
    data = round_trip("SCPEnvelope", str(entry["xdr_base64"]))
    assert isinstance(data, dict)
    statement = data["statement"]
    assert isinstance(statement, dict)
    assert statement["nodeID"] == entry["node_id"]
    assert statement["slotIndex"] == entry["slot_index"]
    pledges = statement["pledges"]
    assert isinstance(pledges, dict) and pledges["type"] == entry["type"]
    signature = data["signature"]
    assert isinstance(signature, str) and len(bytes.fromhex(signature)) == 64


KEY = PublicKey(bytes(range(32)))
BALLOT = SCPBallot(7, b"\x01\x02\x03")
OTHER_TYPES: list[XdrType] = [
    KEY,
    BALLOT,
    SCPQuorumSet(2, (KEY,), (SCPQuorumSet(1, (PublicKey(bytes(32)),), (SCPQuorumSet(1, (KEY,)),)),)),
    SCPNomination(bytes(range(32)), (b"a", b"bcdef"), (b"",)),
    SCPPrepare(bytes(32), BALLOT, None, SCPBallot(2, b"x"), 0, 2**32 - 1),
    SCPConfirm(BALLOT, 1, 2, 3, bytes(range(32))),
    SCPExternalize(BALLOT, 9, bytes(32)),
    SCPStatement(KEY, 2**64 - 1, SCPNomination(bytes(32), (b"v",))),
    SCPEnvelope(SCPStatement(KEY, 0, SCPPrepare(bytes(32), BALLOT, BALLOT, None, 1, 7)), b""),
]


@pytest.mark.parametrize("value", OTHER_TYPES, ids=lambda v: type(v).__name__)
def test_xdr_round_trip_of_every_type(value: XdrType) -> None:
    round_trip(type(value).__name__, base64.b64encode(value.to_xdr()).decode())


def test_xdr_decode_prints_keys_as_strkeys_and_bytes_as_hex() -> None:
    nomination = SCPNomination(bytes(range(32)), (b"\xab\xcd",), ())
    result = scpd("xdr", "decode", "SCPNomination", stdin=base64.b64encode(nomination.to_xdr()))
    assert json.loads(result.stdout) == {"quorumSetHash": bytes(range(32)).hex(), "votes": ["abcd"], "accepted": []}
    result = scpd("xdr", "decode", "PublicKey", stdin=base64.b64encode(KEY.to_xdr()))
    assert json.loads(result.stdout) == strkey.encode_public_key(KEY.ed25519)


def test_xdr_decode_accepts_line_wrapped_base64() -> None:
    wrapped = "\n".join(REAL_B64[3][i : i + 76] for i in range(0, len(REAL_B64[3]), 76))
    assert wrapped.count("\n") > 3
    result = scpd("xdr", "decode", "SCPEnvelope", stdin=wrapped + "\n")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["statement"]["pledges"]["type"] == "PREPARE"


def test_xdr_decode_of_bad_base64() -> None:
    assert_one_line_error(scpd("xdr", "decode", "SCPEnvelope", stdin="not base64!"), "stdin", "base64")


def test_xdr_decode_of_empty_input() -> None:
    assert_one_line_error(scpd("xdr", "decode", "SCPBallot", stdin=""), "empty")


def test_xdr_decode_of_bytes_that_are_not_the_type() -> None:
    result = scpd("xdr", "decode", "SCPEnvelope", stdin=base64.b64encode(BALLOT.to_xdr()))
    assert_one_line_error(result, "PublicKey.")
    trailing = base64.b64encode(BALLOT.to_xdr() + bytes(4))
    assert_one_line_error(scpd("xdr", "decode", "SCPBallot", stdin=trailing), "trailing")


def test_xdr_encode_of_invalid_json() -> None:
    assert_one_line_error(scpd("xdr", "encode", "SCPBallot", stdin='{"counter": 1,'), "invalid JSON", "line 1")


@pytest.mark.parametrize(
    ("type_name", "document", "needle"),
    [
        ("SCPBallot", {"counter": -1, "value": ""}, "SCPBallot.counter"),
        ("SCPBallot", {"counter": 1, "value": "zz"}, "SCPBallot.value: not valid hex"),
        ("SCPBallot", {"counter": 1}, "SCPBallot.value: missing"),
        ("SCPBallot", {"counter": 1, "value": "", "extra": 0}, "SCPBallot.extra: unknown field"),
        ("SCPQuorumSet", {"threshold": 1, "validators": ["GXYZ"], "innerSets": []}, "SCPQuorumSet.validators[0]"),
        ("SCPExternalize", {"commit": {"counter": 1, "value": ""}, "nH": 1, "commitQuorumSetHash": "00"}, "32 bytes"),
        ("SCPStatement", {"nodeID": str(KEY), "slotIndex": 1, "pledges": {"type": "VOTE"}}, "pledges.type"),
    ],
)
def test_xdr_encode_of_json_that_is_not_the_type(type_name: str, document: object, needle: str) -> None:
    assert_one_line_error(scpd("xdr", "encode", type_name, stdin=json.dumps(document)), needle)


def test_xdr_unknown_type_is_a_usage_error() -> None:
    result = scpd("xdr", "decode", "TransactionEnvelope", stdin="AAAA")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


# --- envelope verify -----------------------------------------------------------------------


def verify(stdin: str) -> subprocess.CompletedProcess[str]:
    return scpd("envelope", "verify", "--network-passphrase", PASSPHRASE, stdin=stdin)


def test_envelope_verify_all_valid() -> None:
    result = verify("\n".join(REAL_B64) + "\n")
    assert result.returncode == 0, result.stderr
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["line"] for r in reports] == [1, 2, 3, 4]
    for number, (report, entry) in enumerate(zip(reports, PUBNET["envelopes"], strict=True), start=1):
        assert report == {
            "line": number,
            "node": entry["node_id"],
            "slot": entry["slot_index"],
            "type": entry["type"],
            "signature_valid": True,
        }


def test_envelope_verify_ignores_blank_lines_but_counts_them() -> None:
    result = verify("\n" + REAL_B64[0] + "\n   \n" + REAL_B64[1] + "\n\n")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["line"] for line in result.stdout.splitlines()] == [2, 4]


def test_envelope_verify_flags_a_tampered_envelope() -> None:
    raw = bytearray(base64.b64decode(REAL_B64[1]))
    raw[-1] ^= 0x01  # last signature byte
    tampered = base64.b64encode(bytes(raw)).decode()
    result = verify("\n".join([REAL_B64[0], tampered, REAL_B64[2]]))
    assert result.returncode == 1, result.stderr
    assert [json.loads(line)["signature_valid"] for line in result.stdout.splitlines()] == [True, False, True]


def test_envelope_verify_under_the_wrong_network_is_invalid() -> None:
    result = scpd("envelope", "verify", "--network-passphrase", "Test SDF Network ; September 2015", stdin=REAL_B64[0])
    assert result.returncode == 1
    assert json.loads(result.stdout)["signature_valid"] is False


def test_envelope_verify_garbage_names_the_line() -> None:
    result = verify("\n".join([REAL_B64[0], "", "this is not an envelope", REAL_B64[1]]))
    assert_one_line_error(result, "line 3", "base64")


def test_envelope_verify_undecodable_envelope_names_the_line_and_field() -> None:
    truncated = base64.b64encode(base64.b64decode(REAL_B64[0])[:-8]).decode()
    assert_one_line_error(verify(REAL_B64[2] + "\n" + truncated + "\n"), "line 2", "SCPEnvelope.signature")


def test_envelope_verify_binary_junk_names_the_line() -> None:
    result = scpd("envelope", "verify", "--network-passphrase", PASSPHRASE, stdin=b"\xff\xfe\x00junk\n")
    assert_one_line_error(result, "line 1")


def test_envelope_verify_with_no_envelopes() -> None:
    assert_one_line_error(verify("\n\n"), "no envelopes")
