"""SCP wire types: the draft's section 3, byte-identical to Stellar-SCP.x.

Each type is a small immutable dataclass with ``pack`` (into an
``xdrlib3.Packer``) and ``unpack`` (from a strict ``Reader``), plus the
``to_xdr`` / ``from_xdr`` conveniences. The optional ballots of PREPARE are
``None`` when absent. Quorum sets are limited while decoding, not after, so a
hostile peer cannot make us build a deep or huge structure: at most
``MAX_QSET_DEPTH`` levels (the top-level set is level 1) and at most
``MAX_QSET_NODES`` validators in all.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Self, TypeAlias

import xdrlib3

from scpd.base import strkey
from scpd.base.xdr import Packer, Reader, Record, XdrError, pack_fixed_opaque

__all__ = [
    "HASH_SIZE",
    "MAX_QSET_DEPTH",
    "MAX_QSET_NODES",
    "NodeID",
    "Pledges",
    "PublicKey",
    "SCPBallot",
    "SCPConfirm",
    "SCPEnvelope",
    "SCPExternalize",
    "SCPNomination",
    "SCPPrepare",
    "SCPQuorumSet",
    "SCPStatement",
    "SCPStatementType",
    "XdrType",
]

HASH_SIZE = 32
SIGNATURE_MAX = 64
MAX_QSET_DEPTH = 4
MAX_QSET_NODES = 1000
PUBLIC_KEY_TYPE_ED25519 = 0
UINT32_MAX = 0xFFFFFFFF
UINT64_MAX = 0xFFFFFFFFFFFFFFFF

# Runs of fixed-size fields that the decoders read in one call (see xdr.Record).
_PUBLIC_KEY = Record(("PublicKey.type", "i"), ("PublicKey.ed25519", "32s"))
_STATEMENT_HEAD = Record(("SCPStatement.slotIndex", "Q"), ("SCPStatement.pledges.type", "i"))
_PREPARE_TAIL = Record(("SCPPrepare.nC", "I"), ("SCPPrepare.nH", "I"))
_CONFIRM_TAIL = Record(
    ("SCPConfirm.nPrepared", "I"),
    ("SCPConfirm.nCommit", "I"),
    ("SCPConfirm.nH", "I"),
    ("SCPConfirm.quorumSetHash", "32s"),
)
_EXTERNALIZE_TAIL = Record(("SCPExternalize.nH", "I"), ("SCPExternalize.commitQuorumSetHash", "32s"))


class XdrType:
    """Mixin giving every wire type the same whole-buffer encode and decode."""

    __slots__ = ()

    def pack(self, p: Packer) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    @classmethod
    def unpack(cls, r: Reader) -> Self:  # pragma: no cover - overridden
        raise NotImplementedError

    def to_xdr(self) -> bytes:
        p = Packer()
        try:
            self.pack(p)
        except (struct.error, xdrlib3.Error) as exc:
            # xdrlib3 wraps struct.error in its own ConversionError.
            raise XdrError(f"{type(self).__name__}: integer out of range ({exc})") from None
        return p.get_buffer()

    @classmethod
    def from_xdr(cls, data: bytes | bytearray | memoryview) -> Self:
        r = Reader(data)
        value = cls.unpack(r)
        r.done(cls.__name__)
        return value


@dataclass(frozen=True, slots=True, order=True)
class PublicKey(XdrType):
    """An Ed25519 public key as the PublicKey union (type 0, then 32 bytes)."""

    ed25519: bytes

    def __post_init__(self) -> None:
        if len(self.ed25519) != 32:
            raise XdrError(f"PublicKey.ed25519: expected 32 bytes, got {len(self.ed25519)}")

    def pack(self, p: Packer) -> None:
        p.pack_int(PUBLIC_KEY_TYPE_ED25519)
        pack_fixed_opaque(p, 32, self.ed25519, "PublicKey.ed25519")

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        kind, key = r.record(_PUBLIC_KEY)
        if kind != PUBLIC_KEY_TYPE_ED25519:
            raise XdrError(f"PublicKey.type: unknown discriminant {kind}")
        return cls(key)

    @classmethod
    def from_strkey(cls, text: str) -> Self:
        return cls(strkey.decode_public_key(text))

    # Node IDs key most of the node's maps and sets, so these run thousands of times a slot:
    # written out, they skip the generated versions' tuple of fields.
    def __eq__(self, other: object) -> bool:
        if other.__class__ is PublicKey:
            return self.ed25519 == other.ed25519
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.ed25519)

    def __str__(self) -> str:
        return strkey.encode_public_key(self.ed25519)

    def __repr__(self) -> str:
        return f"PublicKey({strkey.encode_public_key(self.ed25519)})"


NodeID: TypeAlias = PublicKey


@dataclass(frozen=True, slots=True, order=True)
class SCPBallot(XdrType):
    """A ballot <counter, value>; ordering is by counter, then value bytes."""

    counter: int
    value: bytes

    def pack(self, p: Packer) -> None:
        p.pack_uint(self.counter)
        p.pack_opaque(self.value)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        return cls(r.uint32("SCPBallot.counter"), r.var_opaque("SCPBallot.value"))


@dataclass(frozen=True, slots=True)
class SCPQuorumSet(XdrType):
    """A recursive k-of-n predicate over validators and inner sets."""

    threshold: int
    validators: tuple[PublicKey, ...] = ()
    inner_sets: tuple[SCPQuorumSet, ...] = ()

    def pack(self, p: Packer) -> None:
        p.pack_uint(self.threshold)
        p.pack_uint(len(self.validators))
        for v in self.validators:
            v.pack(p)
        p.pack_uint(len(self.inner_sets))
        for inner in self.inner_sets:
            inner.pack(p)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        return cls._unpack_level(r, 1, [0])

    @classmethod
    def _unpack_level(cls, r: Reader, depth: int, seen: list[int]) -> Self:
        if depth > MAX_QSET_DEPTH:
            raise XdrError(f"SCPQuorumSet.innerSets: nested deeper than {MAX_QSET_DEPTH} levels")
        threshold = r.uint32("SCPQuorumSet.threshold")
        n = r.array_length("SCPQuorumSet.validators", 36, MAX_QSET_NODES)
        seen[0] += n
        if seen[0] > MAX_QSET_NODES:
            raise XdrError(f"SCPQuorumSet.validators: more than {MAX_QSET_NODES} validators in all")
        validators = tuple(PublicKey.unpack(r) for _ in range(n))
        m = r.array_length("SCPQuorumSet.innerSets", 12)
        inner = tuple(cls._unpack_level(r, depth + 1, seen) for _ in range(m))
        return cls(threshold, validators, inner)


class SCPStatementType(IntEnum):
    PREPARE = 0
    CONFIRM = 1
    EXTERNALIZE = 2
    NOMINATE = 3


@dataclass(frozen=True, slots=True)
class SCPNomination(XdrType):
    TYPE: ClassVar[SCPStatementType] = SCPStatementType.NOMINATE

    quorum_set_hash: bytes
    votes: tuple[bytes, ...] = ()
    accepted: tuple[bytes, ...] = ()

    def pack(self, p: Packer) -> None:
        pack_fixed_opaque(p, HASH_SIZE, self.quorum_set_hash, "SCPNomination.quorumSetHash")
        _pack_values(p, self.votes)
        _pack_values(p, self.accepted)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        qset_hash = r.fixed_opaque(HASH_SIZE, "SCPNomination.quorumSetHash")
        read = r.var_opaque
        n = r.array_length("SCPNomination.votes", 4)
        votes = tuple([read("SCPNomination.votes[]") for _ in range(n)])
        n = r.array_length("SCPNomination.accepted", 4)
        accepted = tuple([read("SCPNomination.accepted[]") for _ in range(n)])
        return cls(qset_hash, votes, accepted)


@dataclass(frozen=True, slots=True)
class SCPPrepare(XdrType):
    TYPE: ClassVar[SCPStatementType] = SCPStatementType.PREPARE

    quorum_set_hash: bytes
    ballot: SCPBallot
    prepared: SCPBallot | None = None
    prepared_prime: SCPBallot | None = None
    n_c: int = 0
    n_h: int = 0

    def pack(self, p: Packer) -> None:
        pack_fixed_opaque(p, HASH_SIZE, self.quorum_set_hash, "SCPPrepare.quorumSetHash")
        self.ballot.pack(p)
        _pack_optional_ballot(p, self.prepared)
        _pack_optional_ballot(p, self.prepared_prime)
        p.pack_uint(self.n_c)
        p.pack_uint(self.n_h)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        qset_hash = r.fixed_opaque(HASH_SIZE, "SCPPrepare.quorumSetHash")
        ballot = SCPBallot.unpack(r)
        prepared = SCPBallot.unpack(r) if r.optional("SCPPrepare.prepared") else None
        prepared_prime = SCPBallot.unpack(r) if r.optional("SCPPrepare.preparedPrime") else None
        n_c, n_h = r.record(_PREPARE_TAIL)
        return cls(qset_hash, ballot, prepared, prepared_prime, n_c, n_h)


@dataclass(frozen=True, slots=True)
class SCPConfirm(XdrType):
    TYPE: ClassVar[SCPStatementType] = SCPStatementType.CONFIRM

    ballot: SCPBallot
    n_prepared: int
    n_commit: int
    n_h: int
    quorum_set_hash: bytes

    def pack(self, p: Packer) -> None:
        self.ballot.pack(p)
        p.pack_uint(self.n_prepared)
        p.pack_uint(self.n_commit)
        p.pack_uint(self.n_h)
        pack_fixed_opaque(p, HASH_SIZE, self.quorum_set_hash, "SCPConfirm.quorumSetHash")

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        ballot = SCPBallot.unpack(r)
        n_prepared, n_commit, n_h, qset_hash = r.record(_CONFIRM_TAIL)
        return cls(ballot, n_prepared, n_commit, n_h, qset_hash)


@dataclass(frozen=True, slots=True)
class SCPExternalize(XdrType):
    TYPE: ClassVar[SCPStatementType] = SCPStatementType.EXTERNALIZE

    commit: SCPBallot
    n_h: int
    commit_quorum_set_hash: bytes

    def pack(self, p: Packer) -> None:
        self.commit.pack(p)
        p.pack_uint(self.n_h)
        pack_fixed_opaque(p, HASH_SIZE, self.commit_quorum_set_hash, "SCPExternalize.commitQuorumSetHash")

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        commit = SCPBallot.unpack(r)
        n_h, qset_hash = r.record(_EXTERNALIZE_TAIL)
        return cls(commit, n_h, qset_hash)


Pledges: TypeAlias = SCPPrepare | SCPConfirm | SCPExternalize | SCPNomination

_PLEDGE_CLASSES: dict[int, type[SCPPrepare] | type[SCPConfirm] | type[SCPExternalize] | type[SCPNomination]] = {
    SCPStatementType.PREPARE: SCPPrepare,
    SCPStatementType.CONFIRM: SCPConfirm,
    SCPStatementType.EXTERNALIZE: SCPExternalize,
    SCPStatementType.NOMINATE: SCPNomination,
}


@dataclass(frozen=True, slots=True)
class SCPStatement(XdrType):
    node_id: NodeID
    slot_index: int
    pledges: Pledges

    @property
    def type(self) -> SCPStatementType:
        return self.pledges.TYPE

    def pack(self, p: Packer) -> None:
        self.node_id.pack(p)
        # xdrlib3's pack_uhyper masks instead of checking, so an out-of-range
        # slot would silently encode as a different slot.
        if not 0 <= self.slot_index <= UINT64_MAX:
            raise XdrError(f"SCPStatement.slotIndex: {self.slot_index} is not a uint64")
        p.pack_uhyper(self.slot_index)
        p.pack_int(self.pledges.TYPE)
        self.pledges.pack(p)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        node_id = PublicKey.unpack(r)
        slot_index, kind = r.record(_STATEMENT_HEAD)
        pledge_class = _PLEDGE_CLASSES.get(kind)
        if pledge_class is None:
            raise XdrError(f"SCPStatement.pledges.type: unknown discriminant {kind}")
        return cls(node_id, slot_index, pledge_class.unpack(r))


@dataclass(frozen=True, slots=True)
class SCPEnvelope(XdrType):
    statement: SCPStatement
    signature: bytes

    def pack(self, p: Packer) -> None:
        self.statement.pack(p)
        if len(self.signature) > SIGNATURE_MAX:
            raise XdrError(f"SCPEnvelope.signature: longer than {SIGNATURE_MAX} bytes")
        p.pack_opaque(self.signature)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        statement = SCPStatement.unpack(r)
        return cls(statement, r.var_opaque("SCPEnvelope.signature", SIGNATURE_MAX))

    def statement_xdr_in(self, encoded: bytes) -> bytes:
        """The statement's bytes within ``encoded``, this envelope's encoding (a prefix: the signature ends it).

        ``encoded`` must be this envelope's encoding (strict decoding makes the
        bytes an envelope was decoded from exactly that); the signature is then
        verified over the very bytes that were received.
        """
        return encoded[: len(encoded) - 4 - (len(self.signature) + 3) // 4 * 4]

    @classmethod
    def from_xdr_with_statement(cls, data: bytes) -> tuple[Self, bytes]:
        """Decode an envelope and also return the statement's exact bytes.

        The statement is a prefix of the envelope, so the bytes to verify the
        signature over come for free instead of from a re-encode.
        """
        r = Reader(data)
        statement = SCPStatement.unpack(r)
        end = r.position
        envelope = cls(statement, r.var_opaque("SCPEnvelope.signature", SIGNATURE_MAX))
        r.done("SCPEnvelope")
        return envelope, bytes(data[:end])


def _pack_values(p: Packer, values: tuple[bytes, ...]) -> None:
    p.pack_uint(len(values))
    for v in values:
        p.pack_opaque(v)


def _pack_optional_ballot(p: Packer, ballot: SCPBallot | None) -> None:
    if ballot is None:
        p.pack_uint(0)
    else:
        p.pack_uint(1)
        ballot.pack(p)
