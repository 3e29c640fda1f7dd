"""Hostile bytes get one XdrError naming the field, quickly, and nothing else.

The hand-built cases pin each rule (trailing bytes, over-long lengths, unknown
discriminants, padding, quorum set limits, optional flags, signature length);
the property tests throw random and mutated real envelopes at every decoder.
Whatever a strict decoder accepts must re-encode to exactly the input bytes,
so acceptance is checked as hard as rejection.
"""

from __future__ import annotations

import base64
import json
import struct
import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stellar_sdk import xdr as sx
from testdata import PUBNET_ENVELOPES

from scpd.base.types import (
    MAX_QSET_DEPTH,
    MAX_QSET_NODES,
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
from scpd.base.xdr_json import from_json
from scpd.errors import XdrError

PUBNET = json.loads(PUBNET_ENVELOPES.read_text())
REAL = [base64.b64decode(e["xdr_base64"]) for e in PUBNET["envelopes"]]
ALL_TYPES: list[type[XdrType]] = [
    PublicKey,
    SCPBallot,
    SCPQuorumSet,
    SCPNomination,
    SCPPrepare,
    SCPConfirm,
    SCPExternalize,
    SCPStatement,
    SCPEnvelope,
]
KEY = PublicKey(bytes(range(32)))
HASH = bytes(range(100, 132))


def u32(n: int) -> bytes:
    return struct.pack(">I", n)


def i32(n: int) -> bytes:
    return struct.pack(">i", n)


def opaque(data: bytes) -> bytes:
    return u32(len(data)) + data + bytes(-len(data) % 4)


def statement_head(kind: int) -> bytes:
    """nodeID, slotIndex and the pledges discriminant of a statement."""
    return KEY.to_xdr() + struct.pack(">Q", 7) + i32(kind)


def chained(exc: BaseException) -> bool:
    """Whether a traceback of ``exc`` would show a second exception."""
    return exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__)


def only_xdr_error(decode: Callable[[], object], field: str) -> XdrError:
    """Run ``decode``; it must raise exactly one XdrError (nothing chained) naming ``field``."""
    with pytest.raises(XdrError) as info:
        decode()
    exc = info.value
    assert type(exc) is XdrError
    assert not chained(exc), repr(exc.__context__)
    assert field in str(exc), str(exc)
    return exc


# --- each rule, by hand -----------------------------------------------------------


@pytest.mark.parametrize("extra", [b"\x00", b"\x00" * 4, b"\xff" * 9])
def test_trailing_bytes_are_rejected(extra: bytes) -> None:
    exc = only_xdr_error(lambda: SCPEnvelope.from_xdr(REAL[0] + extra), "SCPEnvelope")
    assert f"{len(extra)} trailing bytes" in str(exc)


def test_trailing_bytes_after_a_small_type() -> None:
    only_xdr_error(lambda: SCPBallot.from_xdr(SCPBallot(1, b"v").to_xdr() + u32(0)), "SCPBallot: 4 trailing bytes")


@pytest.mark.parametrize("claimed", [9, 1000, 2**31, 2**32 - 1])
def test_opaque_length_beyond_the_input(claimed: int) -> None:
    data = u32(1) + u32(claimed) + b"12345678"
    exc = only_xdr_error(lambda: SCPBallot.from_xdr(data), "SCPBallot.value")
    assert "remain" in str(exc)


def test_signature_length_beyond_the_input() -> None:
    statement = SCPEnvelope.from_xdr(REAL[0]).statement.to_xdr()
    only_xdr_error(lambda: SCPEnvelope.from_xdr(statement + u32(64) + bytes(60)), "SCPEnvelope.signature")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (HASH + u32(2**32 - 1), "SCPNomination.votes"),
        (HASH + u32(0) + u32(2**32 - 1), "SCPNomination.accepted"),
        (u32(1) + u32(MAX_QSET_NODES), "SCPQuorumSet.validators"),
        (u32(1) + u32(0) + u32(2**32 - 1), "SCPQuorumSet.innerSets"),
    ],
)
def test_array_count_beyond_the_input(data: bytes, field: str) -> None:
    decoder = SCPNomination if field.startswith("SCPNomination") else SCPQuorumSet
    exc = only_xdr_error(lambda: decoder.from_xdr(data), field)
    assert "cannot fit" in str(exc)


