"""Our XDR codec is byte-identical to the Stellar network's.

Two independent witnesses: real pubnet envelopes, and stellar-sdk's generated
``stellar_sdk.xdr`` classes. For each wire type, 1,000 seeded random values are
encoded by both sides and each side decodes the other's bytes.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable
from typing import Any

import pytest
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
    SCPStatementType,
    XdrType,
)
from scpd.base.xdr_json import from_json, to_json

TESTDATA = PUBNET_ENVELOPES
PUBNET = json.loads(TESTDATA.read_text())
VALUES_PER_TYPE = 1000
UINT32_EDGES = (0, 1, 2**31 - 1, 2**31, 2**32 - 1)
UINT64_EDGES = (0, 1, 2**32, 2**63, 2**64 - 1)


# --- the pubnet envelopes --------------------------------------------------------


@pytest.mark.parametrize("entry", PUBNET["envelopes"], ids=lambda e: e["type"])
def test_pubnet_envelope_round_trips_byte_for_byte(entry: dict[str, Any]) -> None:
    raw = base64.b64decode(entry["xdr_base64"])
    envelope = SCPEnvelope.from_xdr(raw)
    assert envelope.to_xdr() == raw
    assert str(envelope.statement.node_id) == entry["node_id"]
    assert envelope.statement.slot_index == entry["slot_index"]
    assert envelope.statement.type.name == entry["type"]


@pytest.mark.parametrize("entry", PUBNET["envelopes"], ids=lambda e: e["type"])
def test_pubnet_envelope_agrees_with_stellar_sdk(entry: dict[str, Any]) -> None:
    raw = base64.b64decode(entry["xdr_base64"])
    assert to_sdk(SCPEnvelope.from_xdr(raw)) == sx.SCPEnvelope.from_xdr_bytes(raw)


def test_pubnet_envelopes_cover_all_four_statement_types() -> None:
    assert {e["type"] for e in PUBNET["envelopes"]} == {t.name for t in SCPStatementType}


def test_statement_bytes_are_the_envelope_prefix() -> None:
    for entry in PUBNET["envelopes"]:
        raw = base64.b64decode(entry["xdr_base64"])
        envelope, statement_xdr = SCPEnvelope.from_xdr_with_statement(raw)
        assert statement_xdr == envelope.statement.to_xdr()
        assert raw.startswith(statement_xdr)


# --- conversion to stellar-sdk's classes (written from Stellar-SCP.x, not from our code) ---


def to_sdk(value: Any) -> Any:
    """The stellar-sdk object for one of our wire values, field by field."""
    if isinstance(value, PublicKey):
        return sx.PublicKey(sx.PublicKeyType.PUBLIC_KEY_TYPE_ED25519, sx.Uint256(value.ed25519))
    if isinstance(value, SCPBallot):
        return sx.SCPBallot(sx.Uint32(value.counter), sx.Value(value.value))
    if isinstance(value, SCPQuorumSet):
        return sx.SCPQuorumSet(
            sx.Uint32(value.threshold),
            [sx.NodeID(to_sdk(v)) for v in value.validators],
            [to_sdk(q) for q in value.inner_sets],
        )
    if isinstance(value, SCPNomination):
        return sx.SCPNomination(
            sx.Hash(value.quorum_set_hash),
            [sx.Value(v) for v in value.votes],
            [sx.Value(v) for v in value.accepted],
        )
    if isinstance(value, SCPPrepare):
        return sx.SCPStatementPrepare(
            sx.Hash(value.quorum_set_hash),
            to_sdk(value.ballot),
            None if value.prepared is None else to_sdk(value.prepared),
            None if value.prepared_prime is None else to_sdk(value.prepared_prime),
            sx.Uint32(value.n_c),
            sx.Uint32(value.n_h),
        )
    if isinstance(value, SCPConfirm):
        return sx.SCPStatementConfirm(
            to_sdk(value.ballot),
            sx.Uint32(value.n_prepared),
            sx.Uint32(value.n_commit),
            sx.Uint32(value.n_h),
            sx.Hash(value.quorum_set_hash),
        )
    if isinstance(value, SCPExternalize):
        return sx.SCPStatementExternalize(
            to_sdk(value.commit), sx.Uint32(value.n_h), sx.Hash(value.commit_quorum_set_hash)
        )
    if isinstance(value, SCPStatement):
        kind = sx.SCPStatementType(int(value.type))
        arm = {
            SCPStatementType.PREPARE: "prepare",
            SCPStatementType.CONFIRM: "confirm",
            SCPStatementType.EXTERNALIZE: "externalize",
            SCPStatementType.NOMINATE: "nominate",
        }[value.type]
        pledges = sx.SCPStatementPledges(kind, **{arm: to_sdk(value.pledges)})
        return sx.SCPStatement(sx.NodeID(to_sdk(value.node_id)), sx.Uint64(value.slot_index), pledges)
    if isinstance(value, SCPEnvelope):
        return sx.SCPEnvelope(to_sdk(value.statement), sx.Signature(value.signature))
    raise TypeError(value)


# --- seeded random generators -------------------------------------------------------


def gen_u32(rng: random.Random) -> int:
    return rng.choice(UINT32_EDGES) if rng.random() < 0.3 else rng.randrange(2**32)


def gen_u64(rng: random.Random) -> int:
    return rng.choice(UINT64_EDGES) if rng.random() < 0.3 else rng.randrange(2**64)


def gen_opaque(rng: random.Random, max_len: int = 70) -> bytes:
    # All lengths mod 4, so every amount of padding is exercised.
    return rng.randbytes(rng.randrange(max_len + 1))


def gen_public_key(rng: random.Random) -> PublicKey:
    return PublicKey(rng.randbytes(32))


def gen_ballot(rng: random.Random) -> SCPBallot:
    return SCPBallot(gen_u32(rng), gen_opaque(rng))


def gen_qset(rng: random.Random) -> SCPQuorumSet:
    """A quorum set up to MAX_QSET_DEPTH levels; now and then one of the full 1000 validators."""
    if rng.random() < 0.004:
        return SCPQuorumSet(gen_u32(rng), tuple(gen_public_key(rng) for _ in range(MAX_QSET_NODES)))
    budget = [rng.choice((0, 3, 10, 40))]

    def level(depth: int) -> SCPQuorumSet:
        n = min(budget[0], rng.randrange(6))
        budget[0] -= n
        inner: tuple[SCPQuorumSet, ...] = ()
        if depth < MAX_QSET_DEPTH:
            inner = tuple(level(depth + 1) for _ in range(rng.choice((0, 0, 1, 2, 3))))
        return SCPQuorumSet(gen_u32(rng), tuple(gen_public_key(rng) for _ in range(n)), inner)

    return level(1)


def gen_nomination(rng: random.Random) -> SCPNomination:
    return SCPNomination(
        rng.randbytes(32),
        tuple(gen_opaque(rng) for _ in range(rng.randrange(4))),
        tuple(gen_opaque(rng) for _ in range(rng.randrange(4))),
    )


def gen_prepare(rng: random.Random) -> SCPPrepare:
    return SCPPrepare(
        rng.randbytes(32),
        gen_ballot(rng),
        gen_ballot(rng) if rng.random() < 0.5 else None,
        gen_ballot(rng) if rng.random() < 0.5 else None,
        gen_u32(rng),
        gen_u32(rng),
    )


def gen_confirm(rng: random.Random) -> SCPConfirm:
    return SCPConfirm(gen_ballot(rng), gen_u32(rng), gen_u32(rng), gen_u32(rng), rng.randbytes(32))


def gen_externalize(rng: random.Random) -> SCPExternalize:
    return SCPExternalize(gen_ballot(rng), gen_u32(rng), rng.randbytes(32))


PLEDGE_GENERATORS: tuple[Callable[[random.Random], Any], ...] = (
    gen_prepare,
    gen_confirm,
    gen_externalize,
    gen_nomination,
)


def gen_statement(rng: random.Random) -> SCPStatement:
    return SCPStatement(gen_public_key(rng), gen_u64(rng), rng.choice(PLEDGE_GENERATORS)(rng))


def gen_envelope(rng: random.Random) -> SCPEnvelope:
    return SCPEnvelope(gen_statement(rng), gen_opaque(rng, 64))


GENERATORS: dict[type[XdrType], tuple[Callable[[random.Random], Any], type[Any]]] = {
    PublicKey: (gen_public_key, sx.PublicKey),
    SCPBallot: (gen_ballot, sx.SCPBallot),
    SCPQuorumSet: (gen_qset, sx.SCPQuorumSet),
    SCPNomination: (gen_nomination, sx.SCPNomination),
    SCPPrepare: (gen_prepare, sx.SCPStatementPrepare),
    SCPConfirm: (gen_confirm, sx.SCPStatementConfirm),
    SCPExternalize: (gen_externalize, sx.SCPStatementExternalize),
    SCPStatement: (gen_statement, sx.SCPStatement),
    SCPEnvelope: (gen_envelope, sx.SCPEnvelope),
}


@pytest.mark.parametrize("ours", list(GENERATORS), ids=lambda t: t.__name__)
def test_random_values_cross_check_with_stellar_sdk(ours: type[XdrType]) -> None:
    generate, theirs = GENERATORS[ours]
    rng = random.Random(f"xdr-roundtrip-{ours.__name__}")
    for _ in range(VALUES_PER_TYPE):
        value = generate(rng)
        sdk_value = to_sdk(value)
        our_bytes = value.to_xdr()
        sdk_bytes = sdk_value.to_xdr_bytes()
        assert our_bytes == sdk_bytes, value
        assert ours.from_xdr(sdk_bytes) == value
        assert theirs.from_xdr_bytes(our_bytes) == sdk_value


def test_generators_reach_the_interesting_shapes() -> None:
    """The random values above are only as good as their coverage; pin it down."""
    rng = random.Random("coverage")
    statements = [gen_statement(rng) for _ in range(VALUES_PER_TYPE)]
    assert {s.type for s in statements} == set(SCPStatementType)
    prepares = [s.pledges for s in statements if isinstance(s.pledges, SCPPrepare)]
    assert {(p.prepared is None, p.prepared_prime is None) for p in prepares} == {
        (True, True),
        (True, False),
        (False, True),
        (False, False),
    }
    rng = random.Random(f"xdr-roundtrip-{SCPQuorumSet.__name__}")
    qsets = [gen_qset(rng) for _ in range(VALUES_PER_TYPE)]
    assert max(_depth(q) for q in qsets) == MAX_QSET_DEPTH
    assert max(_count(q) for q in qsets) == MAX_QSET_NODES
    assert min(_count(q) for q in qsets) == 0
    envelopes = [gen_envelope(random.Random(i)) for i in range(200)]
    assert {len(e.signature) % 4 for e in envelopes} == {0, 1, 2, 3}
    assert any(len(e.signature) == 64 for e in envelopes + [gen_envelope(random.Random(i)) for i in range(200, 2000)])


def _depth(q: SCPQuorumSet) -> int:
    return 1 + max((_depth(i) for i in q.inner_sets), default=0)


def _count(q: SCPQuorumSet) -> int:
    return len(q.validators) + sum(_count(i) for i in q.inner_sets)


@pytest.mark.parametrize("ours", list(GENERATORS), ids=lambda t: t.__name__)
def test_random_values_round_trip_through_json(ours: type[XdrType]) -> None:
    generate, _ = GENERATORS[ours]
    rng = random.Random(f"xdr-json-{ours.__name__}")
    for _ in range(VALUES_PER_TYPE):
        value = generate(rng)
        document = json.loads(json.dumps(to_json(value)))
        assert from_json(ours, document) == value
