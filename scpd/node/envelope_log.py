"""The audit file of received SCP envelopes, written with ``[ledger] record_envelopes``."""

from __future__ import annotations

import struct
from pathlib import Path

from scpd.base.types import SCPEnvelope

__all__ = ["EnvelopeLog"]


class EnvelopeLog:
    """An append-only audit file of received SCP envelopes (``[ledger] record_envelopes``).

    Each record is ``uint32 length || 32-byte sender peer key || envelope XDR``
    (big-endian length of what follows). It exists so that tests and
    operators can check, from the outside, that no node ever contradicted
    itself. Written unbuffered and without fsync: it is evidence, not state,
    and a torn last record after a crash is skipped by :meth:`read`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("ab", buffering=0)

    def append(self, peer_key: bytes, envelope: SCPEnvelope) -> None:
        data = peer_key + envelope.to_xdr()
        self._file.write(struct.pack(">I", len(data)) + data)

    def close(self) -> None:
        self._file.close()

    @staticmethod
    def read(path: Path) -> list[tuple[bytes, SCPEnvelope]]:
        """Every complete record in the file, in the order written: (sender peer key, envelope)."""
        data = path.read_bytes()
        out: list[tuple[bytes, SCPEnvelope]] = []
        pos = 0
        while pos + 4 <= len(data):
            (n,) = struct.unpack_from(">I", data, pos)
            if pos + 4 + n > len(data) or n < 32:
                break
            body = data[pos + 4 : pos + 4 + n]
            out.append((body[:32], SCPEnvelope.from_xdr(body[32:])))
            pos += 4 + n
        return out
