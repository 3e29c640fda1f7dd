"""The values simulated nodes propose, and how they are judged.

A value is 13 bytes: the magic ``SV``, the slot (uint64), the proposing
node's index (uint16) and a variant byte. Honest nodes propose variant 0;
an equivocating node proposes variants 1 and 2 to its two audiences; a node
"sending values nobody nominated" forges :data:`FORGED_VARIANT`, which no
node ever puts in a NOMINATE vote. A value is valid when it has the format,
names the slot it is voted on, and names an existing node. Candidates combine
to their maximum, which every node computes alike.
"""

from __future__ import annotations

import struct

from scpd.scp.driver import ValidationLevel

__all__ = [
    "FORGED_VARIANT",
    "VALUE_SIZE",
    "combine",
    "decode_value",
    "encode_value",
    "invalid_value",
    "validate",
]

_FORMAT = struct.Struct(">2sQHB")
_MAGIC = b"SV"
VALUE_SIZE = _FORMAT.size
FORGED_VARIANT = 0xFF


def encode_value(slot: int, proposer: int, variant: int = 0) -> bytes:
    return _FORMAT.pack(_MAGIC, slot, proposer, variant)


def decode_value(value: bytes) -> tuple[int, int, int] | None:
    """(slot, proposer, variant), or None if ``value`` lacks the format."""
    if len(value) != VALUE_SIZE:
        return None
    magic, slot, proposer, variant = _FORMAT.unpack(value)
    if magic != _MAGIC:
        return None
    return slot, proposer, variant


def invalid_value(slot: int) -> bytes:
    """A value every node rejects (wrong magic), for Byzantine senders."""
    return b"XX" + encode_value(slot, 0)[2:]


def validate(slot: int, value: bytes, node_count: int) -> ValidationLevel:
    decoded = decode_value(value)
    if decoded is None or decoded[0] != slot or decoded[1] >= node_count:
        return ValidationLevel.INVALID
    return ValidationLevel.FULLY_VALID


def combine(candidates: frozenset[bytes]) -> bytes:
    return max(candidates)
