"""JSON form of the SCP wire types, for operators (``scpd xdr decode/encode``).

Theory of operation: each wire dataclass maps to a JSON object whose keys are
the field names of ``Stellar-SCP.x`` (``quorumSetHash``, ``nC``, ``innerSets``,
``nodeID``, ...), so what an operator reads matches the spec. Values are:

- public keys (``PublicKey``/``NodeID``): ``G...`` strkeys;
- hashes, values and signatures (every ``opaque``): lowercase hex, because hex
  shows lengths and hash prefixes at a glance and greps well against logs
  (input accepts either case);
- integers: JSON numbers (``slotIndex`` is a uint64; Python's ``json`` keeps it
  exact);
- optional ballots: ``null`` when absent;
- the pledges union: ``{"type": "PREPARE", "prepare": {...}}``, the
  discriminant by name and the arm under its ``Stellar-SCP.x`` name.

The mapping is driven by each dataclass's fields and type hints (one codec per
field, built once), so a new field needs no new code, only, if it is not a
uint32 or unbounded opaque, an entry in ``_FIELD_LIMITS``. ``from_json`` is as
strict as the XDR decoder: unknown or missing keys, wrong JSON types, integers
out of range, bad hex, wrong hash lengths, over-long signatures and quorum sets
beyond the decoder's limits are each one ``XdrError`` naming the field's path,
so whatever it accepts encodes to bytes that decode back to the same value.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

from scpd.base import types as wire
from scpd.base.types import (
    HASH_SIZE,
    MAX_QSET_DEPTH,
    MAX_QSET_NODES,
    SIGNATURE_MAX,
    UINT32_MAX,
    UINT64_MAX,
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
from scpd.errors import KeyFormatError, XdrError

__all__ = ["WIRE_TYPES", "from_json", "to_json"]

JsonValue: TypeAlias = Any
T = TypeVar("T", bound=XdrType)

# Every type an operator can name, by its Stellar-SCP.x name.
WIRE_TYPES: dict[str, type[XdrType]] = {
    cls.__name__: cls
    for cls in (
        PublicKey,
        SCPBallot,
        SCPQuorumSet,
        SCPNomination,
        SCPPrepare,
        SCPConfirm,
        SCPExternalize,
        SCPStatement,
        SCPEnvelope,
    )
}

# Python field name -> Stellar-SCP.x name, where camelCase alone gets it wrong.
_JSON_NAMES = {"node_id": "nodeID"}

# (class name, field) -> (exact length or None, maximum length or None) for opaques,
# or the maximum for integers; everything else is an unbounded opaque or a uint32.
_FIELD_LIMITS: dict[tuple[str, str], tuple[int | None, int | None]] = {
    ("SCPNomination", "quorum_set_hash"): (HASH_SIZE, None),
    ("SCPPrepare", "quorum_set_hash"): (HASH_SIZE, None),
    ("SCPConfirm", "quorum_set_hash"): (HASH_SIZE, None),
    ("SCPExternalize", "commit_quorum_set_hash"): (HASH_SIZE, None),
    ("SCPEnvelope", "signature"): (None, SIGNATURE_MAX),
    ("SCPStatement", "slot_index"): (None, UINT64_MAX),
}

_PLEDGE_ARMS: dict[SCPStatementType, tuple[str, type[XdrType]]] = {
    SCPStatementType.PREPARE: ("prepare", SCPPrepare),
    SCPStatementType.CONFIRM: ("confirm", SCPConfirm),
    SCPStatementType.EXTERNALIZE: ("externalize", SCPExternalize),
    SCPStatementType.NOMINATE: ("nominate", SCPNomination),
}

Encoder: TypeAlias = Callable[[Any], JsonValue]
Decoder: TypeAlias = Callable[[JsonValue, str], Any]


def to_json(obj: XdrType) -> JsonValue:
    """The JSON form of a wire value: an object, or a strkey for ``PublicKey``."""
    return _codec(type(obj))[0](obj)


def from_json(cls: type[T], data: JsonValue) -> T:
    """Build a wire value of type ``cls`` from its JSON form, or raise ``XdrError``."""
    value: T = _codec(cls)[1](data, cls.__name__)
    return value


def _json_name(field: str) -> str:
    if field in _JSON_NAMES:
        return _JSON_NAMES[field]
    head, *rest = field.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _describe(data: JsonValue) -> str:
    if data is None:
        return "null"
    if isinstance(data, bool):
        return "a boolean"
    if isinstance(data, dict):
        return "an object"
    if isinstance(data, list):
        return "an array"
    if isinstance(data, str):
        return "a string"
    return f"{data!r}"


# --- leaf codecs -------------------------------------------------------------


def _int_codec(maximum: int) -> tuple[Encoder, Decoder]:
    def decode(data: JsonValue, path: str) -> int:
        # bool is an int in Python but never a number in JSON.
        if not isinstance(data, int) or isinstance(data, bool) or not 0 <= data <= maximum:
            raise XdrError(f"{path}: expected an integer 0..{maximum}, got {_describe(data)}")
        return data

    return int, decode


def _hex_codec(exact: int | None, maximum: int | None) -> tuple[Encoder, Decoder]:
    def encode(value: bytes) -> str:
        return value.hex()

    def decode(data: JsonValue, path: str) -> bytes:
        if not isinstance(data, str):
            raise XdrError(f"{path}: expected a hex string, got {_describe(data)}")
        try:
            raw = bytes.fromhex(data)
        except ValueError:
            raise XdrError(f"{path}: not valid hex") from None
        if len(data) != 2 * len(raw):  # fromhex skips whitespace; we do not
            raise XdrError(f"{path}: not valid hex")
        if exact is not None and len(raw) != exact:
            raise XdrError(f"{path}: expected {exact} bytes, got {len(raw)}")
        if maximum is not None and len(raw) > maximum:
            raise XdrError(f"{path}: at most {maximum} bytes, got {len(raw)}")
        return raw

    return encode, decode


def _public_key_codec() -> tuple[Encoder, Decoder]:
    def decode(data: JsonValue, path: str) -> PublicKey:
        if not isinstance(data, str):
            raise XdrError(f"{path}: expected a G... strkey, got {_describe(data)}")
        try:
            return PublicKey.from_strkey(data)
        except KeyFormatError as exc:
            raise XdrError(f"{path}: {exc}") from None

    return str, decode


# --- composite codecs ---------------------------------------------------------


def _optional_codec(inner: tuple[Encoder, Decoder]) -> tuple[Encoder, Decoder]:
    enc, dec = inner

    def encode(value: Any) -> JsonValue:
        return None if value is None else enc(value)

    def decode(data: JsonValue, path: str) -> Any:
        return None if data is None else dec(data, path)

    return encode, decode


def _array_codec(inner: tuple[Encoder, Decoder]) -> tuple[Encoder, Decoder]:
    enc, dec = inner

    def encode(value: tuple[Any, ...]) -> JsonValue:
        return [enc(v) for v in value]

    def decode(data: JsonValue, path: str) -> tuple[Any, ...]:
        if not isinstance(data, list):
            raise XdrError(f"{path}: expected an array, got {_describe(data)}")
        if len(data) > UINT32_MAX:
            raise XdrError(f"{path}: too many elements")
        return tuple(dec(item, f"{path}[{i}]") for i, item in enumerate(data))

    return encode, decode


def _pledges_codec() -> tuple[Encoder, Decoder]:
    def encode(value: Any) -> JsonValue:
        arm, cls = _PLEDGE_ARMS[value.TYPE]
        return {"type": value.TYPE.name, arm: _codec(cls)[0](value)}

    def decode(data: JsonValue, path: str) -> Any:
        if not isinstance(data, dict):
            raise XdrError(f"{path}: expected an object, got {_describe(data)}")
        name = data.get("type")
        kind = SCPStatementType.__members__.get(name) if isinstance(name, str) else None
        if kind is None:
            names = ", ".join(SCPStatementType.__members__)
            raise XdrError(f"{path}.type: expected one of {names}, got {_describe(name)}")
        arm, cls = _PLEDGE_ARMS[kind]
        _check_keys(data, {"type", arm}, path)
        return _codec(cls)[1](data[arm], f"{path}.{arm}")

    return encode, decode


def _check_keys(data: dict[str, Any], expected: set[str], path: str) -> None:
    missing = [k for k in expected if k not in data]
    if missing:
        raise XdrError(f"{path}.{sorted(missing)[0]}: missing")
    unknown = [k for k in data if k not in expected]
    if unknown:
        raise XdrError(f"{path}.{sorted(unknown)[0]}: unknown field")


def _struct_codec(cls: type[XdrType]) -> tuple[Encoder, Decoder]:
    """Codec for one wire dataclass, built from its fields' type hints."""
    hints = typing.get_type_hints(cls, vars(wire))
    fields = [
        (f.name, _json_name(f.name), _field_codec(cls.__name__, f.name, hints[f.name]))
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
    ]
    expected = {json_name for _, json_name, _ in fields}

    def encode(value: Any) -> JsonValue:
        return {json_name: codec[0](getattr(value, name)) for name, json_name, codec in fields}

    def decode(data: JsonValue, path: str) -> Any:
        if not isinstance(data, dict):
            raise XdrError(f"{path}: expected an object, got {_describe(data)}")
        if cls is SCPQuorumSet:
            _check_qset_limits(data, path)
        _check_keys(data, expected, path)
        kwargs = {name: codec[1](data[json_name], f"{path}.{json_name}") for name, json_name, codec in fields}
        return cls(**kwargs)

    return encode, decode