def test_huge_counts_are_refused_before_allocating() -> None:
    """A few bytes claiming four billion elements must not make us allocate for them."""
    hostile = [
        HASH + u32(2**32 - 1),
        u32(1) + u32(0) + u32(2**32 - 1),
        statement_head(3) + HASH + u32(2**32 - 1) + bytes(64),
        u32(1) + u32(2**32 - 1),
    ]
    decoders: list[type[XdrType]] = [SCPNomination, SCPQuorumSet, SCPStatement, SCPBallot]
    tracemalloc.start()
    try:
        for decoder, data in zip(decoders, hostile, strict=True):
            with pytest.raises(XdrError):
                decoder.from_xdr(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


@pytest.mark.parametrize(
    ("decoder", "data", "field"),
    [
        (PublicKey, i32(1) + bytes(32), "PublicKey.type"),
        (PublicKey, i32(-1) + bytes(32), "PublicKey.type"),
        (SCPStatement, statement_head(4) + bytes(100), "SCPStatement.pledges.type"),
        (SCPStatement, statement_head(-1) + bytes(100), "SCPStatement.pledges.type"),
        (SCPStatement, i32(2) + bytes(32) + bytes(8) + i32(0), "PublicKey.type"),
    ],
)
def test_unknown_discriminant(decoder: type[XdrType], data: bytes, field: str) -> None:
    exc = only_xdr_error(lambda: decoder.from_xdr(data), field)
    assert "unknown discriminant" in str(exc)


@pytest.mark.parametrize(
    ("length", "bad_pad_byte"), [(length, i) for length in (1, 2, 3, 5) for i in range(-length % 4)]
)
def test_non_zero_padding_in_a_value(length: int, bad_pad_byte: int) -> None:
    pad = bytearray(-length % 4)
    pad[bad_pad_byte] = 0x80
    data = u32(5) + u32(length) + b"x" * length + bytes(pad)
    exc = only_xdr_error(lambda: SCPBallot.from_xdr(data), "SCPBallot.value")
    assert "non-zero padding" in str(exc)


def test_non_zero_padding_in_a_signature() -> None:
    statement = SCPEnvelope.from_xdr(REAL[0]).statement.to_xdr()
    data = statement + u32(63) + bytes(63) + b"\x01"
    exc = only_xdr_error(lambda: SCPEnvelope.from_xdr(data), "SCPEnvelope.signature")
    assert "non-zero padding" in str(exc)


def test_zero_padding_is_accepted() -> None:
    for length in range(9):
        value = bytes(range(length))
        assert SCPBallot.from_xdr(u32(3) + opaque(value)) == SCPBallot(3, value)


def nested(depth: int) -> SCPQuorumSet:
    q = SCPQuorumSet(1, (KEY,))
    for _ in range(depth - 1):
        q = SCPQuorumSet(1, (), (q,))
    return q


def test_quorum_set_at_the_depth_limit_decodes() -> None:
    q = nested(MAX_QSET_DEPTH)
    assert SCPQuorumSet.from_xdr(q.to_xdr()) == q


@pytest.mark.parametrize("depth", [MAX_QSET_DEPTH + 1, MAX_QSET_DEPTH + 2, 500])
def test_quorum_set_nested_too_deep(depth: int) -> None:
    exc = only_xdr_error(lambda: SCPQuorumSet.from_xdr(nested(depth).to_xdr()), "SCPQuorumSet.innerSets")
    assert f"deeper than {MAX_QSET_DEPTH}" in str(exc)


def test_too_deep_inner_set_after_a_valid_sibling() -> None:
    q = SCPQuorumSet(1, (), (SCPQuorumSet(1, (KEY,)), nested(MAX_QSET_DEPTH)))
    only_xdr_error(lambda: SCPQuorumSet.from_xdr(q.to_xdr()), "SCPQuorumSet.innerSets")


def keys(n: int, offset: int = 0) -> tuple[PublicKey, ...]:
    return tuple(PublicKey((offset + i).to_bytes(32, "big")) for i in range(n))


def test_quorum_set_with_exactly_the_maximum_validators_decodes() -> None:
    q = SCPQuorumSet(1, keys(600), (SCPQuorumSet(1, keys(400, 600)),))
    assert SCPQuorumSet.from_xdr(q.to_xdr()) == q


def test_more_than_the_maximum_validators_in_one_array() -> None:
    data = SCPQuorumSet(1, keys(MAX_QSET_NODES + 1)).to_xdr()
    exc = only_xdr_error(lambda: SCPQuorumSet.from_xdr(data), "SCPQuorumSet.validators")
    assert str(MAX_QSET_NODES) in str(exc)


def test_more_than_the_maximum_validators_across_inner_sets() -> None:
    q = SCPQuorumSet(1, keys(500), (SCPQuorumSet(1, keys(300, 500)), SCPQuorumSet(1, keys(201, 800))))
    exc = only_xdr_error(lambda: SCPQuorumSet.from_xdr(q.to_xdr()), "SCPQuorumSet.validators")
    assert "in all" in str(exc)


@pytest.mark.parametrize("flag", [2, 3, 2**31, 2**32 - 1])
@pytest.mark.parametrize("which", ["prepared", "preparedPrime"])
def test_optional_flag_above_one(flag: int, which: str) -> None:
    ballot = SCPBallot(1, b"v").to_xdr()
    if which == "prepared":
        data = HASH + ballot + u32(flag) + ballot + u32(0) + u32(0) + u32(0)
    else:
        data = HASH + ballot + u32(0) + u32(flag) + ballot + u32(0) + u32(0)
    exc = only_xdr_error(lambda: SCPPrepare.from_xdr(data), f"SCPPrepare.{which}")
    assert "optional flag" in str(exc)


@pytest.mark.parametrize("length", [65, 68, 1000])
def test_signature_longer_than_64_bytes(length: int) -> None:
    statement = SCPEnvelope.from_xdr(REAL[0]).statement.to_xdr()
    exc = only_xdr_error(lambda: SCPEnvelope.from_xdr(statement + opaque(bytes(length))), "SCPEnvelope.signature")
    assert "exceeds maximum 64" in str(exc)


@pytest.mark.parametrize("decoder", ALL_TYPES, ids=lambda t: t.__name__)
def test_empty_input(decoder: type[XdrType]) -> None:
    only_xdr_error(lambda: decoder.from_xdr(b""), ".")


@pytest.mark.parametrize("index", range(len(REAL)))
def test_every_truncation_of_a_real_envelope_names_a_field(index: int) -> None:
    raw = REAL[index]
    for cut in range(len(raw)):
        exc = only_xdr_error(lambda cut=cut: SCPEnvelope.from_xdr(raw[:cut]), "")
        assert str(exc).startswith(("PublicKey.", "SCP")), str(exc)


# --- the encoder refuses what the decoder would refuse ------------------------------


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (SCPStatement(KEY, 2**64, SCPExternalize(SCPBallot(1, b""), 0, HASH)), "SCPStatement.slotIndex"),
        (SCPStatement(KEY, -1, SCPExternalize(SCPBallot(1, b""), 0, HASH)), "SCPStatement.slotIndex"),
        (SCPBallot(-1, b""), "SCPBallot"),
        (SCPBallot(2**32, b""), "SCPBallot"),
        (SCPExternalize(SCPBallot(1, b""), 0, bytes(31)), "SCPExternalize.commitQuorumSetHash"),
        (SCPNomination(bytes(33)), "SCPNomination.quorumSetHash"),
        (SCPEnvelope(SCPStatement(KEY, 1, SCPNomination(HASH)), bytes(65)), "SCPEnvelope.signature"),
    ],
)
def test_encoder_refuses_values_with_no_valid_encoding(value: XdrType, field: str) -> None:
    only_xdr_error(value.to_xdr, field)


