"""The overlay's address book and admission rules, driven directly: no sockets, an injected clock.

Peers are stand-ins with the three attributes these rules read (node id,
direction, address); the rules are the ones ``Overlay`` runs on real
connections (tests/test_overlay_network.py covers those end to end).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import cast

import pytest

from scpd.base.keys import Keypair
from scpd.base.types import NodeID
from scpd.node.overlay.addresses import AddressBook
from scpd.node.overlay.admission import Admission
from scpd.node.overlay.bans import BanList, KeyChurn, Scores
from scpd.node.overlay.handshake import HandshakeError
from scpd.node.overlay.peer import Peer
from scpd.node.overlay.settings import OverlaySettings
from scpd.node.overlay.stats import OverlayStats
from scpd.nodecore.messages import ErrorCode, Hello, PeerAddress, Peers
from scpd.operator.config_sections import OverlaySection

NODES = [Keypair(bytes([0x70 + i]) * 32).public_key for i in range(8)]
ME = NODES[0]


@dataclass
class FakePeer:
    node_id: NodeID
    outbound: bool
    address: PeerAddress | None = None
    closed: str = ""

    def close(self, reason: str, **_: object) -> None:
        self.closed = reason


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def addr(port: int) -> PeerAddress:
    return PeerAddress("127.0.0.1", port)


def peers_of(*fakes: FakePeer) -> dict[NodeID, Peer]:
    return {f.node_id: cast(Peer, f) for f in fakes}


def hello(node: NodeID) -> Hello:
    return Hello(1, bytes(32), node, bytes(32), bytes(32), 0)


# -- the address book ----------------------------------------------------------------


def test_known_addresses_are_bounded_and_preferred_ones_stay() -> None:
    book = AddressBook((addr(1),), max_known=3)
    for port in (2, 3, 4, 5):
        book.add(addr(port))
    assert list(book.known) == [addr(1), addr(4), addr(5)]  # the oldest strangers made room
    book.add(addr(6), preferred=True)
    assert addr(6) in book.known and addr(1) in book.known
    full = AddressBook((addr(1), addr(2)), max_known=2)
    full.add(addr(3))
    assert list(full.known) == [addr(1), addr(2)]  # nothing but preferred ones: the stranger is not learned


def test_a_round_dials_preferred_addresses_first_then_tops_up_to_the_target() -> None:
    book = AddressBook((addr(2), addr(1)), max_known=100)
    for port in range(10, 20):
        book.add(addr(port))
    connected = FakePeer(NODES[1], True, addr(10))
    chosen = book.to_dial(0.0, peers_of(connected), BanList(Clock()), target=5, rng=random.Random(1))
    assert chosen[:2] == [addr(1), addr(2)]
    assert len(chosen) == 4  # 5 wanted: one connected, two preferred, two strangers
    assert addr(10) not in chosen  # already connected
    assert set(chosen) <= book.dialing
    # Everything chosen is being dialed: the next round has nothing to add.
    assert book.to_dial(0.0, peers_of(connected), BanList(Clock()), target=5, rng=random.Random(1)) == []


def test_banned_failing_and_own_addresses_wait() -> None:
    clock = Clock()
    bans = BanList(clock)
    book = AddressBook((addr(1), addr(2), addr(3)), max_known=100)
    bans.ban(addr(1), 60)
    state = book.dial_state(addr(2))
    state.failures, state.next_attempt = 1, clock.now + 5
    book.ourselves.add(addr(3))
    assert book.to_dial(clock.now, {}, bans, target=8, rng=random.Random(1)) == []
    assert book.dial_failures(addr(2)) == 1
    assert book.to_dial(clock.now + 5, {}, bans, target=8, rng=random.Random(1)) == [addr(2)]


def test_the_node_behind_a_configured_address_counts_as_preferred() -> None:
    book = AddressBook((addr(1),), max_known=10)
    assert not book.behind_preferred(NODES[3])
    book.node_of[addr(1)] = NODES[3]
    assert book.behind_preferred(NODES[3])
    book.node_of[addr(9)] = NODES[4]  # a learned address: no preference
    assert not book.behind_preferred(NODES[4])


def test_a_new_peer_hears_of_the_other_peers_first_and_never_of_itself() -> None:
    book = AddressBook((addr(1),), max_known=1000)
    for port in range(100, 300):
        book.add(addr(port))
    new = FakePeer(NODES[1], False, addr(100))
    other = FakePeer(NODES[2], True, addr(7))
    message = book.peers_message(cast(Peer, new), peers_of(new, other))
    assert isinstance(message, Peers)
    assert message.addresses[0] == addr(7)
    assert addr(100) not in message.addresses
    assert len(message.addresses) == 100
    assert AddressBook((), max_known=10).peers_message(cast(Peer, new), peers_of(new)) is None


# -- admission -----------------------------------------------------------------------


def admission(
    peers: dict[NodeID, Peer],
    *,
    me: NodeID = ME,
    max_inbound: int = 2,
    preferred: frozenset[NodeID] = frozenset(),
) -> tuple[Admission, OverlayStats, BanList, KeyChurn]:
    clock = Clock()
    section = OverlaySection(max_inbound_peers=max_inbound)
    config = OverlaySettings(
        **section.model_dump(exclude={"peers"}), peers=(), network_passphrase="test", preferred_nodes=preferred
    )
    stats = OverlayStats()
    bans, churn = BanList(clock), KeyChurn(60.0, clock)
    book = AddressBook((), max_known=10)
    return Admission(me, config, stats, peers, book, bans, churn), stats, bans, churn


def test_hello_is_refused_from_a_banned_node_a_banned_hosts_new_key_and_a_full_pool() -> None:
    peers = peers_of(FakePeer(NODES[1], False), FakePeer(NODES[2], False))
    rules, stats, bans, churn = admission(peers, preferred=frozenset({NODES[5]}))
    bans.ban(NODES[3], 60)
    with pytest.raises(HandshakeError) as banned:
        rules.check_hello(hello(NODES[3]), None)  # even when we dialed it
    assert banned.value.code == ErrorCode.BANNED
    with pytest.raises(HandshakeError) as full:
        rules.check_hello(hello(NODES[4]), "10.0.0.1")
    assert full.value.code == ErrorCode.LOAD and stats.inbound_refused == 1
    rules.check_hello(hello(NODES[5]), "10.0.0.1")  # preferred: always finds a slot
    rules.check_hello(hello(NODES[1]), "10.0.0.1")  # already connected: a reconnection, not one more
    churn.note_ban("10.0.0.9", NODES[6], 60)
    with pytest.raises(HandshakeError, match="new keys"):
        rules.check_hello(hello(NODES[7]), "10.0.0.9")
    assert stats.new_keys_refused == 1


def test_a_preferred_newcomer_evicts_a_stranger_from_a_full_pool() -> None:
    stranger = FakePeer(NODES[1], False)
    friend = FakePeer(NODES[2], False)
    rules, stats, _, _ = admission(peers_of(stranger, friend), preferred=frozenset({NODES[2], NODES[3]}))
    rules._make_room(NODES[3])
    assert stranger.closed and not friend.closed
    assert stats.peers_evicted == 1
    with pytest.raises(HandshakeError):
        rules._make_room(NODES[4])  # a stranger gets no room


def test_both_ends_keep_the_same_one_of_two_crossing_connections() -> None:
    for a, b in ((NODES[1], NODES[2]), (NODES[2], NODES[1])):
        side_a, _, _, _ = admission({}, me=a)
        side_b, _, _, _ = admission({}, me=b)
        # a holds an outbound connection to b and receives b's; b holds the mirror image.
        keep_new_at_a = side_a._new_connection_wins(cast(Peer, FakePeer(b, True)), False, b)
        keep_new_at_b = side_b._new_connection_wins(cast(Peer, FakePeer(a, False)), True, a)
        assert keep_new_at_a == keep_new_at_b  # both keep the connection b dialed, or both a's
        assert keep_new_at_a == (b == min(a, b))


def test_scores_add_up_and_stay_bounded() -> None:
    scores = Scores(capacity=2)
    assert scores.add(NODES[1], 25) == 25
    assert scores.add(NODES[1], 25) == 50
    scores.add(NODES[2], 1)
    scores.add(NODES[3], 1)  # the least recently scored goes
    assert scores.add(NODES[1], 1) == 1
    scores.forget(NODES[3])
    assert scores.add(NODES[3], 5) == 5
