"""Temporary bans of misbehaving peers, by node id and by address.

A ban is a key (a node id or a ``PeerAddress``) with an expiry on an
injectable monotonic clock. Whole IP addresses are not banned: many
validators may share one host (a localnet on 127.0.0.1), so an address here is
host *and* listening port.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

__all__ = ["BanList"]


class BanList:
    __slots__ = ("_clock", "_until", "capacity")

    def __init__(self, clock: Callable[[], float] = time.monotonic, capacity: int = 10000) -> None:
        self._clock = clock
        self._until: dict[Hashable, float] = {}
        self.capacity = capacity

    def ban(self, key: Hashable, seconds: float) -> None:
        now = self._clock()
        if len(self._until) >= self.capacity:
            self._expire(now)
            if len(self._until) >= self.capacity:
                # Keep the list bounded: the ban closest to expiring goes first.
                del self._until[min(self._until, key=self._until.__getitem__)]
        self._until[key] = max(self._until.get(key, now), now + seconds)

    def is_banned(self, key: Hashable) -> bool:
        until = self._until.get(key)
        if until is None:
            return False
        if until <= self._clock():
            del self._until[key]
            return False
        return True

    def unban(self, key: Hashable) -> None:
        self._until.pop(key, None)

    def _expire(self, now: float) -> None:
        for key in [k for k, until in self._until.items() if until <= now]:
            del self._until[key]

    def entries(self) -> list[tuple[Hashable, float]]:
        """Every ban still in force, with its seconds left."""
        now = self._clock()
        self._expire(now)
        return [(key, until - now) for key, until in self._until.items()]
