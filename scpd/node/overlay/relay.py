"""Flooding: which peers get a flooded message, and the NEIGHBORS hints that spare copies.

Flooded kinds (SCP envelopes, transactions) pass the floodgate first, keyed
by the hash of their bytes and before they are even decoded (``screen``), so
a copy costs a hash and a lookup and the consumer's handler sees each one
exactly once; the handler's ``Verdict`` decides whether it is relayed to
every other peer (ACCEPT), dropped quietly (IGNORE) or held against the
sender (REJECT). A handler that needs time (waiting for a quorum set)
returns IGNORE and calls ``relay`` later.

Each peer tells us (NEIGHBORS) which nodes it is connected to, and we tell
it ours whenever our peer set changes: an SCP envelope is not relayed to a
peer that hears it from its signer first hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from scpd.base.types import NodeID
from scpd.node.overlay.floodgate import Floodgate
from scpd.node.overlay.handler import Verdict
from scpd.node.overlay.peer import Peer
from scpd.node.overlay.stats import OverlayStats
from scpd.nodecore.messages import (
    FLOODED_TYPES,
    MAX_NEIGHBORS,
    Neighbors,
    OverlayMessage,
    ScpMessage,
    encode_message,
    message_hash,
)

__all__ = ["NEIGHBORS_DELAY", "Relay"]

# Peer-set changes within this many seconds are announced to the peers together (NEIGHBORS).
NEIGHBORS_DELAY = 0.1
# Signers whose relay targets are remembered (``_relay_peers``); past it the memory starts afresh.
RELAY_PLAN_SIGNERS = 1024


class Relay:
    """The floodgate, the peers' NEIGHBORS, and the highest SCP slot seen (what a new peer is asked for)."""

    def __init__(self, node_id: NodeID, peers: dict[NodeID, Peer], stats: OverlayStats, flood_memory: int) -> None:
        self._node_id = node_id
        self._peers = peers
        self._stats = stats
        self._floodgate = Floodgate(flood_memory)
        # What each peer says it is connected to (NEIGHBORS): relay hints, see ``_targets``.
        self._neighbors: dict[NodeID, frozenset[NodeID]] = {}
        # Signer -> the peers its envelopes may be relayed to; recomputed when the peers or their hints change.
        self._relay_plan: dict[NodeID, tuple[NodeID, ...]] = {}
        self._announce: asyncio.TimerHandle | None = None
        self.scp_slot = 0  # the highest slot of an SCP envelope accepted or sent

    def screen(self, peer: Peer, kind: int, encoded: bytes) -> bool:
        """Before decoding: True drops a flooded message the floodgate already knows (a hash and a lookup).

        The floodgate's key is the hash of the message's bytes, so a copy is
        known without decoding it; the peer is recorded as holding it either way.
        """
        if kind not in FLOODED_TYPES:
            return False
        self._stats.flood_received += 1
        if self._floodgate.add(message_hash(encoded), peer.node_id):
            return False
        self._stats.flood_duplicates += 1
        return True

    def judged(self, message: OverlayMessage, encoded: bytes, verdict: Verdict) -> None:
        """A flooded message new to the floodgate (``screen`` recorded it) was judged: relay it if accepted."""
        digest = message_hash(encoded)
        if verdict is Verdict.ACCEPT:
            self._flood(encoded, self._targets(digest, message))
        elif verdict is Verdict.IGNORE:
            # Not used now (too far ahead, waiting for a fetch) is not
            # "seen": the same message asked for again later must arrive.
            self._floodgate.discard(digest)

    def _flood(self, encoded: bytes, targets: Iterable[NodeID]) -> int:
        sent = 0
        for node in targets:
            peer = self._peers.get(node)
            if peer is not None and peer.send_encoded(encoded):
                sent += 1
        self._stats.flood_sent += sent
        return sent

    def _targets(self, digest: bytes, message: OverlayMessage) -> list[NodeID]:
        """The peers a flooded message goes to: those that do not have it and will not get it anyway.

        Besides the floodgate's holders (who sent it to us, or got it from us),
        an SCP envelope is not relayed to its signer, nor to a peer that says
        (NEIGHBORS) it is connected to the signer: a node sends its own
        envelopes to every peer itself, so that peer hears it first hand. On a
        full mesh nothing is relayed at all; on a sparse graph every node that
        is not the signer's neighbour is still reached through relays
        (docs/protocol.md §4).
        """
        peers: Iterable[NodeID] = self._peers
        if isinstance(message, ScpMessage):
            self.scp_slot = max(self.scp_slot, message.envelope.statement.slot_index)
            signer = message.envelope.statement.node_id
            if signer != self._node_id:
                peers = self._relay_peers(signer)
        return self._floodgate.targets(digest, peers)

    def _relay_peers(self, signer: NodeID) -> tuple[NodeID, ...]:
        """The peers that neither are ``signer`` nor say they are connected to it.

        Remembered per signer: envelopes arrive hundreds of times a slot, the
        peer set and the hints change rarely, and working this out again for
        every envelope was a tenth of a 25-validator node's profiled CPU (and on a
        full mesh the answer is always empty).
        """
        peers = self._relay_plan.get(signer)
        if peers is None:
            if len(self._relay_plan) >= RELAY_PLAN_SIGNERS:
                self._relay_plan.clear()
            neighbors = self._neighbors
            peers = tuple(p for p in self._peers if p != signer and signer not in neighbors.get(p, ()))
            self._relay_plan[signer] = peers
        return peers

    def peers_changed(self) -> None:
        """A peer joined (the overlay calls this on every connection; one that leaves goes through ``peer_gone``)."""
        self._relay_plan.clear()

    def relay(self, message: OverlayMessage, origin: NodeID | None = None) -> int:
        """Send a flooded message to every peer that does not have it and will not get it anyway; returns how many."""
        encoded = encode_message(message)
        digest = message_hash(encoded)
        self._floodgate.add(digest, origin if origin in self._peers else None)
        return self._flood(encoded, self._targets(digest, message))

    def broadcast(self, message: OverlayMessage, *, force: bool = False) -> int:
        """Flood a message of our own; ``force`` resends even to peers that have it."""
        if not force:
            return self.relay(message)
        encoded = encode_message(message)
        digest = message_hash(encoded)
        self._floodgate.targets(digest, self._peers)
        return self._flood(encoded, list(self._peers))

    def neighbors_of(self, node: NodeID) -> frozenset[NodeID]:
        return self._neighbors.get(node, frozenset())

    def on_neighbors(self, peer: Peer, message: Neighbors) -> None:
        if self._peers.get(peer.node_id) is peer:
            self._neighbors[peer.node_id] = frozenset(message.nodes)
            self._relay_plan.clear()

    def peer_gone(self, node: NodeID) -> None:
        self._neighbors.pop(node, None)
        self._relay_plan.clear()
        self._floodgate.forget_peer(node)

    def neighbors_changed(self) -> None:
        """Our peer set changed: tell every peer shortly (changes in a burst make one announcement)."""
        if self._announce is None:
            self._announce = asyncio.get_running_loop().call_later(NEIGHBORS_DELAY, self._announce_neighbors)

    def _announce_neighbors(self) -> None:
        self._announce = None
        nodes = tuple(self._peers)[:MAX_NEIGHBORS]
        for peer in list(self._peers.values()):
            peer.send(Neighbors(nodes))

    def stop(self) -> None:
        if self._announce is not None:
            self._announce.cancel()