def test_public_key_of_the_wrong_length_is_refused_at_construction() -> None:
    with pytest.raises(XdrError, match=r"PublicKey\.ed25519"):
        PublicKey(bytes(31))


# --- properties: random and mutated input ---------------------------------------------


def decode_strictly(decoder: type[XdrType], data: bytes) -> None:
    """The one contract of every decoder: XdrError, or a value that re-encodes to ``data``."""
    try:
        value = decoder.from_xdr(data)
    except XdrError as exc:
        assert type(exc) is XdrError and not chained(exc)
        return
    assert value.to_xdr() == data


@pytest.mark.timeout(120)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(decoder=st.sampled_from(ALL_TYPES), data=st.binary(max_size=700))
def test_random_bytes_only_raise_xdr_error(decoder: type[XdrType], data: bytes) -> None:
    decode_strictly(decoder, data)


# 4-byte words that are interesting as lengths, counts, discriminants and optional flags.
INTERESTING_WORDS = [0, 1, 2, 3, 4, 5, 31, 32, 33, 63, 64, 65, 1000, 1001, 2**31 - 1, 2**31, 2**32 - 1]


@st.composite
def mutated_envelope(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(REAL)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "word"]))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "word":
            aligned = pos - pos % 4
            data[aligned : aligned + 4] = u32(draw(st.sampled_from(INTERESTING_WORDS)))
    return bytes(data)


@pytest.mark.timeout(120)
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated_envelope())
def test_mutated_real_envelopes_only_raise_xdr_error(data: bytes) -> None:
    decode_strictly(SCPEnvelope, data)
    decode_strictly(SCPStatement, data)


@pytest.mark.timeout(120)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated_envelope())
def test_what_we_accept_stellar_sdk_reads_the_same(data: bytes) -> None:
    try:
        ours = SCPEnvelope.from_xdr(data)
    except XdrError:
        return
    assert sx.SCPEnvelope.from_xdr_bytes(data).to_xdr_bytes() == ours.to_xdr()


@pytest.mark.parametrize("index", range(len(REAL)))
def test_every_single_bit_flip_of_a_real_envelope(index: int) -> None:
    raw = REAL[index]
    for pos in range(len(raw)):
        for bit in range(8):
            mutated = bytearray(raw)
            mutated[pos] ^= 1 << bit
            decode_strictly(SCPEnvelope, bytes(mutated))


