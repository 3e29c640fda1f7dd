"""Temporary bans of misbehaving peers, by node id and by address.

A ban is a key (a node id or a ``PeerAddress``) with an expiry on an
injectable monotonic clock. Whole IP addresses are not banned: many
validators may share one host (a localnet on 127.0.0.1), so an address here is
host *and* listening port; ``KeyChurn`` limits what a banned host may do
instead: come back under fresh keys, one per interval. ``Scores`` adds up a
node's misbehaviour points until they earn it a ban.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

__all__ = ["BanList", "KeyChurn", "Scores"]


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


class KeyChurn:
    """After a ban, a host may bring fresh keys only one per ``interval`` seconds while the ban lasts.

    Keys cost nothing to make, so a ban by node id alone is undone by the next
    key. A whole host is not banned (validators share hosts), but a host that
    earned a ban is on probation: a key it already used, or a preferred one,
    passes; a new key passes at most once per ``interval``. Bounded: at most
    ``capacity`` hosts and ``keys_per_host`` remembered keys each.
    """

    __slots__ = ("_clock", "_hosts", "capacity", "interval", "keys_per_host")

    def __init__(
        self,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        capacity: int = 4096,
        keys_per_host: int = 64,
    ) -> None:
        self.interval = interval
        self._clock = clock
        self.capacity = capacity
        self.keys_per_host = keys_per_host
        self._hosts: dict[str, _Probation] = {}

    def note_ban(self, host: str, key: Hashable, seconds: float) -> None:
        now = self._clock()
        probation = self._hosts.get(host)
        if probation is None:
            if len(self._hosts) >= self.capacity:
                self._expire(now)
                if len(self._hosts) >= self.capacity:
                    del self._hosts[min(self._hosts, key=lambda h: self._hosts[h].until)]
            probation = self._hosts[host] = _Probation(now)
        probation.until = max(probation.until, now + seconds)
        probation.keys.pop(key, None)  # the banned key is not one the host may keep using

    def admit(self, host: str, key: Hashable) -> bool:
        """May ``host`` connect with ``key`` now? Records the key when it is new and admitted."""
        probation = self._hosts.get(host)
        if probation is None:
            return True
        now = self._clock()
        if probation.until <= now:
            del self._hosts[host]
            return True
        if key in probation.keys:
            return True
        if now - probation.last_new < self.interval:
            return False
        probation.last_new = now
        probation.keys[key] = None
        while len(probation.keys) > self.keys_per_host:
            del probation.keys[next(iter(probation.keys))]
        return True

    def _expire(self, now: float) -> None:
        for host in [h for h, p in self._hosts.items() if p.until <= now]:
            del self._hosts[host]


class _Probation:
    __slots__ = ("keys", "last_new", "until")

    def __init__(self, now: float) -> None:
        self.until = now
        # The ban itself starts the interval: the next fresh key waits.
        self.last_new = now
        self.keys: dict[Hashable, None] = {}


class Scores:
    """Misbehaviour points per key, for the ``capacity`` keys scored most recently."""

    __slots__ = ("_points", "capacity")

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._points: OrderedDict[Hashable, int] = OrderedDict()

    def add(self, key: Hashable, points: int) -> int:
        """Add ``points`` to ``key``'s score and return its total."""
        total = self._points.pop(key, 0) + points
        self._points[key] = total
        while len(self._points) > self.capacity:
            self._points.popitem(last=False)
        return total

    def forget(self, key: Hashable) -> None:
        self._points.pop(key, None)