def _field_codec(owner: str, field: str, hint: Any) -> tuple[Encoder, Decoder]:
    exact, maximum = _FIELD_LIMITS.get((owner, field), (None, None))
    if hint is int:
        return _int_codec(maximum if maximum is not None else UINT32_MAX)
    if hint is bytes:
        return _hex_codec(exact, maximum)
    return _type_codec(hint)


def _type_codec(hint: Any) -> tuple[Encoder, Decoder]:
    """Codec for a type hint that is not a bounded leaf: wire types and containers."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is tuple:
        return _array_codec(_hex_codec(None, None) if args[0] is bytes else _type_codec(args[0]))
    if origin in (types.UnionType, typing.Union):
        members = [a for a in args if a is not type(None)]
        if len(members) == 1:
            return _optional_codec(_type_codec(members[0]))
        return _pledges_codec()
    if isinstance(hint, type) and issubclass(hint, XdrType):
        return _codec(hint)
    raise TypeError(f"no JSON codec for {hint!r}")  # a programming error, caught by the tests


_CODECS: dict[type[XdrType], tuple[Encoder, Decoder]] = {}


def _codec(cls: type[XdrType]) -> tuple[Encoder, Decoder]:
    """The codec of a wire type, built on first use (lazily, so recursive types work)."""
    codec = _CODECS.get(cls)
    if codec is None:
        if cls is PublicKey:
            codec = _public_key_codec()
        else:
            # Register forwarders first so a type that contains itself finds them.
            _CODECS[cls] = (lambda v: _CODECS[cls][0](v), lambda d, p: _CODECS[cls][1](d, p))
            codec = _struct_codec(cls)
        _CODECS[cls] = codec
    return codec


def _check_qset_limits(data: dict[str, Any], path: str) -> None:
    """Apply the decoder's depth and size limits before recursing into a quorum set.

    Iterative on purpose: a hostile document nested a thousand levels deep is
    refused here instead of exhausting the stack in the recursive decode.
    """
    total = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, dict):
            continue  # the field decoder reports the wrong type with its path
        if depth > MAX_QSET_DEPTH:
            raise XdrError(f"{path}.innerSets: nested deeper than {MAX_QSET_DEPTH} levels")
        validators = node.get("validators")
        if isinstance(validators, list):
            total += len(validators)
            if total > MAX_QSET_NODES:
                raise XdrError(f"{path}.validators: more than {MAX_QSET_NODES} validators in all")
        inner = node.get("innerSets")
        if isinstance(inner, list):
            stack.extend((child, depth + 1) for child in inner)
