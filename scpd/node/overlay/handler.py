"""The consumer's side of the overlay: its ``Handler`` and the ``Verdict`` it returns.

A handler judges each message it is given; a REJECT (or an ``ScpdError``
raised while handling) scores the sender. A handler may be a coroutine: the
overlay awaits it before reading the sender's next message.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from enum import Enum

from scpd.errors import ScpdError
from scpd.node.overlay.peer import Peer
from scpd.nodecore.messages import OverlayMessage

__all__ = ["PROTOCOL_POINTS", "REJECT_POINTS", "Handler", "Verdict", "call_handler"]


class Verdict(Enum):
    """The consumer's judgement of an incoming message."""

    ACCEPT = "accept"  # new and valid: relay it (flooded kinds)
    IGNORE = "ignore"  # not worth relaying, but not the sender's fault
    REJECT = "reject"  # invalid: score the sender


Handler = Callable[[Peer, OverlayMessage], Verdict | Awaitable[Verdict | None] | None]

REJECT_POINTS = 25
PROTOCOL_POINTS = 50


async def call_handler(handler: Handler, peer: Peer, message: OverlayMessage) -> Verdict:
    """Let ``handler`` judge ``message``; score ``peer`` when it is rejected."""
    try:
        result = handler(peer, message)
        if inspect.isawaitable(result):
            result = await result
    except ScpdError as exc:
        peer.score(f"invalid {type(message).__name__}: {exc}", REJECT_POINTS)
        return Verdict.REJECT
    verdict = Verdict.IGNORE if result is None else result
    if verdict is Verdict.REJECT:
        peer.score(f"rejected {type(message).__name__}", REJECT_POINTS)
    return verdict
