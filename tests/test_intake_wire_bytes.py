"""A received envelope is judged on the bytes it arrived as: the signature cache key and the signed
statement are the decoded bytes themselves, never a re-encoding, and strict decoding leaves no second
encoding of the same envelope to slip through."""

from __future__ import annotations

import base64
import json
import struct

import pytest
from nodecore_harness import NET, T0, Net, make_net
from testdata import PUBNET_ENVELOPES

from scpd.base.keys import Keypair, sign_statement, verify_envelope
from scpd.base.types import SCPBallot, SCPEnvelope, SCPPrepare, SCPStatement
from scpd.errors import XdrError
from scpd.nodecore import events as ev
from scpd.nodecore.actions import Verdict
from scpd.nodecore.messages import ScpMessage, decode_message, encode_message
from scpd.nodecore.settings import CoreSettings
from scpd.nodecore.values import ConsensusValue, decode_value

PUBNET = json.loads(PUBNET_ENVELOPES.read_text())
PUBNET_RAW = [base64.b64decode(e["xdr_base64"]) for e in PUBNET["envelopes"]]
_TYPE = struct.pack(">i", ScpMessage.TYPE)


def wire(envelope: SCPEnvelope) -> bytes:
    return encode_message(ScpMessage(envelope))


def received(data: bytes) -> ScpMessage:
    message = decode_message(data)
    assert isinstance(message, ScpMessage)
    return message


def started() -> Net:
    # Far-ahead slots stop right after the signature check: nothing else in the core runs.
    net = make_net(CoreSettings(max_slots_ahead=3))
    net.handle(ev.Started(T0))
    net.facts.seen.clear()
    return net


def deliver(net: Net, sender: Keypair, message: ScpMessage) -> Verdict:
    return net.core.handle(ev.MessageReceived(sender.public_key, message, T0)).verdict


@pytest.mark.parametrize("raw", PUBNET_RAW)
def test_the_kept_bytes_are_the_received_bytes_and_the_envelope_s_encoding(raw: bytes) -> None:
    message = received(_TYPE + raw)
    envelope, statement_xdr = SCPEnvelope.from_xdr_with_statement(raw)
    assert message.envelope_xdr == raw == envelope.to_xdr()
    assert message.statement_xdr == statement_xdr == envelope.statement.to_xdr()
    assert encode_message(message) == _TYPE + raw


def test_a_received_signature_is_verified_over_the_received_statement_bytes_without_re_encoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    net = started()
    envelope = net.nominate(net.a, 9, net.value(net.tx_set(b"x")))
    data = wire(envelope)
    message = received(data)
    signed: list[bytes] = []

    def recording_verify(net_id: bytes, env: SCPEnvelope, statement_xdr: bytes | None = None) -> bool:
        assert statement_xdr is not None
        signed.append(statement_xdr)
        return verify_envelope(net_id, env, statement_xdr)

    def no_encoding(*_: object) -> None:
        raise AssertionError("a received envelope was encoded again")

    monkeypatch.setattr("scpd.nodecore.intake.verify_envelope", recording_verify)
    monkeypatch.setattr(SCPStatement, "pack", no_encoding)
    monkeypatch.setattr(SCPEnvelope, "pack", no_encoding)
    assert deliver(net, net.b, message) is Verdict.IGNORE
    assert net.facts.seen == [("verified", True), ("rejected", "slot_out_of_range")]
    assert signed == [data[4 : 4 + len(signed[0])]]
    assert data[4 + len(signed[0]) :] == struct.pack(">I", 64) + envelope.signature


def test_a_constructed_message_is_encoded_once_and_equals_its_decoded_copy() -> None:
    net = started()
    envelope = net.nominate(net.a, 9, net.value(net.tx_set(b"x")))
    built = ScpMessage(envelope)
    copy = received(wire(envelope))
    assert built.envelope_xdr is built.envelope_xdr
    assert built == copy and hash(built) == hash(copy)
    assert deliver(net, net.b, built) is Verdict.IGNORE
    assert deliver(net, net.b, copy) is Verdict.IGNORE
    assert [f for f in net.facts.seen if f[0] in ("verified", "remembered")] == [
        ("verified", True),
        ("remembered", None),
    ]


def _prepare(kp: Keypair) -> SCPEnvelope:
    pledges = SCPPrepare(bytes(32), SCPBallot(1, b"abc"), None, None, 0, 0)
    return sign_statement(kp, NET, SCPStatement(kp.public_key, 9, pledges))


def test_other_encodings_of_a_signed_envelope_never_decode() -> None:
    """The forms a lenient decoder would map to the same envelope (each re-encodes differently)."""
    kp = Keypair(bytes([7]) * 32)
    data = wire(_prepare(kp))
    received(data)
    statement_len = len(_prepare(kp).statement.to_xdr())
    value_padding = data.index(b"abc") + 3
    prepared_flag = value_padding + 1
    forms = {
        "non-zero padding": data[:value_padding] + b"\x01" + data[value_padding + 1 :],
        "optional flag 2": data[:prepared_flag] + struct.pack(">I", 2) + data[prepared_flag + 4 :],
        "trailing bytes": data + bytes(4),
    }
    assert data[4 + statement_len :] == struct.pack(">I", 64) + _prepare(kp).signature
    for name, forged in forms.items():
        with pytest.raises(XdrError):
            decode_message(forged)
        assert forged != data, name


def test_a_forged_statement_under_a_kept_signature_is_refused_and_remembered_as_bad() -> None:
    net = started()
    genuine = wire(net.nominate(net.a, 9, net.value(net.tx_set(b"x"))))
    other = wire(net.nominate(net.a, 9, net.value(net.tx_set(b"y"))))
    # Another statement under the genuine signature: decodes, but its bytes are not what was signed.
    forged = other[: len(other) - 68] + genuine[len(genuine) - 68 :]
    message = received(forged)
    assert message.envelope_xdr == message.envelope.to_xdr()
    assert deliver(net, net.b, message) is Verdict.REJECT
    assert deliver(net, net.b, received(forged)) is Verdict.REJECT
    assert deliver(net, net.b, received(genuine)) is Verdict.IGNORE
    assert [f for f in net.facts.seen if f[0] in ("verified", "remembered")] == [
        ("verified", False),
        ("remembered", None),
        ("verified", True),
    ]


def test_a_value_is_decoded_once_while_remembered_and_a_malformed_one_every_time() -> None:
    raw = ConsensusValue(12345, bytes(range(32))).to_xdr()
    first = decode_value(raw)
    assert first == ConsensusValue.from_xdr(raw)
    assert decode_value(bytes(raw)) is first
    for _ in range(2):
        with pytest.raises(XdrError):
            decode_value(raw + bytes(4))
