"""A copy we already judged costs nothing: each envelope's signature is verified once, good or bad."""

from __future__ import annotations

import pytest

from scpd.nodecore.sigcache import SignatureCache


def test_a_verdict_is_remembered_for_good_and_bad_envelopes() -> None:
    cache = SignatureCache(capacity=8)
    calls: list[bytes] = []

    def verifier(encoded: bytes, ok: bool):  # type: ignore[no-untyped-def]
        def verify() -> bool:
            calls.append(encoded)
            return ok

        return verify

    for _ in range(1000):
        assert cache.check(b"good", verifier(b"good", True))
        assert not cache.check(b"bad", verifier(b"bad", False))
    assert calls == [b"good", b"bad"]
    assert (cache.verifications, cache.hits) == (2, 1998)


def test_the_cache_is_bounded_and_forgets_the_least_recently_used() -> None:
    cache = SignatureCache(capacity=2)
    count = 0

    def verify() -> bool:
        nonlocal count
        count += 1
        return True

    cache.check(b"a", verify)
    cache.check(b"b", verify)
    cache.check(b"a", verify)  # a is now the most recent
    cache.check(b"c", verify)  # evicts b
    assert len(cache) == 2 and count == 3
    cache.check(b"a", verify)
    assert count == 3
    cache.check(b"b", verify)
    assert count == 4
    with pytest.raises(ValueError):
        SignatureCache(capacity=0)
