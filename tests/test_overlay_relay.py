"""Flooding decisions of the overlay's relay, driven directly: who gets a message, and when it is seen.

Peers are stand-ins that record what they are sent; the relay is the one
``Overlay`` runs (tests/test_overlay_network.py floods over real sockets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from scpd.base.keys import Keypair
from scpd.base.types import NodeID, SCPEnvelope, SCPNomination, SCPStatement
from scpd.node.overlay.handler import Verdict
from scpd.node.overlay.peer import Peer
from scpd.node.overlay.relay import Relay
from scpd.node.overlay.stats import OverlayStats
from scpd.nodecore.messages import Neighbors, OverlayMessage, ScpMessage, Transaction, encode_message

NODES = [Keypair(bytes([0x50 + i]) * 32).public_key for i in range(6)]
ME = NODES[0]


@dataclass
class FakePeer:
    node_id: NodeID
    sent: list[bytes] = field(default_factory=list)

    def send_encoded(self, encoded: bytes) -> bool:
        self.sent.append(encoded)
        return True


def setup(*nodes: NodeID) -> tuple[Relay, dict[NodeID, FakePeer], OverlayStats]:
    fakes = {n: FakePeer(n) for n in nodes}
    stats = OverlayStats()
    relay = Relay(ME, cast(dict[NodeID, Peer], fakes), stats, flood_memory=100)
    return relay, fakes, stats


def envelope(signer: NodeID, slot: int = 3) -> ScpMessage:
    statement = SCPStatement(signer, slot, SCPNomination(bytes(32), (b"v",), ()))
    return ScpMessage(SCPEnvelope(statement, bytes(64)))


def receive(relay: Relay, fakes: dict[NodeID, FakePeer], sender: NodeID, message: OverlayMessage) -> bool:
    """What the overlay does with a flooded message from ``sender``: screen it; True if it was new."""
    return not relay.screen(cast(Peer, fakes[sender]), int(message.TYPE), encode_message(message))


def test_an_accepted_message_goes_to_every_peer_that_does_not_have_it() -> None:
    relay, fakes, stats = setup(*NODES[1:4])
    tx = Transaction(b"tx")
    assert receive(relay, fakes, NODES[1], tx)
    relay.judged(tx, encode_message(tx), Verdict.ACCEPT)
    assert [len(fakes[n].sent) for n in NODES[1:4]] == [0, 1, 1]
    assert not receive(relay, fakes, NODES[2], tx)  # a copy: dropped before decoding
    assert (stats.flood_received, stats.flood_duplicates, stats.flood_sent) == (2, 1, 2)


def test_an_ignored_message_is_not_seen_and_a_rejected_one_is() -> None:
    relay, fakes, _ = setup(*NODES[1:3])
    ignored, rejected = Transaction(b"later"), Transaction(b"bad")
    for message, verdict in ((ignored, Verdict.IGNORE), (rejected, Verdict.REJECT)):
        assert receive(relay, fakes, NODES[1], message)
        relay.judged(message, encode_message(message), verdict)
    assert fakes[NODES[2]].sent == []
    assert receive(relay, fakes, NODES[2], ignored)  # asked for again later, it must arrive
    assert not receive(relay, fakes, NODES[2], rejected)


def test_an_envelope_skips_its_signer_and_the_signers_neighbours() -> None:
    signer, near, far, sender = NODES[1:5]
    relay, fakes, _ = setup(signer, near, far, sender)
    relay.on_neighbors(cast(Peer, fakes[near]), Neighbors((signer,)))
    message = envelope(signer)
    assert receive(relay, fakes, sender, message)
    relay.judged(message, encode_message(message), Verdict.ACCEPT)
    assert {n for n, f in fakes.items() if f.sent} == {far}
    assert relay.scp_slot == 3
    assert relay.neighbors_of(near) == frozenset({signer})
    relay.peer_gone(near)
    assert relay.neighbors_of(near) == frozenset()


def test_our_own_envelope_goes_to_every_peer_and_force_resends() -> None:
    relay, fakes, _ = setup(*NODES[1:4])
    relay.on_neighbors(cast(Peer, fakes[NODES[1]]), Neighbors((NODES[2],)))
    mine = envelope(ME, slot=8)
    assert relay.broadcast(mine) == 3
    assert relay.broadcast(mine) == 0  # every peer has it
    assert relay.broadcast(mine, force=True) == 3
    assert relay.scp_slot == 8


def test_a_message_relayed_later_skips_the_peer_it_came_from() -> None:
    relay, fakes, _ = setup(*NODES[1:4])
    tx = Transaction(b"waited for its tx set")
    assert relay.relay(tx, origin=NODES[1]) == 2
    assert fakes[NODES[1]].sent == []


def test_the_relay_targets_of_a_signer_follow_new_hints_and_peers() -> None:
    # The targets per signer are remembered; each change below must be seen by the next envelope.
    signer, near, sender = NODES[1:4]
    relay, fakes, _ = setup(signer, near, sender)

    def relayed_to(slot: int) -> set[NodeID]:
        for fake in fakes.values():
            fake.sent.clear()
        message = envelope(signer, slot)
        assert receive(relay, fakes, sender, message)
        relay.judged(message, encode_message(message), Verdict.ACCEPT)
        return {n for n, f in fakes.items() if f.sent}

    assert relayed_to(1) == {near}
    relay.on_neighbors(cast(Peer, fakes[near]), Neighbors((signer,)))
    assert relayed_to(2) == set()  # near now hears the signer first hand
    late = NODES[4]
    fakes[late] = FakePeer(late)
    relay.peers_changed()
    assert relayed_to(3) == {late}
    del fakes[near]
    relay.peer_gone(near)
    fakes[near] = FakePeer(near)  # back, but has not said yet whom it is connected to
    relay.peers_changed()
    assert relayed_to(4) == {near, late}
