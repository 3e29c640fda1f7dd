"""Strict XDR (RFC 4506) primitives.

Theory of operation: encoding goes through ``xdrlib3.Packer``; decoding goes
through ``Reader``, written here because every byte it reads comes from the
network and is hostile. ``Reader`` checks each length against what remains
*before* slicing or allocating, insists that padding is zero, bounds every
array, and names the field in every error it raises. Any failure is one
``XdrError``; nothing else escapes (the SCP types only call these methods and
build dataclasses), and every loop is bounded by the input length, so random
bytes can neither crash nor hang a decoder.
"""

from __future__ import annotations

import struct
from typing import Any

import xdrlib3

from scpd.errors import XdrError

__all__ = ["Packer", "Reader", "Record", "XdrError", "pack_fixed_opaque"]

Packer = xdrlib3.Packer

_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")
_ZEROS = bytes(3)


def pack_fixed_opaque(p: xdrlib3.Packer, n: int, data: bytes, field: str) -> None:
    """Pack opaque[n]; xdrlib3 would silently truncate or pad a wrong length."""
    if len(data) != n:
        raise XdrError(f"{field}: expected {n} bytes, got {len(data)}")
    p.pack_fopaque(n, data)


class Record:
    """Consecutive fixed-size fields read with one ``struct`` call.

    The hot decoders (every envelope passes through them) spend most of their
    time in per-field method calls, so runs of fixed-size fields are read in
    one go. Only whole 4-byte units are allowed (int32, uint32, uint64,
    opaque[4k]), so there is never padding to check; on truncation the error
    still names the first field that is cut short.
    """

    __slots__ = ("_ends", "_fields", "size", "struct")

    def __init__(self, *fields: tuple[str, str]) -> None:
        self._fields = tuple(name for name, _ in fields)
        self.struct = struct.Struct(">" + "".join(code for _, code in fields))
        self.size = self.struct.size
        ends = []
        for i in range(len(fields)):
            end = struct.calcsize(">" + "".join(code for _, code in fields[: i + 1]))
            if end % 4:
                raise ValueError(f"{fields[i][0]}: Record fields must be whole 4-byte units")
            ends.append(end)
        self._ends = tuple(ends)

    def truncated(self, remaining: int) -> XdrError:
        for field, end in zip(self._fields, self._ends, strict=True):
            if end > remaining:
                return XdrError(f"{field}: truncated, only {remaining} bytes remain")
        raise AssertionError("Record.truncated called with enough bytes")  # pragma: no cover


class Reader:
    """A cursor over one XDR buffer that fails loudly and cheaply."""

    __slots__ = ("_buf", "_end", "_pos")

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._buf = bytes(data)
        self._pos = 0
        self._end = len(self._buf)

    @property
    def position(self) -> int:
        return self._pos

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    def _take(self, n: int, field: str) -> bytes:
        pos = self._pos
        if n > self._end - pos:
            raise XdrError(f"{field}: needs {n} bytes, only {self._end - pos} remain")
        self._pos = pos + n
        return self._buf[pos : pos + n]

    def uint32(self, field: str) -> int:
        pos = self._pos
        if self._end - pos < 4:
            raise XdrError(f"{field}: truncated uint32")
        self._pos = pos + 4
        value: int = _U32.unpack_from(self._buf, pos)[0]
        return value

    def int32(self, field: str) -> int:
        pos = self._pos
        if self._end - pos < 4:
            raise XdrError(f"{field}: truncated int32")
        self._pos = pos + 4
        value: int = _I32.unpack_from(self._buf, pos)[0]
        return value

    def uint64(self, field: str) -> int:
        pos = self._pos
        if self._end - pos < 8:
            raise XdrError(f"{field}: truncated uint64")
        self._pos = pos + 8
        value: int = _U64.unpack_from(self._buf, pos)[0]
        return value

    def record(self, rec: Record) -> tuple[Any, ...]:
        pos = self._pos
        if self._end - pos < rec.size:
            raise rec.truncated(self._end - pos)
        self._pos = pos + rec.size
        return rec.struct.unpack_from(self._buf, pos)

    def enum(self, field: str, allowed: frozenset[int] | range) -> int:
        value = self.int32(field)
        if value not in allowed:
            raise XdrError(f"{field}: unknown discriminant {value}")
        return value

    def optional(self, field: str) -> bool:
        """Read the bool that prefixes an XDR optional (``T*``)."""
        flag = self.uint32(field)
        if flag > 1:
            raise XdrError(f"{field}: optional flag must be 0 or 1, got {flag}")
        return flag == 1

    def fixed_opaque(self, n: int, field: str) -> bytes:
        data = self._take(n, field)
        pad = (4 - n % 4) % 4
        if pad:
            self._check_padding(pad, field)
        return data

    def var_opaque(self, field: str, max_len: int = 0xFFFFFFFF) -> bytes:
        # The length read is inlined: this runs for every value and signature.
        pos = self._pos
        if self._end - pos < 4:
            raise XdrError(f"{field}.length: truncated uint32")
        n: int = _U32.unpack_from(self._buf, pos)[0]
        pos += 4
        if n > max_len:
            raise XdrError(f"{field}: length {n} exceeds maximum {max_len}")
        padded = n + (4 - n % 4) % 4
        if padded > self._end - pos:
            raise XdrError(f"{field}: length {n} exceeds the {self._end - pos} bytes that remain")
        data = self._buf[pos : pos + n]
        if padded != n and self._buf[pos + n : pos + padded] != _ZEROS[: padded - n]:
            raise XdrError(f"{field}: non-zero padding")
        self._pos = pos + padded
        return data

    def array_length(self, field: str, min_element_size: int, max_len: int = 0xFFFFFFFF) -> int:
        """Read an array count, refusing counts the remaining bytes cannot hold."""
        n = self.uint32(field + ".length")
        if n > max_len:
            raise XdrError(f"{field}: {n} elements exceed maximum {max_len}")
        if n * min_element_size > self._end - self._pos:
            raise XdrError(f"{field}: {n} elements cannot fit in the {self.remaining} bytes that remain")
        return n

    def _check_padding(self, pad: int, field: str) -> None:
        pos = self._pos
        if pad > self._end - pos:
            raise XdrError(f"{field}: truncated padding")
        if self._buf[pos : pos + pad] != bytes(pad):
            raise XdrError(f"{field}: non-zero padding")
        self._pos = pos + pad

    def consumed_since(self, start: int) -> bytes:
        """The bytes read from offset ``start`` up to here: what a value just decoded was decoded from."""
        return self._buf[start : self._pos]

    def done(self, what: str) -> None:
        if self._pos != self._end:
            raise XdrError(f"{what}: {self._end - self._pos} trailing bytes")
