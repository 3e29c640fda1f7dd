"""Pending requests for items fetched by hash (quorum sets, transaction sets).

The herder asks a peer for an item it saw referenced and waits, bounded, for
the answer. ``PendingRequests`` keeps one future per hash, so many waiters for
the same item share one request; the table itself is bounded, so a flood of
unknown hashes cannot grow memory, and so is what one peer is asked at once
(``per_peer``): a peer that references hashes it never delivers runs out of
requests, the other peers do not. An answer nobody asked for is not an error
here (the consumer decides); a ``DONT_HAVE`` from every asked peer ends the
wait early with ``None``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Generic, TypeVar

from scpd.base.types import NodeID
from scpd.errors import OverlayError

__all__ = ["PendingRequests", "TooManyRequests"]

T = TypeVar("T")


class TooManyRequests(OverlayError):
    """The pending-request table is full."""


class _Pending(Generic[T]):
    __slots__ = ("asked", "future", "refused", "verify", "waiters")

    def __init__(self, future: asyncio.Future[T | None], verify: Callable[[T], bool] | None) -> None:
        self.future = future
        self.verify = verify
        self.asked: set[NodeID] = set()
        self.refused: set[NodeID] = set()
        self.waiters = 0


class PendingRequests(Generic[T]):
    """Futures keyed by item hash, with a bound on how many may be open at once."""

    def __init__(self, limit: int = 1024, per_peer: int = 64) -> None:
        self.limit = limit
        self.per_peer = per_peer
        self._pending: dict[bytes, _Pending[T]] = {}
        self._asked: Counter[NodeID] = Counter()  # open requests per asked peer

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, item_hash: bytes) -> bool:
        return item_hash in self._pending

    async def wait(
        self,
        item_hash: bytes,
        peer: NodeID,
        send_request: Callable[[], bool],
        timeout: float,
        verify: Callable[[T], bool] | None = None,
    ) -> T | None:
        """Ask ``peer`` (unless it was already asked) and wait up to ``timeout`` seconds.

        Returns the item, or None on timeout or when every asked peer said it
        does not have it. ``send_request`` returns False if the request could
        not be queued (peer gone); ``verify`` filters answers (a wrong answer
        does not resolve the wait).
        """
        entry = self._pending.get(item_hash)
        if entry is None:
            if len(self._pending) >= self.limit:
                raise TooManyRequests(f"{len(self._pending)} requests already pending")
            entry = _Pending(asyncio.get_running_loop().create_future(), verify)
            self._pending[item_hash] = entry
        if peer not in entry.asked and self._asked[peer] < self.per_peer and send_request():
            entry.asked.add(peer)
            self._asked[peer] += 1
        if not entry.asked:
            self._finish(item_hash, None)
        entry.waiters += 1
        try:
            # shield: one waiter timing out must not cancel the future the others share.
            return await asyncio.wait_for(asyncio.shield(entry.future), timeout)
        except TimeoutError:
            return None
        finally:
            entry.waiters -= 1
            if entry.future.done() or entry.waiters == 0:
                self._drop(item_hash, entry)

    def resolve(self, item_hash: bytes, item: T) -> bool | None:
        """Deliver an answer: True if it ends the wait, False if ``verify`` rejects it, None if nobody waits."""
        entry = self._pending.get(item_hash)
        if entry is None or entry.future.done():
            return None
        if entry.verify is not None and not entry.verify(item):
            return False
        entry.future.set_result(item)
        return True

    def refuse(self, item_hash: bytes, peer: NodeID) -> None:
        """Record a DONT_HAVE; when every asked peer refused, the waiters get None."""
        entry = self._pending.get(item_hash)
        if entry is None or peer not in entry.asked:
            return
        entry.refused.add(peer)
        if entry.refused >= entry.asked:
            self._finish(item_hash, None)

    def peer_gone(self, peer: NodeID) -> None:
        """A disconnected peer will never answer: treat it as a refusal."""
        for item_hash in list(self._pending):
            self.refuse(item_hash, peer)

    def _finish(self, item_hash: bytes, item: T | None) -> None:
        entry = self._pending.get(item_hash)
        if entry is not None and not entry.future.done():
            entry.future.set_result(item)

    def _drop(self, item_hash: bytes, entry: _Pending[T]) -> None:
        if self._pending.get(item_hash) is entry:
            del self._pending[item_hash]
            for peer in entry.asked:
                self._asked[peer] -= 1
                if not self._asked[peer]:
                    del self._asked[peer]

    def asked(self, peer: NodeID) -> int:
        """Requests to ``peer`` still open."""
        return self._asked[peer]

    def cancel_all(self) -> None:
        for entry in self._pending.values():
            if not entry.future.done():
                entry.future.set_result(None)
        self._pending.clear()
        self._asked.clear()