@pytest.mark.parametrize("index", range(len(REAL)))
def test_every_word_overwrite_of_a_real_envelope(index: int) -> None:
    raw = REAL[index]
    for pos in range(0, len(raw), 4):
        for word in INTERESTING_WORDS:
            decode_strictly(SCPEnvelope, raw[:pos] + u32(word) + raw[pos + 4 :])


# --- the JSON form is as strict as the decoder ------------------------------------------


def qset_json(depth: int) -> dict[str, object]:
    doc: dict[str, object] = {"threshold": 1, "validators": [str(KEY)], "innerSets": []}
    for _ in range(depth - 1):
        doc = {"threshold": 1, "validators": [], "innerSets": [doc]}
    return doc


def test_json_quorum_set_at_the_limits_is_accepted() -> None:
    assert from_json(SCPQuorumSet, qset_json(MAX_QSET_DEPTH)) == nested(MAX_QSET_DEPTH)


@pytest.mark.parametrize("depth", [MAX_QSET_DEPTH + 1, 900])
def test_json_quorum_set_nested_too_deep(depth: int) -> None:
    exc = only_xdr_error(lambda: from_json(SCPQuorumSet, qset_json(depth)), "SCPQuorumSet.innerSets")
    assert "deeper than" in str(exc)


def test_json_quorum_set_with_too_many_validators() -> None:
    many = [str(k) for k in keys(MAX_QSET_NODES)]
    doc = {
        "threshold": 1,
        "validators": many,
        "innerSets": [{"threshold": 1, "validators": [many[0]], "innerSets": []}],
    }
    only_xdr_error(lambda: from_json(SCPQuorumSet, doc), "more than 1000 validators")


BALLOT_JSON = {"counter": 1, "value": "ab"}
STATEMENT_JSON = {
    "nodeID": str(KEY),
    "slotIndex": 5,
    "pledges": {
        "type": "EXTERNALIZE",
        "externalize": {"commit": BALLOT_JSON, "nH": 1, "commitQuorumSetHash": HASH.hex()},
    },
}


@pytest.mark.parametrize(
    ("cls", "doc", "field"),
    [
        (SCPBallot, {"counter": True, "value": ""}, "SCPBallot.counter: expected an integer"),
        (SCPBallot, {"counter": 1.0, "value": ""}, "SCPBallot.counter: expected an integer"),
        (SCPBallot, {"counter": 2**32, "value": ""}, "SCPBallot.counter: expected an integer 0..4294967295"),
        (SCPBallot, {"counter": 1, "value": "a"}, "SCPBallot.value: not valid hex"),
        (SCPBallot, {"counter": 1, "value": "ab cd"}, "SCPBallot.value: not valid hex"),
        (SCPBallot, {"counter": 1, "value": 12}, "SCPBallot.value: expected a hex string"),
        (SCPBallot, [1, "ab"], "SCPBallot: expected an object"),
        (SCPStatement, {**STATEMENT_JSON, "slotIndex": 2**64}, "SCPStatement.slotIndex"),
        (SCPStatement, {**STATEMENT_JSON, "nodeID": "S" + str(KEY)[1:]}, "SCPStatement.nodeID"),
        (SCPStatement, {**STATEMENT_JSON, "pledges": {"type": "PREPARE"}}, "SCPStatement.pledges.prepare: missing"),
        (
            SCPStatement,
            {**STATEMENT_JSON, "pledges": {**STATEMENT_JSON["pledges"], "nominate": {}}},
            "SCPStatement.pledges.nominate: unknown field",
        ),
        (SCPStatement, {**STATEMENT_JSON, "pledges": {"type": 2}}, "SCPStatement.pledges.type: expected one of"),
        (
            SCPEnvelope,
            {"statement": STATEMENT_JSON, "signature": "00" * 65},
            "SCPEnvelope.signature: at most 64 bytes",
        ),
        (SCPNomination, {"quorumSetHash": "00" * 31, "votes": [], "accepted": []}, "expected 32 bytes"),
        (SCPNomination, {"quorumSetHash": HASH.hex(), "votes": "ab", "accepted": []}, "SCPNomination.votes"),
        (SCPNomination, {"quorumSetHash": HASH.hex(), "votes": ["ab", 3], "accepted": []}, "SCPNomination.votes[1]"),
        (PublicKey, 7, "PublicKey: expected a G... strkey"),
    ],
)
def test_bad_json_names_the_field(cls: type[XdrType], doc: object, field: str) -> None:
    only_xdr_error(lambda: from_json(cls, doc), field)


def test_valid_statement_json_is_accepted() -> None:
    statement = from_json(SCPStatement, STATEMENT_JSON)
    assert isinstance(statement.pledges, SCPExternalize) and statement.slot_index == 5
