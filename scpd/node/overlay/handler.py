"""The consumer's side of the overlay: its ``Handler`` and the ``Verdict`` it returns.

The consumer sees the sender's node id, never the connection: it answers
through ``Overlay.send`` and ``Overlay.score``, which take a node id (a peer
gone meanwhile is simply not there any more). A handler judges each message
it is given; a REJECT (or an ``ScpdError``
raised while handling) scores the sender. A handler may be a coroutine: the
overlay awaits it before reading the sender's next message.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from scpd.base.types import NodeID
from scpd.errors import ScpdError
from scpd.node.overlay.peer import Peer
from scpd.nodecore.actions import Verdict
from scpd.nodecore.messages import OverlayMessage

__all__ = ["PROTOCOL_POINTS", "REJECT_POINTS", "Handler", "PeerWatcher", "Verdict", "call_handler"]

Handler = Callable[[NodeID, OverlayMessage], Verdict | Awaitable[Verdict | None] | None]
# Told of each peer that comes (True) or goes (False); a replacement connection is no new peer.
PeerWatcher = Callable[[NodeID, bool], None]

REJECT_POINTS = 25
PROTOCOL_POINTS = 50


async def call_handler(handler: Handler, peer: Peer, message: OverlayMessage) -> Verdict:
    """Let ``handler`` judge ``message``; score ``peer`` when it is rejected."""
    try:
        result = handler(peer.node_id, message)
        if inspect.isawaitable(result):
            result = await result
    except ScpdError as exc:
        peer.score(f"invalid {type(message).__name__}: {exc}", REJECT_POINTS)
        return Verdict.REJECT
    verdict = Verdict.IGNORE if result is None else result
    if verdict is Verdict.REJECT:
        peer.score(f"rejected {type(message).__name__}", REJECT_POINTS)
    return verdict
