"""Stellar strkey text forms: ``G...`` public keys and ``S...`` seeds.

A strkey is base32 (RFC 4648, no padding) of a version byte, the 32-byte key,
and a CRC16-XModem checksum of both, little-endian. Decoding rejects anything
that would not re-encode to the same text, so each key has one spelling.
"""

from __future__ import annotations

import base64
import binascii
import functools

from scpd.errors import KeyFormatError

__all__ = ["crc16_xmodem", "decode_public_key", "decode_seed", "encode_public_key", "encode_seed"]

VERSION_PUBLIC_KEY = 6 << 3  # 'G'
VERSION_SEED = 18 << 3  # 'S'
_KINDS = {VERSION_PUBLIC_KEY: "public key (G...)", VERSION_SEED: "secret seed (S...)"}
_STRKEY_LEN = 56
# 56 characters are exactly 35 bytes, so a strkey never has "=" padding.
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def crc16_xmodem(data: bytes) -> int:
    # CRC-16/XMODEM is CRC-CCITT from 0, which binascii computes in C.
    return binascii.crc_hqx(data, 0)


def _encode(version: int, key: bytes) -> str:
    if len(key) != 32:
        raise KeyFormatError(f"key must be 32 bytes, got {len(key)}")
    payload = bytes([version]) + key
    return base64.b32encode(payload + crc16_xmodem(payload).to_bytes(2, "little")).decode("ascii")


def _decode(version: int, text: str) -> bytes:
    want = _KINDS[version]
    if not isinstance(text, str) or len(text) != _STRKEY_LEN:
        raise KeyFormatError(f"not a {want}: expected {_STRKEY_LEN} characters")
    if not _ALPHABET.issuperset(text):
        raise KeyFormatError(f"not a {want}: invalid base32 (only A-Z and 2-7 may appear)")
    try:
        raw = base64.b32decode(text.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise KeyFormatError(f"not a {want}: invalid base32") from None
    payload, checksum = raw[:-2], raw[-2:]
    if payload[0] != version:
        got = _KINDS.get(payload[0], f"version byte {payload[0]}")
        raise KeyFormatError(f"not a {want}: this strkey is a {got}")
    if crc16_xmodem(payload).to_bytes(2, "little") != checksum:
        raise KeyFormatError(f"not a {want}: checksum mismatch")
    key = payload[1:]
    if _encode(version, key) != text:
        raise KeyFormatError(f"not a {want}: non-canonical encoding")
    return key


@functools.lru_cache(maxsize=4096)
def encode_public_key(key: bytes) -> str:
    # Cached: logs, metrics labels and the status pages name the same few hundred nodes over and
    # over. Public keys only: a seed must not linger in a cache.
    return _encode(VERSION_PUBLIC_KEY, key)


def decode_public_key(text: str) -> bytes:
    return _decode(VERSION_PUBLIC_KEY, text)


def encode_seed(seed: bytes) -> str:
    return _encode(VERSION_SEED, seed)


def decode_seed(text: str) -> bytes:
    return _decode(VERSION_SEED, text)
