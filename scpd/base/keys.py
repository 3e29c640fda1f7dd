"""Node keys and SCP envelope signatures.

A node is an Ed25519 key pair. Envelopes are signed exactly as the Stellar
network signs them: Ed25519 over ``network_id || uint32(ENVELOPE_TYPE_SCP) ||
XDR(SCPStatement)`` where ``network_id = SHA-256(passphrase)``.
"""

from __future__ import annotations

import hashlib
import struct

import nacl.bindings
import nacl.exceptions
import nacl.signing

from scpd.base import strkey
from scpd.base.types import PublicKey, SCPEnvelope, SCPStatement
from scpd.errors import KeyFormatError

__all__ = [
    "ENVELOPE_TYPE_SCP",
    "Keypair",
    "network_id",
    "sign_statement",
    "signature_payload",
    "verify_envelope",
    "verify_signature",
]

ENVELOPE_TYPE_SCP = 1
_ENVELOPE_TYPE_SCP_BYTES = struct.pack(">I", ENVELOPE_TYPE_SCP)


def network_id(passphrase: str) -> bytes:
    return hashlib.sha256(passphrase.encode("utf-8")).digest()


def signature_payload(net_id: bytes, statement_xdr: bytes) -> bytes:
    return net_id + _ENVELOPE_TYPE_SCP_BYTES + statement_xdr


class Keypair:
    """An Ed25519 signing key; the seed never appears in repr or str."""

    __slots__ = ("_signing", "public_key")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise KeyFormatError(f"seed must be 32 bytes, got {len(seed)}")
        self._signing = nacl.signing.SigningKey(seed)
        self.public_key = PublicKey(bytes(self._signing.verify_key))

    @classmethod
    def random(cls) -> Keypair:
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @classmethod
    def from_seed_strkey(cls, text: str) -> Keypair:
        return cls(strkey.decode_seed(text.strip()))

    @property
    def seed_strkey(self) -> str:
        return strkey.encode_seed(bytes(self._signing))

    @property
    def node_id(self) -> PublicKey:
        return self.public_key

    def sign(self, message: bytes) -> bytes:
        return self._signing.sign(message).signature

    def __repr__(self) -> str:
        return f"Keypair({self.public_key})"


def verify_signature(public_key: PublicKey, message: bytes, signature: bytes) -> bool:
    if len(signature) != 64:
        return False
    # libsodium directly: building a VerifyKey object per call costs more than
    # the concatenation, and this runs once for every envelope received.
    try:
        nacl.bindings.crypto_sign_open(signature + message, public_key.ed25519)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
        return False
    return True


def sign_statement(keypair: Keypair, net_id: bytes, statement: SCPStatement) -> SCPEnvelope:
    signature = keypair.sign(signature_payload(net_id, statement.to_xdr()))
    return SCPEnvelope(statement, signature)


def verify_envelope(net_id: bytes, envelope: SCPEnvelope, statement_xdr: bytes | None = None) -> bool:
    """Check the envelope's signature; pass ``statement_xdr`` to skip a re-encode."""
    if statement_xdr is None:
        statement_xdr = envelope.statement.to_xdr()
    return verify_signature(envelope.statement.node_id, signature_payload(net_id, statement_xdr), envelope.signature)
