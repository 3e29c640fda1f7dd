"""The address book: the addresses we know, the ones we keep connected, and when to dial each again.

Configured ("preferred") addresses are never forgotten and always redialed;
learned ones (PEERS messages, inbound peers' listening ports) are bounded,
the oldest non-preferred one making room. Each address's dial state holds
its consecutive failures and the time of its next attempt (the overlay sets
them from ``Backoff``); an address that turned out to be ourselves is never
dialed again. Bookkeeping only: the overlay dials and passes the time in.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from scpd.base.types import NodeID
from scpd.node.overlay.bans import BanList
from scpd.node.overlay.peer import Peer
from scpd.nodecore.messages import MAX_PEER_ADDRESSES, PeerAddress, Peers

__all__ = ["AddressBook", "DialState"]


@dataclass(slots=True)
class DialState:
    failures: int = 0
    next_attempt: float = 0.0


class AddressBook:
    """Known addresses (bounded), the preferred ones, dial states, and which node each address led to."""

    def __init__(self, configured: tuple[PeerAddress, ...], max_known: int) -> None:
        self.preferred: set[PeerAddress] = set(configured)
        self.known: OrderedDict[PeerAddress, None] = OrderedDict((a, None) for a in configured)
        self.dialing: set[PeerAddress] = set()
        self.node_of: dict[PeerAddress, NodeID] = {}
        self.ourselves: set[PeerAddress] = set()
        self._dial: dict[PeerAddress, DialState] = {}
        self._max_known = max_known

    def add(self, address: PeerAddress, *, preferred: bool = False) -> None:
        """Learn an address; preferred ones are always kept connected."""
        if preferred:
            self.preferred.add(address)
        if address not in self.known:
            if len(self.known) >= self._max_known:
                victim = next((a for a in self.known if a not in self.preferred), None)
                if victim is None:
                    return
                del self.known[victim]
                self._dial.pop(victim, None)
            self.known[address] = None

    def dial_state(self, address: PeerAddress) -> DialState:
        return self._dial.setdefault(address, DialState())

    def dial_failures(self, address: PeerAddress) -> int:
        """Consecutive failed dials of an address (0 after a success)."""
        state = self._dial.get(address)
        return 0 if state is None else state.failures

    def behind_preferred(self, node: NodeID) -> bool:
        """Whether ``node`` is the node a configured address led to."""
        return any(self.node_of.get(a) == node for a in self.preferred)

    def _connected(self, address: PeerAddress, peers: Mapping[NodeID, Peer]) -> bool:
        if address in self.dialing:
            return True
        node = self.node_of.get(address)
        if node is not None and node in peers:
            return True
        return any(p.address == address for p in peers.values())

    def _dialable(self, address: PeerAddress, now: float, peers: Mapping[NodeID, Peer], bans: BanList) -> bool:
        state = self._dial.get(address)
        return (
            address not in self.ourselves
            and not self._connected(address, peers)
            and not bans.is_banned(address)
            and (state is None or state.next_attempt <= now)
        )

    def to_dial(
        self, now: float, peers: Mapping[NodeID, Peer], bans: BanList, target: int, rng: random.Random
    ) -> list[PeerAddress]:
        """One round: preferred addresses that are down, then strangers up to ``target``; marked as dialing."""
        chosen = [a for a in sorted(self.preferred) if self._dialable(a, now, peers, bans)]
        self.dialing.update(chosen)
        missing = target - len(peers) - len(self.dialing)
        if missing > 0:
            candidates = [a for a in self.known if a not in self.preferred and self._dialable(a, now, peers, bans)]
            rng.shuffle(candidates)
            self.dialing.update(candidates[:missing])
            chosen += candidates[:missing]
        return chosen

    def peers_message(self, peer: Peer, peers: Mapping[NodeID, Peer]) -> Peers | None:
        """The addresses to tell a new peer: our other peers' first, then known ones; None if there are none."""
        addresses: list[PeerAddress] = []
        for other in peers.values():
            if other is not peer and other.address is not None:
                addresses.append(other.address)
        for address in self.known:
            if len(addresses) >= MAX_PEER_ADDRESSES:
                break
            if address not in addresses and address != peer.address:
                addresses.append(address)
        return Peers(tuple(addresses[:MAX_PEER_ADDRESSES])) if addresses else None
