"""What the daemon's overlay does for one simulated node, on the simulator's full mesh.

The node core asks its shell to fetch and to flood; in the daemon the overlay
(``scpd.node.overlay``) does it, and the simulator, which may not import the
daemon's shells, does the same much more simply here:

- **flooded duplicates** (SCP envelopes, transactions) are screened before
  decoding by a bounded memory of message hashes, and a message the core
  ignored is forgotten again, so that a later copy is judged anew;
- **fetches**: a ``FetchTxSet`` / ``FetchQuorumSet`` sends a GET to one peer
  (unless the same tx set is already asked of another and the core said not
  to ask twice) and waits; an answer that hashes to what was asked settles
  every fetch of that item, a wrong one fails the fetches from its sender and
  is held against it, a DONT_HAVE fails them, the timeout fails the rest; an
  answer nobody asked for is dropped;
- **relays**: an envelope is never relayed to its signer nor to a peer
  connected to the signer (the overlay's NEIGHBORS rule), which on a full mesh
  leaves nobody, so relays are only counted.

Time-outs run on the virtual clock and die with the node.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from scpd.base.quorum import quorum_set_hash
from scpd.base.types import NodeID, SCPQuorumSet
from scpd.nodecore import events as ev
from scpd.nodecore.actions import FetchQuorumSet, FetchTxSet
from scpd.nodecore.messages import GetQuorumSet, GetTxSet, MessageType, OverlayMessage
from scpd.sim.clock import Event, VirtualClock

__all__ = ["FLOOD_MEMORY", "Answer", "FloodScreen", "Requests"]

FLOOD_MEMORY = 4096

Feed = Callable[[ev.Event], None]
Ask = Callable[[NodeID, OverlayMessage], None]


class Answer(Enum):
    """What an answer to a fetch was."""

    SETTLED = "settled"  # what was asked: every fetch of the item has it
    WRONG = "wrong"  # not what was asked (its sender is to be held to account)
    UNREQUESTED = "unrequested"  # nobody asked for it: dropped


class FloodScreen:
    """The hashes of flooded messages recently received (bounded, oldest forgotten first)."""

    def __init__(self, capacity: int = FLOOD_MEMORY) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    def first_time(self, payload: bytes) -> bytes | None:
        """The message's digest when it is new (now remembered), None for a copy."""
        digest = hashlib.sha256(payload).digest()
        if digest in self._seen:
            self._seen.move_to_end(digest)
            return None
        self._seen[digest] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return digest

    def forget(self, digest: bytes) -> None:
        self._seen.pop(digest, None)


@dataclass
class _Item:
    """One item asked for (a tx set or quorum set by hash) and the fetches waiting for it."""

    kind: MessageType
    waiting: dict[int, tuple[NodeID, Event]] = field(default_factory=dict)
    asked: set[NodeID] = field(default_factory=set)


class Requests:
    """A node's outstanding fetches; ``feed`` hands the answers to its core as events."""

    def __init__(self, clock: VirtualClock, ask: Ask, feed: Feed) -> None:
        self._clock = clock
        self._ask = ask
        self._feed = feed
        self._items: dict[bytes, _Item] = {}

    def fetch(self, action: FetchTxSet | FetchQuorumSet) -> None:
        message: GetTxSet | GetQuorumSet
        if isinstance(action, FetchTxSet):
            item_hash, kind, message = action.tx_set_hash, MessageType.GET_TX_SET, GetTxSet(action.tx_set_hash)
            ask = action.ask_if_pending
        else:
            item_hash, kind = action.qset_hash, MessageType.GET_SCP_QUORUMSET
            message, ask = GetQuorumSet(action.qset_hash), True
        item = self._items.setdefault(item_hash, _Item(kind))
        fetch_id = action.fetch_id
        expiry = self._clock.call_later(action.timeout, lambda: self._expire(item_hash, fetch_id))
        item.waiting[fetch_id] = (action.peer, expiry)
        if (ask or not item.asked) and action.peer not in item.asked:
            item.asked.add(action.peer)
            self._ask(action.peer, message)

    def tx_set(self, peer: NodeID, item_hash: bytes, payload: bytes) -> Answer:
        """A TX_SET from ``peer``."""
        item = self._items.get(item_hash)
        if item is None or item.kind is not MessageType.GET_TX_SET:
            return Answer.UNREQUESTED
        if hashlib.sha256(payload).digest() != item_hash:
            self.refused(peer, item_hash)
            return Answer.WRONG
        self._settle(item_hash, lambda fetch_id: ev.TxSetAnswered(fetch_id, payload, self._clock.now))
        return Answer.SETTLED

    def quorum_set(self, qset: SCPQuorumSet) -> Answer:
        """An SCP_QUORUMSET (identified by its own hash, so never a wrong answer)."""
        item_hash = quorum_set_hash(qset)
        item = self._items.get(item_hash)
        if item is None or item.kind is not MessageType.GET_SCP_QUORUMSET:
            return Answer.UNREQUESTED
        self._settle(item_hash, lambda fetch_id: ev.QuorumSetAnswered(fetch_id, qset, self._clock.now))
        return Answer.SETTLED

    def refused(self, peer: NodeID, item_hash: bytes) -> None:
        """``peer`` will not answer for ``item_hash`` (DONT_HAVE, or a wrong answer): its fetches fail now."""
        item = self._items.get(item_hash)
        if item is None:
            return
        item.asked.discard(peer)
        for fetch_id, (asked, expiry) in list(item.waiting.items()):
            if asked == peer:
                expiry.cancel()
                del item.waiting[fetch_id]
                self._feed(ev.FetchFailed(fetch_id, self._clock.now))
        self._drop_if_done(item_hash)

    def _settle(self, item_hash: bytes, answer: Callable[[int], ev.Event]) -> None:
        item = self._items.pop(item_hash)
        for fetch_id, (_, expiry) in item.waiting.items():
            expiry.cancel()
            self._feed(answer(fetch_id))

    def _expire(self, item_hash: bytes, fetch_id: int) -> None:
        item = self._items.get(item_hash)
        if item is None:
            return
        gone = item.waiting.pop(fetch_id, None)
        if gone is None:
            return
        if all(peer != gone[0] for peer, _ in item.waiting.values()):
            item.asked.discard(gone[0])  # a later fetch may ask it again
        self._feed(ev.FetchFailed(fetch_id, self._clock.now))
        self._drop_if_done(item_hash)

    def _drop_if_done(self, item_hash: bytes) -> None:
        item = self._items.get(item_hash)
        if item is not None and not item.waiting:
            del self._items[item_hash]

    def cancel_all(self) -> None:
        """The node crashed: nothing it waited for can time out any more."""
        for item in self._items.values():
            for _, expiry in item.waiting.values():
                expiry.cancel()
        self._items.clear()
