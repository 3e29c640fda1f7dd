"""Server-sent events for apps and the status page: a bounded fan-out that never waits for a reader.

Theory of operation: the node publishes small JSON events (a ledger closed,
a quorum member changed state, the node lost or regained sync) into an
``EventHub``. Each ``GET /events`` client holds a ``Subscription``: a queue
of at most ``queue_size`` events. Publishing appends to every queue and
returns at once; when a reader is too slow and its queue is full, its oldest
event is dropped and counted (per client, and in ``scpd_events_dropped_total``),
and the client is told with a ``dropped`` event so it can re-read the state
from the JSON endpoints. The node never blocks on, nor buffers without bound
for, a reader. A short history of recent events is replayed to each new
client so a page shows the last slots at once.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Event", "EventHub", "Subscription"]

DEFAULT_QUEUE_SIZE = 256
DEFAULT_HISTORY = 20
MAX_CLIENTS = 64


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    kind: str
    data: dict[str, Any]

    def encode(self) -> bytes:
        """The event in the text/event-stream format."""
        return f"id: {self.id}\nevent: {self.kind}\ndata: {json.dumps(self.data, separators=(',', ':'))}\n\n".encode()


class Subscription:
    """One reader's bounded queue; ``dropped`` counts events it was too slow for."""

    def __init__(self, queue_size: int) -> None:
        self.queue: deque[Event] = deque()
        self.queue_size = queue_size
        self.dropped = 0
        self.unreported_drops = 0
        self.closed = False
        self.wake = asyncio.Event()

    def push(self, event: Event) -> bool:
        """Queue ``event``; False when the oldest one had to go to make room."""
        kept = True
        if len(self.queue) >= self.queue_size:
            self.queue.popleft()
            self.dropped += 1
            self.unreported_drops += 1
            kept = False
        self.queue.append(event)
        self.wake.set()
        return kept

    def take(self) -> list[Event]:
        out = list(self.queue)
        self.queue.clear()
        self.wake.clear()
        return out


class EventHub:
    def __init__(
        self,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        history: int = DEFAULT_HISTORY,
        max_clients: int = MAX_CLIENTS,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self.queue_size = queue_size
        self.max_clients = max_clients
        self._history: deque[Event] = deque(maxlen=history)
        self._subscribers: set[Subscription] = set()
        self._next_id = 1
        self._on_drop = on_drop

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    def publish(self, kind: str, data: dict[str, Any]) -> Event:
        event = Event(self._next_id, kind, data)
        self._next_id += 1
        if kind == "ledger":
            self._history.append(event)
        dropped = sum(1 for sub in self._subscribers if not sub.push(event))
        if dropped and self._on_drop is not None:
            self._on_drop(dropped)
        return event

    def subscribe(self) -> Subscription | None:
        """A new reader, primed with the recent history; None when there are ``max_clients`` already."""
        if len(self._subscribers) >= self.max_clients:
            return None
        sub = Subscription(self.queue_size)
        for event in self._history:
            sub.push(event)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    def close(self) -> None:
        """End every stream (the server is stopping): readers see ``closed`` and return."""
        for sub in self._subscribers:
            sub.closed = True
            sub.wake.set()
