"""Which flooded messages we have seen, and which peers already have them.

Flooding sends every new message to every peer once. The floodgate remembers
recent message hashes (bounded: the oldest are forgotten first) and, for each,
the peers known to hold it already (they sent it to us, or we sent it to
them), so a message is delivered to the consumer once and never goes back to
a peer that has it. A forgotten hash can at worst cause one redundant delivery
of a very old message, which the consumer's own checks (slot range) discard.

Holders are kept as the peers' raw 32-byte keys, not ``NodeID`` objects:
bytes hash in C (and cache their hash), while a ``NodeID`` hashes through a
Python call. Every flooded message is looked up here, and a peer that leaves
is discarded from every remembered message (up to ``DEFAULT_FLOOD_MEMORY``):
that was 65,536 Python calls per disconnection.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from scpd.base.types import NodeID

__all__ = ["DEFAULT_FLOOD_MEMORY", "Floodgate"]

DEFAULT_FLOOD_MEMORY = 65536


class Floodgate:
    """A bounded LRU map from message hash to the set of peers that hold it."""

    __slots__ = ("_capacity", "_seen")

    def __init__(self, capacity: int = DEFAULT_FLOOD_MEMORY) -> None:
        if capacity < 1:
            raise ValueError("floodgate capacity must be at least 1")
        self._capacity = capacity
        self._seen: OrderedDict[bytes, set[bytes]] = OrderedDict()  # digest -> holders' raw keys

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, digest: bytes) -> bool:
        return digest in self._seen

    def add(self, digest: bytes, holder: NodeID | None = None) -> bool:
        """Record the message (and who sent it); True if it was not known before."""
        holders = self._seen.get(digest)
        new = holders is None
        if holders is None:
            holders = set()
            self._seen[digest] = holders
            if len(self._seen) > self._capacity:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(digest)
        if holder is not None:
            holders.add(holder.ed25519)
        return new

    def targets(self, digest: bytes, peers: Iterable[NodeID]) -> list[NodeID]:
        """Peers that do not have the message yet; they are recorded as having it now."""
        holders = self._seen.get(digest)
        if holders is None:
            self.add(digest)
            holders = self._seen[digest]
        out = [p for p in peers if p.ed25519 not in holders]
        holders.update(p.ed25519 for p in out)
        return out

    def discard(self, digest: bytes) -> None:
        """Forget a message, so its next arrival is delivered again."""
        self._seen.pop(digest, None)

    def forget_peer(self, peer: NodeID) -> None:
        """Drop a disconnected peer from every holder set, so memory stays bounded by live peers."""
        key = peer.ed25519
        for holders in self._seen.values():
            holders.discard(key)
