"""Virtual time: a clock and an event queue ordered by (time, sequence).

The queue is a binary heap of ``(time, sequence, event)``. The sequence number
is a global insertion counter, so two events due at the same virtual instant
always run in the order they were scheduled: the only source of ordering is
the program itself, never the heap's internal layout or the wall clock.
Cancelling marks the event dead and leaves it in the heap (lazy deletion),
which keeps cancel O(1).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

__all__ = ["Event", "VirtualClock"]


class Event:
    """A callback due at a virtual time; cancel() makes it never run."""

    __slots__ = ("callback", "cancelled", "time")

    def __init__(self, time: float, callback: Callable[[], None]) -> None:
        self.time = time
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """Simulated seconds since the start of a run, and the events still due."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, Event]] = []
        self._sequence = 0
        self.events_run = 0

    def call_at(self, time: float, callback: Callable[[], None]) -> Event:
        """Schedule ``callback`` at absolute virtual ``time`` (never in the past)."""
        event = Event(max(time, self.now), callback)
        self._sequence += 1
        heapq.heappush(self._heap, (event.time, self._sequence, event))
        return event

    def call_later(self, delay: float, callback: Callable[[], None]) -> Event:
        return self.call_at(self.now + max(delay, 0.0), callback)

    def next_time(self) -> float | None:
        """When the next live event is due, or None if nothing is pending."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def step(self) -> bool:
        """Run the next live event; False when the queue is empty."""
        heap = self._heap
        while heap:
            time, _, event = heapq.heappop(heap)
            if event.cancelled:
                continue
            self.now = time
            self.events_run += 1
            event.callback()
            return True
        return False

    def run(self, until: float, stop: Callable[[], bool] | None = None) -> None:
        """Run events due at or before ``until``, checking ``stop()`` after each.

        Returns when ``stop()`` is true (the clock then reads the time of the
        last event run), or when no event is due by ``until`` (the clock then
        reads ``until``).
        """
        while stop is None or not stop():
            nxt = self.next_time()
            if nxt is None or nxt > until:
                self.now = max(self.now, until)
                return
            self.step()
