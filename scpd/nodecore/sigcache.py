"""Each envelope's signature is checked at most once: a bounded memory of verdicts.

Theory of operation
-------------------
An ed25519 check is the most expensive thing the herder does for an
envelope, and a peer can send the same envelope again and again (the
floodgate forgets an envelope the herder did not use yet, so that it can
arrive again once it is useful). :class:`SignatureCache` remembers, for the
most recent ``capacity`` envelopes, whether the signature verified, good AND
bad, keyed by the SHA-256 of the envelope's XDR (statement and signature:
strict decoding admits one encoding per envelope, so equal bytes mean equal
envelopes and a forged copy with another signature is another key; the
intake passes the bytes the envelope was received as, not a re-encoding). Memory
is 32 bytes of key plus a flag per entry, whatever the envelope's size.

Pure: the verifier is passed in; hashing is the only work done here.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["DEFAULT_SIGNATURE_CACHE", "SignatureCache"]

DEFAULT_SIGNATURE_CACHE = 65536


class SignatureCache:
    """An LRU map from envelope hash to "its signature verified"."""

    __slots__ = ("_capacity", "_verdicts", "hits", "verifications")

    def __init__(self, capacity: int = DEFAULT_SIGNATURE_CACHE) -> None:
        if capacity < 1:
            raise ValueError("signature cache capacity must be at least 1")
        self._capacity = capacity
        self._verdicts: OrderedDict[bytes, bool] = OrderedDict()
        self.hits = 0
        self.verifications = 0

    def __len__(self) -> int:
        return len(self._verdicts)

    def check(self, encoded: bytes, verify: Callable[[], bool]) -> bool:
        """Whether the envelope encoded as ``encoded`` is signed right; ``verify`` runs only if not remembered."""
        key = hashlib.sha256(encoded).digest()
        known = self._verdicts.get(key)
        if known is not None:
            self._verdicts.move_to_end(key)
            self.hits += 1
            return known
        self.verifications += 1
        ok = verify()
        self._verdicts[key] = ok
        if len(self._verdicts) > self._capacity:
            self._verdicts.popitem(last=False)
        return ok
