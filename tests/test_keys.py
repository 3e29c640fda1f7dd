"""Strkeys, network ids and envelope signatures, checked against stellar-sdk and pubnet."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pytest
import stellar_sdk
from testdata import PUBNET_ENVELOPES

from scpd.base import strkey
from scpd.base.keys import (
    Keypair,
    network_id,
    sign_statement,
    signature_payload,
    verify_envelope,
    verify_signature,
)
from scpd.base.types import PublicKey, SCPBallot, SCPEnvelope, SCPPrepare, SCPStatement
from scpd.errors import KeyFormatError, XdrError

PUBNET = json.loads(PUBNET_ENVELOPES.read_text())
PASSPHRASE = PUBNET["network_passphrase"]
NET_ID = network_id(PASSPHRASE)
REAL = [base64.b64decode(e["xdr_base64"]) for e in PUBNET["envelopes"]]
BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


# --- strkeys ---------------------------------------------------------------------------


def test_strkeys_match_stellar_sdk_for_random_seeds() -> None:
    rng = random.Random("strkey")
    for _ in range(200):
        seed = rng.randbytes(32)
        theirs = stellar_sdk.Keypair.from_raw_ed25519_seed(seed)
        ours = Keypair(seed)
        assert ours.seed_strkey == theirs.secret
        assert str(ours.public_key) == theirs.public_key
        assert strkey.decode_seed(theirs.secret) == seed
        assert strkey.decode_public_key(theirs.public_key) == theirs.raw_public_key()
        assert Keypair.from_seed_strkey(theirs.secret).public_key == ours.public_key


def test_known_vector() -> None:
    # All-zero key: a fixed point any Stellar implementation agrees on.
    assert strkey.encode_public_key(bytes(32)) == "GAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAWHF"
    assert strkey.encode_public_key(bytes(32)) == stellar_sdk.Keypair.from_raw_ed25519_public_key(bytes(32)).public_key


def test_crc16_xmodem_check_value() -> None:
    # The catalogued check value of CRC-16/XMODEM.
    assert strkey.crc16_xmodem(b"123456789") == 0x31C3


def test_pubnet_node_ids_are_valid_public_keys() -> None:
    for entry in PUBNET["envelopes"]:
        assert str(PublicKey.from_strkey(entry["node_id"])) == entry["node_id"]


def _replace_char(text: str, index: int) -> str:
    other = BASE32[(BASE32.index(text[index]) + 1) % 32]
    return text[:index] + other + text[index + 1 :]


@pytest.mark.parametrize("index", range(56))
def test_any_changed_character_is_a_checksum_mismatch(index: int) -> None:
    good = strkey.encode_public_key(bytes(range(32)))
    bad = _replace_char(good, index)
    if index == 0:
        # The first character carries the version byte, so that is what is reported.
        with pytest.raises(KeyFormatError, match="not a public key"):
            strkey.decode_public_key(bad)
    else:
        with pytest.raises(KeyFormatError, match="checksum mismatch"):
            strkey.decode_public_key(bad)


def test_seed_where_a_public_key_is_expected() -> None:
    seed = strkey.encode_seed(bytes(32))
    with pytest.raises(KeyFormatError, match=r"not a public key \(G\.\.\.\): this strkey is a secret seed"):
        strkey.decode_public_key(seed)


def test_public_key_where_a_seed_is_expected() -> None:
    public = strkey.encode_public_key(bytes(32))
    with pytest.raises(KeyFormatError, match=r"not a secret seed \(S\.\.\.\): this strkey is a public key"):
        strkey.decode_seed(public)
    with pytest.raises(KeyFormatError, match="secret seed"):
        Keypair.from_seed_strkey(public)


def test_unknown_version_byte() -> None:
    muxed_like = base64.b32encode(bytes([12 << 3]) + bytes(34)).decode()
    with pytest.raises(KeyFormatError, match="version byte 96"):
        strkey.decode_public_key(muxed_like)


@pytest.mark.parametrize("length", [0, 1, 55, 57, 69])
def test_wrong_length(length: int) -> None:
    good = strkey.encode_public_key(bytes(32))
    text = (good * 2)[:length]
    with pytest.raises(KeyFormatError, match="expected 56 characters"):
        strkey.decode_public_key(text)


@pytest.mark.parametrize(
    "text",
    [
        "GAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAWHF".lower(),
        "GAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAWHf",
        "GAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAWH1",
        "GAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAWH=",
        "GAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAWH\u00e9",
        "GAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA AWHF",
    ],
)
def test_invalid_base32(text: str) -> None:
    with pytest.raises(KeyFormatError, match="invalid base32"):
        strkey.decode_public_key(text)


def test_encode_refuses_wrong_key_length() -> None:
    with pytest.raises(KeyFormatError, match="32 bytes"):
        strkey.encode_public_key(bytes(31))
    with pytest.raises(KeyFormatError, match="32 bytes"):
        Keypair(bytes(33))


def test_keypair_repr_never_shows_the_seed() -> None:
    kp = Keypair(bytes(range(32)))
    assert kp.seed_strkey not in repr(kp) and kp.seed_strkey not in str(kp)
    assert str(kp.public_key) in repr(kp)


# --- network id and signatures ------------------------------------------------------------


def test_network_id_of_the_pubnet_passphrase() -> None:
    assert NET_ID.hex() == PUBNET["network_id_hex"]
    assert stellar_sdk.Network(PASSPHRASE).network_id() == NET_ID


@pytest.mark.parametrize("index", range(len(REAL)))
def test_pubnet_envelopes_verify(index: int) -> None:
    envelope, statement_xdr = SCPEnvelope.from_xdr_with_statement(REAL[index])
    assert verify_envelope(NET_ID, envelope)
    assert verify_envelope(NET_ID, envelope, statement_xdr)


def test_pubnet_envelopes_do_not_verify_on_another_network() -> None:
    other = network_id("Test SDF Network ; September 2015")
    for raw in REAL:
        assert not verify_envelope(other, SCPEnvelope.from_xdr(raw))


def _accepted(raw: bytes) -> bool:
    """What a node does with these bytes: decode strictly, then verify."""
    try:
        envelope, statement_xdr = SCPEnvelope.from_xdr_with_statement(raw)
    except XdrError:
        return False
    return verify_envelope(NET_ID, envelope, statement_xdr) and verify_envelope(NET_ID, envelope)


@pytest.mark.parametrize("index", range(len(REAL)))
@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_changing_any_byte_breaks_the_signature(index: int, mask: int) -> None:
    """Exhaustive over every byte of statement and signature: none can change unnoticed."""
    raw = REAL[index]
    assert _accepted(raw)
    _, statement_xdr = SCPEnvelope.from_xdr_with_statement(raw)
    signature_start = len(statement_xdr) + 4  # skip the signature's length word
    positions = [*range(len(statement_xdr)), *range(signature_start, len(raw))]
    assert len(positions) == len(raw) - 4
    for pos in positions:
        mutated = bytearray(raw)
        mutated[pos] ^= mask
        assert not _accepted(bytes(mutated)), f"byte {pos} ^ {mask:#x} went unnoticed"


def test_signature_of_the_wrong_length_is_invalid_not_an_error() -> None:
    envelope = SCPEnvelope.from_xdr(REAL[0])
    for length in (0, 1, 63):
        assert not verify_envelope(NET_ID, SCPEnvelope(envelope.statement, envelope.signature[:length]))


def _statement(node: PublicKey) -> SCPStatement:
    ballot = SCPBallot(3, b"value")
    return SCPStatement(node, 42, SCPPrepare(bytes(32), ballot, ballot, None, 1, 3))


def test_signing_agrees_with_stellar_sdk() -> None:
    seed = bytes(range(32))
    kp = Keypair(seed)
    envelope = sign_statement(kp, NET_ID, _statement(kp.public_key))
    assert verify_envelope(NET_ID, envelope)
    theirs = stellar_sdk.Keypair.from_raw_ed25519_seed(seed)
    payload = signature_payload(NET_ID, envelope.statement.to_xdr())
    assert theirs.sign(payload) == envelope.signature
    theirs.verify(payload, envelope.signature)  # raises if invalid


def test_signature_by_another_key_is_invalid() -> None:
    signer, claimed = Keypair(bytes(32)), Keypair(bytes([1]) * 32)
    envelope = sign_statement(signer, NET_ID, _statement(claimed.public_key))
    assert not verify_envelope(NET_ID, envelope)


def test_verify_signature_rejects_a_non_point_public_key() -> None:
    # Not every 32-byte string is a curve point; that must be "invalid", not an exception.
    bogus: Any = PublicKey(b"\xff" * 32)
    assert not verify_signature(bogus, b"message", bytes(64))
