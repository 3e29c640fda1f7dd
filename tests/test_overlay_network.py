"""The overlay over real TCP on 127.0.0.1: handshakes, hostile peers, flooding, dialing, bans.

Every test starts real ``Overlay`` instances on ephemeral ports. Hostile peers
are played by ``RawPeer``, which runs the production handshake code and then
writes whatever bytes the test wants. After each test the fixture stops every
overlay and checks that no task was left behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from netutil import free_port_range

from scpd.base.keys import Keypair, network_id, sign_statement
from scpd.base.quorum import quorum_set_hash
from scpd.base.types import NodeID, SCPNomination, SCPQuorumSet, SCPStatement
from scpd.node.overlay import Overlay, OverlayMessage, OverlaySettings, PeerAddress, Verdict
from scpd.node.overlay import peer as peer_module
from scpd.node.overlay.framing import encode_frame, read_frame
from scpd.node.overlay.handshake import Handshake, HandshakeError, perform_handshake
from scpd.node.overlay.session import Session
from scpd.nodecore.messages import (
    DontHave,
    ErrorCode,
    ErrorMessage,
    GetQuorumSet,
    GetScpState,
    GetTxSet,
    MessageType,
    Neighbors,
    QuorumSetMessage,
    ScpMessage,
    Transaction,
    TxSetMessage,
    decode_message,
    encode_message,
)
from scpd.operator.config_sections import OverlaySection

PASSPHRASE = "scpd overlay test network"
NET_ID = network_id(PASSPHRASE)
WAIT = 10.0

pytestmark = pytest.mark.timeout(60)


async def wait_until(condition: Callable[[], bool], timeout: float = WAIT, what: str = "condition") -> None:
    """Poll a condition on the event loop until it holds; fail the test after ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.005)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


@dataclass
class Recorder:
    """A consumer handler that records what it is given and answers with a fixed verdict."""

    verdict: Verdict = Verdict.ACCEPT
    received: list[tuple[NodeID, OverlayMessage]] = field(default_factory=list)
    reject_payload: bytes | None = None
    quorum_sets: dict[bytes, SCPQuorumSet] = field(default_factory=dict)
    overlay: Overlay | None = None  # set by the factory: answers go out through it

    def __call__(self, node: NodeID, message: OverlayMessage) -> Verdict:
        if isinstance(message, (GetScpState, Neighbors)):
            # Every new connection asks for the one and announces the other; these tests have no SCP state.
            return Verdict.IGNORE
        if isinstance(message, GetQuorumSet):
            qset = self.quorum_sets.get(message.item_hash)
            assert self.overlay is not None
            if qset is None:
                self.overlay.send(node, DontHave(MessageType.GET_SCP_QUORUMSET, message.item_hash))
            else:
                self.overlay.send(node, QuorumSetMessage(qset))
            return Verdict.IGNORE
        self.received.append((node, message))
        if isinstance(message, Transaction) and self.reject_payload and message.payload.startswith(self.reject_payload):
            return Verdict.REJECT
        return self.verdict

    def messages(self) -> list[OverlayMessage]:
        return [m for _, m in self.received]


def fast_config(**overrides: Any) -> OverlaySettings:
    """The configuration's [overlay] defaults, with short timers, on 127.0.0.1, dialing only when told."""
    section = OverlaySection(
        listen_address="127.0.0.1",
        listen_port=0,
        target_outbound_peers=0,
        handshake_timeout=3.0,
        keepalive_interval=0.5,
        peer_timeout=10.0,
        reconnect_initial=0.05,
        reconnect_max=0.2,
    )
    base = OverlaySettings(
        **section.model_dump(exclude={"peers"}),
        peers=(),
        network_passphrase=PASSPHRASE,
        maintenance_interval=0.05,
        reconnect_jitter=0.0,
    )
    return replace(base, **overrides)


Factory = Callable[..., Awaitable[tuple[Overlay, Recorder]]]


@pytest.fixture
async def make_overlay() -> AsyncIterator[Factory]:
    overlays: list[Overlay] = []

    async def factory(
        handler: Recorder | None = None, keypair: Keypair | None = None, **overrides: Any
    ) -> tuple[Overlay, Recorder]:
        recorder = handler or Recorder()
        overlay = Overlay(keypair or Keypair.random(), fast_config(**overrides), recorder)
        if isinstance(recorder, Recorder):
            recorder.overlay = overlay
        overlays.append(overlay)
        await overlay.start()
        return overlay, recorder

    yield factory
    await asyncio.gather(*(o.stop() for o in overlays))
    current = asyncio.current_task()
    leftover = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert not leftover, f"tasks left running: {leftover}"


def address_of(overlay: Overlay) -> PeerAddress:
    return PeerAddress("127.0.0.1", overlay.listen_port)


async def connect_pair(a: Overlay, b: Overlay) -> None:
    """b dials a; wait until both see each other."""
    await b.connect(address_of(a))
    await wait_until(lambda: a.peer(b.node_id) is not None and b.peer(a.node_id) is not None, what="pair connected")


_counter = iter(range(1, 1 << 30))


def unique_tx() -> Transaction:
    return Transaction(b"tx-%d-" % next(_counter) + os.urandom(8))


async def assert_exchange(a: Overlay, a_rec: Recorder, b: Overlay, b_rec: Recorder) -> None:
    """Both directions of an a-b connection still deliver messages."""
    to_a, to_b = unique_tx(), unique_tx()
    assert b.broadcast(to_a) >= 1
    assert a.broadcast(to_b) >= 1
    await wait_until(lambda: (b.node_id, to_a) in a_rec.received, what="message b->a")
    await wait_until(lambda: (a.node_id, to_b) in b_rec.received, what="message a->b")


class RawPeer:
    """A hand-driven client: the real handshake, then arbitrary bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, keypair: Keypair) -> None:
        self.reader = reader
        self.writer = writer
        self.keypair = keypair
        self.session: Session | None = None

    @classmethod
    async def open(cls, port: int, keypair: Keypair | None = None, rcvbuf: int | None = None) -> RawPeer:
        if rcvbuf is None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
            reader, writer = await asyncio.open_connection(sock=sock)
        return cls(reader, writer, keypair or Keypair.random())

    @classmethod
    async def authenticated(cls, port: int, keypair: Keypair | None = None, rcvbuf: int | None = None) -> RawPeer:
        raw = await cls.open(port, keypair, rcvbuf)
        handshake = Handshake(raw.keypair, NET_ID, 0, initiator=True)
        result = await perform_handshake(raw.reader, raw.writer, handshake)
        raw.session = result.session
        return raw

    @property
    def node_id(self) -> NodeID:
        return self.keypair.public_key

    def sealed(self, message: OverlayMessage) -> bytes:
        assert self.session is not None
        return encode_frame(self.session.seal(message))

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def closed_by_remote(self) -> list[OverlayMessage]:
        """Read until the overlay hangs up (fails the test if it does not); returns what it said."""
        said: list[OverlayMessage] = []
        try:
            async with asyncio.timeout(WAIT):
                while True:
                    frame = await read_frame(self.reader)
                    if self.session is None:
                        said.append(decode_message(frame))
                    else:
                        said.append(self.session.open(frame)[0])
        except TimeoutError:
            pytest.fail("the overlay did not close the connection")
        except Exception:
            return said

    async def close(self) -> None:
        self.writer.transport.abort()


@pytest.fixture
async def raw_peers() -> AsyncIterator[list[RawPeer]]:
    peers: list[RawPeer] = []
    yield peers
    for p in peers:
        await p.close()


@pytest.fixture
async def served(make_overlay: Factory) -> tuple[Overlay, Recorder, Overlay, Recorder]:
    """A node under test and a healthy peer already connected to it."""
    a, a_rec = await make_overlay()
    b, b_rec = await make_overlay()
    await connect_pair(a, b)
    return a, a_rec, b, b_rec


# ----- handshake -------------------------------------------------------------


async def test_handshake_then_messages_flow_both_ways(make_overlay: Factory) -> None:
    a, a_rec = await make_overlay()
    b, b_rec = await make_overlay()
    peer = await b.connect(address_of(a))
    assert peer.node_id == a.node_id and peer.outbound
    await wait_until(lambda: a.peer(b.node_id) is not None)
    inbound = a.peer(b.node_id)
    assert inbound is not None and not inbound.outbound
    keypair = b.keypair
    statement = SCPStatement(b.node_id, 7, SCPNomination(bytes(32), (b"v1",), ()))
    envelope = ScpMessage(sign_statement(keypair, NET_ID, statement))
    assert b.broadcast(envelope) == 1
    await wait_until(lambda: (b.node_id, envelope) in a_rec.received)
    await assert_exchange(a, a_rec, b, b_rec)
    assert a.stats.handshakes_ok == 1 and b.stats.handshakes_ok == 1


async def test_wrong_passphrase_is_refused_at_hello(served: Any, raw_peers: list[RawPeer]) -> None:
    a, a_rec, b, b_rec = served
    raw = await RawPeer.open(a.listen_port)
    raw_peers.append(raw)
    handshake = Handshake(raw.keypair, network_id("some other network"), 0, initiator=True)
    with pytest.raises(HandshakeError) as info:
        await perform_handshake(raw.reader, raw.writer, handshake)
    assert info.value.from_peer and info.value.code == ErrorCode.WRONG_NETWORK
    await raw.closed_by_remote()
    assert a.peer(raw.node_id) is None
    await assert_exchange(a, a_rec, b, b_rec)


async def test_overlay_on_another_network_cannot_connect(make_overlay: Factory) -> None:
    a, _ = await make_overlay()
    stranger, _ = await make_overlay(network_passphrase="another network")
    with pytest.raises(HandshakeError) as info:
        await stranger.connect(address_of(a))
    assert info.value.code == ErrorCode.WRONG_NETWORK
    assert a.peers == [] and stranger.peers == []


async def test_auth_signed_by_a_different_key_than_announced_is_dropped(served: Any, raw_peers: list[RawPeer]) -> None:
    a, a_rec, b, b_rec = served
    impostor, victim = Keypair.random(), Keypair.random()
    raw = await RawPeer.open(a.listen_port, impostor)
    raw_peers.append(raw)
    handshake = Handshake(impostor, NET_ID, 0, initiator=True)
    handshake.local_hello = replace(handshake.local_hello, node_id=victim.public_key)
    result = await perform_handshake(raw.reader, raw.writer, handshake)
    raw.session = result.session
    said = await raw.closed_by_remote()
    assert said == [
        ErrorMessage(ErrorCode.AUTH, f"AUTH signature does not match the announced key {victim.public_key}")
    ]
    assert a.peer(victim.public_key) is None and a.peer(impostor.public_key) is None
    assert a.stats.handshakes_failed == 1
    await assert_exchange(a, a_rec, b, b_rec)


async def test_connection_to_self_is_refused(make_overlay: Factory) -> None:
    a, _ = await make_overlay()
    with pytest.raises(HandshakeError) as info:
        await a.connect(address_of(a))
    assert info.value.code == ErrorCode.SELF
    assert a.peers == []


async def test_garbage_instead_of_hello_is_dropped(served: Any, raw_peers: list[RawPeer]) -> None:
    a, a_rec, b, b_rec = served
    raw = await RawPeer.open(a.listen_port)
    raw_peers.append(raw)
    await raw.write(encode_frame(os.urandom(200)))
    said = await raw.closed_by_remote()
    assert [m.code for m in said if isinstance(m, ErrorMessage)] == [ErrorCode.DATA]
    raw2 = await RawPeer.open(a.listen_port)
    raw_peers.append(raw2)
    await raw2.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # length prefix "GET " is far above the limit
    await raw2.closed_by_remote()
    assert a.stats.handshakes_failed == 2
    await assert_exchange(a, a_rec, b, b_rec)


async def test_garbage_after_handshake_is_dropped(served: Any, raw_peers: list[RawPeer]) -> None:
    a, a_rec, b, b_rec = served
    raw = await RawPeer.authenticated(a.listen_port)
    raw_peers.append(raw)
    await wait_until(lambda: a.peer(raw.node_id) is not None)
    await raw.write(encode_frame(os.urandom(300)))
    await raw.closed_by_remote()
    assert a.peer(raw.node_id) is None
    await assert_exchange(a, a_rec, b, b_rec)


async def test_handshake_that_never_finishes_times_out(make_overlay: Factory, raw_peers: list[RawPeer]) -> None:
    a, _ = await make_overlay(handshake_timeout=0.3)
    raw = await RawPeer.open(a.listen_port)
    raw_peers.append(raw)
    await raw.closed_by_remote()
    assert a.stats.handshakes_failed == 1


# ----- authenticated stream -------------------------------------------------


async def test_tampered_hmac_drops_the_connection(served: Any, raw_peers: list[RawPeer]) -> None:
    a, a_rec, b, b_rec = served
    raw = await RawPeer.authenticated(a.listen_port)
    raw_peers.append(raw)
    good = raw.sealed(unique_tx())
    tampered = good[:-1] + bytes([good[-1] ^ 1])
    await raw.write(tampered)
    await raw.closed_by_remote()
    assert a.peer(raw.node_id) is None
    assert not any(node == raw.node_id for node, _ in a_rec.received)
    assert not a.is_banned(raw.node_id)  # a stranger on the path must not get honest peers banned
    await assert_exchange(a, a_rec, b, b_rec)


async def test_tampered_message_body_drops_the_connection(served: Any, raw_peers: list[RawPeer]) -> None:
    a, a_rec, b, b_rec = served
    raw = await RawPeer.authenticated(a.listen_port)
    raw_peers.append(raw)
    good = bytearray(raw.sealed(Transaction(b"pay alice 10")))
    good[-40] ^= 0xFF  # inside the payload, before the MAC
    await raw.write(bytes(good))
    await raw.closed_by_remote()
    assert not any(node == raw.node_id for node, _ in a_rec.received)
    await assert_exchange(a, a_rec, b, b_rec)


async def test_replayed_message_drops_the_connection(served: Any, raw_peers: list[RawPeer]) -> None:
    a, a_rec, b, b_rec = served
    raw = await RawPeer.authenticated(a.listen_port)
    raw_peers.append(raw)
    tx = unique_tx()
    frame = raw.sealed(tx)
    await raw.write(frame)
    await wait_until(lambda: (raw.node_id, tx) in a_rec.received)
    await raw.write(frame)
    await raw.closed_by_remote()
    assert a_rec.received.count((raw.node_id, tx)) == 1
    assert a.peer(raw.node_id) is None
    await assert_exchange(a, a_rec, b, b_rec)


async def test_reordered_messages_drop_the_connection(served: Any, raw_peers: list[RawPeer]) -> None:
    a, a_rec, b, b_rec = served
    raw = await RawPeer.authenticated(a.listen_port)
    raw_peers.append(raw)
    first, second = unique_tx(), unique_tx()
    frame1, frame2 = raw.sealed(first), raw.sealed(second)
    await raw.write(frame2 + frame1)
    await raw.closed_by_remote()
    assert not any(node == raw.node_id for node, _ in a_rec.received)
    await assert_exchange(a, a_rec, b, b_rec)


async def test_oversized_frame_is_refused_before_its_body(make_overlay: Factory, raw_peers: list[RawPeer]) -> None:
    a, a_rec = await make_overlay(max_message_size=64 * 1024)
    b, b_rec = await make_overlay(max_message_size=64 * 1024)
    await connect_pair(a, b)
    raw = await RawPeer.authenticated(a.listen_port)
    raw_peers.append(raw)
    # Only the 4-byte length goes out: the overlay must hang up without waiting for 10 MB of body.
    await raw.write((10 * 1024 * 1024).to_bytes(4, "big"))
    await raw.closed_by_remote()
    assert a.peer(raw.node_id) is None
    pre = await RawPeer.open(a.listen_port)
    raw_peers.append(pre)
    await pre.write((64 * 1024 + 1).to_bytes(4, "big"))
    await pre.closed_by_remote()
    await assert_exchange(a, a_rec, b, b_rec)


async def test_own_message_too_large_to_send_is_not_sent_and_costs_the_peer_nothing(make_overlay: Factory) -> None:
    a, a_rec = await make_overlay(max_message_size=64 * 1024)
    b, b_rec = await make_overlay(max_message_size=64 * 1024)
    await connect_pair(a, b)
    assert a.broadcast(Transaction(bytes(64 * 1024))) == 0
    peer = a.peer(b.node_id)
    assert peer is not None and peer.misbehaviour == 0
    await assert_exchange(a, a_rec, b, b_rec)


async def test_peer_that_stops_reading_is_dropped_and_others_keep_up(
    make_overlay: Factory, raw_peers: list[RawPeer]
) -> None:
    a, a_rec = await make_overlay(send_queue_size=16, write_timeout=30.0)
    b, b_rec = await make_overlay()
    await connect_pair(a, b)
    sluggard = await RawPeer.authenticated(a.listen_port, rcvbuf=4096)
    raw_peers.append(sluggard)
    await wait_until(lambda: a.peer(sluggard.node_id) is not None)
    slow_peer = a.peer(sluggard.node_id)
    assert slow_peer is not None
    big = 60 * 1024
    sent = 0
    for i in range(2000):
        tx = Transaction(i.to_bytes(4, "big") + bytes(big))
        a.broadcast(tx)
        sent += 1
        await wait_until(lambda tx=tx: b_rec.received and b_rec.received[-1][1] == tx, what="healthy peer")  # type: ignore[misc]
        if a.peer(sluggard.node_id) is None:
            break
    assert a.peer(sluggard.node_id) is None, "the peer that stopped reading was never dropped"
    assert slow_peer.close_reason is not None and "send queue full" in slow_peer.close_reason
    assert sum(isinstance(m, Transaction) for m in b_rec.messages()) == sent
    await assert_exchange(a, a_rec, b, b_rec)


async def test_silent_connection_is_detected_as_dead(make_overlay: Factory, raw_peers: list[RawPeer]) -> None:
    # The idle timeout must outlast any stall of a loaded test machine, or b (which answers) goes too.
    a, a_rec = await make_overlay(keepalive_interval=0.2, peer_timeout=3.0)
    b, b_rec = await make_overlay(keepalive_interval=0.2, peer_timeout=3.0)
    await connect_pair(a, b)
    mute = await RawPeer.authenticated(a.listen_port)  # never answers PING
    raw_peers.append(mute)
    await wait_until(lambda: a.peer(mute.node_id) is not None)
    await wait_until(lambda: a.peer(mute.node_id) is None, what="dead connection dropped")
    assert a.peer(b.node_id) is not None  # b answers PINGs, so it stays
    await assert_exchange(a, a_rec, b, b_rec)


# ----- misbehaviour and bans ------------------------------------------------


async def test_repeated_malformed_messages_get_the_peer_banned(served: Any, raw_peers: list[RawPeer]) -> None:
    a, a_rec, b, b_rec = served
    raw = await RawPeer.authenticated(a.listen_port)
    raw_peers.append(raw)
    assert raw.session is not None
    for _ in range(3):
        await raw.write(encode_frame(raw.session.seal_encoded(b"\x00\x00\x00\x63junk")))  # unknown type 99
    ok = unique_tx()
    await raw.write(raw.sealed(ok))
    await wait_until(lambda: (raw.node_id, ok) in a_rec.received, what="peer still served below the threshold")
    assert not a.is_banned(raw.node_id)
    await raw.write(encode_frame(raw.session.seal_encoded(b"\x00\x00\x00\x63junk")))
    said = await raw.closed_by_remote()
    assert ErrorMessage(ErrorCode.BANNED, "banned for misbehaviour") in said
    assert a.is_banned(raw.node_id)
    again = await RawPeer.open(a.listen_port, raw.keypair)
    raw_peers.append(again)
    with pytest.raises(HandshakeError) as info:
        await perform_handshake(again.reader, again.writer, Handshake(again.keypair, NET_ID, 0, initiator=True))
    assert info.value.code == ErrorCode.BANNED
    await assert_exchange(a, a_rec, b, b_rec)


async def test_messages_the_consumer_rejects_get_the_sender_banned(make_overlay: Factory) -> None:
    a, a_rec = await make_overlay(handler=Recorder(reject_payload=b"forged"), ban_threshold=50)
    liar, _ = await make_overlay()
    honest, honest_rec = await make_overlay()
    await connect_pair(a, liar)
    await connect_pair(a, honest)
    liar.broadcast(Transaction(b"forged 1"))
    await wait_until(lambda: a.peer(liar.node_id) is not None and a.peer(liar.node_id).misbehaviour == 25)  # type: ignore[union-attr]
    assert not a.is_banned(liar.node_id)
    liar.broadcast(Transaction(b"forged 2"))
    await wait_until(lambda: a.is_banned(liar.node_id), what="liar banned")
    await wait_until(lambda: liar.peer(a.node_id) is None and a.peer(liar.node_id) is None)
    assert not any(isinstance(m, Transaction) and m.payload.startswith(b"forged") for m in honest_rec.messages())
    await assert_exchange(a, a_rec, honest, honest_rec)


# ----- connection management --------------------------------------------------


def free_port() -> int:
    # Not an ephemeral port: an outgoing connection could take it while the dialer backs off.
    return free_port_range(1)


async def test_dialer_backs_off_then_connects_when_the_port_comes_up(make_overlay: Factory) -> None:
    port = free_port()
    target = PeerAddress("127.0.0.1", port)
    b, _ = await make_overlay(peers=(target,))
    await wait_until(lambda: b.dial_failures(target) >= 3, what="failed dials")
    assert b.peers == []
    a, _ = await make_overlay(listen_port=port)
    await wait_until(lambda: b.peer(a.node_id) is not None, what="dial after the port came up")
    assert b.dial_failures(target) == 0


async def test_max_inbound_is_enforced(make_overlay: Factory) -> None:
    a, _ = await make_overlay(max_inbound_peers=1)
    b, _ = await make_overlay()
    c, _ = await make_overlay()
    await connect_pair(a, b)
    with pytest.raises(HandshakeError) as info:
        await c.connect(address_of(a))
    assert info.value.code == ErrorCode.LOAD
    assert {p.node_id for p in a.peers} == {b.node_id}


async def test_peer_addresses_are_learned_and_dialed_up_to_the_target(make_overlay: Factory) -> None:
    hub, _ = await make_overlay()
    b, _ = await make_overlay(peers=(address_of(hub),))
    await wait_until(lambda: hub.peer(b.node_id) is not None)
    c, _ = await make_overlay(peers=(address_of(hub),), target_outbound_peers=2)
    await wait_until(lambda: c.peer(b.node_id) is not None, what="c dials the address it learned from hub")
    assert address_of(b) in c.known_addresses


async def test_crossing_dials_settle_on_one_connection(make_overlay: Factory) -> None:
    a, a_rec = await make_overlay()
    b, b_rec = await make_overlay()
    a.add_address(address_of(b), preferred=True)
    b.add_address(address_of(a), preferred=True)
    a_dials = a.node_id < b.node_id

    def settled() -> bool:
        # Both ends keep the connection dialed by the smaller node id (the other may win briefly first).
        pa, pb = a.peer(b.node_id), b.peer(a.node_id)
        return pa is not None and pb is not None and pa.outbound == a_dials and pb.outbound != a_dials

    await wait_until(settled, what="one connection kept")
    await assert_exchange(a, a_rec, b, b_rec)
    assert settled() and len(a.peers) == len(b.peers) == 1


async def test_stop_closes_peers_with_an_error_message(make_overlay: Factory, raw_peers: list[RawPeer]) -> None:
    a, _ = await make_overlay()
    raw = await RawPeer.authenticated(a.listen_port)
    raw_peers.append(raw)
    await wait_until(lambda: a.peer(raw.node_id) is not None)
    await a.stop()
    said = await raw.closed_by_remote()
    assert ErrorMessage(ErrorCode.MISC, "shutting down") in said


# ----- fetching by hash ------------------------------------------------------


def small_qset(*nodes: Keypair) -> SCPQuorumSet:
    return SCPQuorumSet(len(nodes), tuple(k.public_key for k in nodes))


async def test_quorum_set_is_fetched_from_the_peer_that_has_it(make_overlay: Factory) -> None:
    qset = small_qset(Keypair.random(), Keypair.random())
    a, _ = await make_overlay()
    # A validator of b's quorum set: its requests are answered from a budget that refills with time.
    b, _ = await make_overlay(
        handler=Recorder(quorum_sets={quorum_set_hash(qset): qset}), preferred_nodes=frozenset({a.node_id})
    )
    await connect_pair(a, b)
    peer = a.peer(b.node_id)
    assert peer is not None
    got = await asyncio.gather(*(a.fetch_quorum_set(quorum_set_hash(qset), b.node_id, WAIT) for _ in range(3)))
    assert got == [qset, qset, qset]
    async with asyncio.timeout(WAIT):  # DONT_HAVE ends the wait long before the fetch's own timeout
        assert await a.fetch_quorum_set(bytes(32), b.node_id, 3600.0) is None


async def test_tx_set_is_fetched_and_a_lying_answer_is_held_against_the_peer(make_overlay: Factory) -> None:
    payload = b"an opaque transaction set"
    good_hash = hashlib.sha256(payload).digest()
    lie_hash = hashlib.sha256(b"something else").digest()

    def holder(node: NodeID, message: OverlayMessage) -> Verdict:
        if isinstance(message, GetTxSet):
            b.send(node, TxSetMessage(message.item_hash, payload))  # right for good_hash, a lie for lie_hash
        return Verdict.IGNORE

    def matches(h: bytes) -> Callable[[bytes], bool]:
        return lambda p: hashlib.sha256(p).digest() == h

    a, _ = await make_overlay()
    b, _ = await make_overlay(handler=holder, preferred_nodes=frozenset({a.node_id}))  # type: ignore[arg-type]
    await connect_pair(a, b)
    peer = a.peer(b.node_id)
    assert peer is not None
    assert await a.fetch_tx_set(good_hash, b.node_id, WAIT, matches(good_hash)) == payload
    assert peer.misbehaviour == 0
    async with asyncio.timeout(WAIT):  # the lie ends the wait at once instead of at the fetch's timeout
        assert await a.fetch_tx_set(lie_hash, b.node_id, 3600.0, matches(lie_hash)) is None
    assert peer.misbehaviour == 25


async def test_envelope_waits_for_its_quorum_set_then_floods_on(make_overlay: Factory) -> None:
    """The herder pattern: hold an envelope, fetch its quorum set from the sender, then relay it."""
    origin_key = Keypair.random()
    qset = small_qset(origin_key)
    qhash = quorum_set_hash(qset)
    middle_key = Keypair.random()
    origin, _ = await make_overlay(
        keypair=origin_key,
        handler=Recorder(quorum_sets={qhash: qset}),
        preferred_nodes=frozenset({middle_key.public_key}),  # middle is in origin's quorum set
    )
    tasks: list[asyncio.Task[None]] = []
    known: dict[bytes, SCPQuorumSet] = {}

    def herder(node: NodeID, message: OverlayMessage) -> Verdict:
        if isinstance(message, ScpMessage) and message.envelope.statement.pledges.quorum_set_hash not in known:

            async def complete() -> None:
                fetched = await middle.fetch_quorum_set(qhash, node, WAIT)
                if fetched is not None:
                    known[qhash] = fetched
                    middle.relay(message, origin=node)

            tasks.append(asyncio.create_task(complete()))
            return Verdict.IGNORE
        return Verdict.ACCEPT

    middle, _ = await make_overlay(handler=herder, keypair=middle_key)  # type: ignore[arg-type]
    far, far_rec = await make_overlay()
    await connect_pair(middle, origin)
    await connect_pair(far, middle)
    statement = SCPStatement(origin.node_id, 1, SCPNomination(qhash, (b"x",), ()))
    envelope = ScpMessage(sign_statement(origin_key, NET_ID, statement))
    origin.broadcast(envelope)
    await wait_until(lambda: (middle.node_id, envelope) in far_rec.received, what="relay after the fetch")
    assert known == {qhash: qset}
    await asyncio.gather(*tasks)


# ----- flooding ---------------------------------------------------------------


async def build_chain(make_overlay: Factory, n: int, ring: bool) -> tuple[list[Overlay], list[Recorder]]:
    nodes = [await make_overlay() for _ in range(n)]
    overlays = [o for o, _ in nodes]
    links = [(i, i + 1) for i in range(n - 1)] + ([(n - 1, 0)] if ring else [])
    for i, j in links:
        overlays[i].add_address(address_of(overlays[j]), preferred=True)
    degree = [sum(1 for link in links if k in link) for k in range(n)]
    await wait_until(lambda: all(len(o.peers) == d for o, d in zip(overlays, degree, strict=True)), what="chain up")
    return overlays, [r for _, r in nodes]


def quiescent(overlays: list[Overlay]) -> bool:
    """Every flooded message enqueued anywhere has been read and handled by its receiver."""
    sent = sum(o.stats.flood_sent for o in overlays)
    return sent == sum(o.stats.flood_received for o in overlays) and all(
        p.queued == 0 for o in overlays for p in o.peers
    )


@pytest.mark.parametrize("ring", [False, True], ids=["line", "ring"])
async def test_flooding_reaches_every_node_exactly_once(make_overlay: Factory, ring: bool) -> None:
    overlays, recorders = await build_chain(make_overlay, 7, ring)
    assert overlays[0].peer(overlays[3].node_id) is None  # not everyone is directly connected
    assert overlays[0].peer(overlays[6].node_id) is None if not ring else overlays[0].peer(overlays[6].node_id)
    originals: dict[NodeID, list[OverlayMessage]] = {}
    for o in overlays:
        statement = SCPStatement(o.node_id, 42, SCPNomination(bytes(32), (o.node_id.ed25519,), ()))
        own = [ScpMessage(sign_statement(o.keypair, NET_ID, statement)), unique_tx()]
        originals[o.node_id] = own
        for m in own:
            assert o.broadcast(m) == len(o.peers)
    everything = [m for ms in originals.values() for m in ms]
    for o, rec in zip(overlays, recorders, strict=True):
        expected = Counter(m for m in everything if m not in originals[o.node_id])
        await wait_until(lambda rec=rec, expected=expected: Counter(rec.messages()) >= expected, what="flood")  # type: ignore[misc]
    await wait_until(lambda: quiescent(overlays), what="flooding settled")
    for o, rec in zip(overlays, recorders, strict=True):
        expected = Counter(m for m in everything if m not in originals[o.node_id])
        assert Counter(rec.messages()) == expected  # each message exactly once, never our own back
    assert sum(o.stats.flood_duplicates for o in overlays) > 0 or not ring
    # A second broadcast of the same message goes nowhere: every peer already has it.
    assert overlays[0].broadcast(originals[overlays[0].node_id][0]) == 0


def random_links(n: int, seed: int, low: int = 4, high: int = 8) -> list[tuple[int, int]]:
    """A connected graph (a ring plus random chords) where every degree is within low..high."""
    rng = random.Random(seed)
    links = {(i, (i + 1) % n) for i in range(n)}
    degree = [2] * n
    for i in rng.sample(range(n), n):
        want = rng.randint(low, high)
        others = [j for j in rng.sample(range(n), n) if j != i and (i, j) not in links and (j, i) not in links]
        for j in others:
            if degree[i] >= want:
                break
            if degree[j] < high:
                links.add((i, j))
                degree[i] += 1
                degree[j] += 1
    assert all(low <= d <= high for d in degree), degree
    return sorted(links)


async def build_graph(
    make_overlay: Factory, n: int, links: list[tuple[int, int]]
) -> tuple[list[Overlay], list[Recorder]]:
    """Overlays connected along ``links``, once each has heard whom its peers are connected to."""
    nodes = [await make_overlay() for _ in range(n)]
    overlays = [o for o, _ in nodes]
    for i, j in links:
        overlays[i].add_address(address_of(overlays[j]), preferred=True)
    adjacent: list[set[NodeID]] = [set() for _ in range(n)]
    for i, j in links:
        adjacent[i].add(overlays[j].node_id)
        adjacent[j].add(overlays[i].node_id)
    ids = {o.node_id: k for k, o in enumerate(overlays)}

    def settled() -> bool:
        return all(
            {p.node_id for p in o.peers} == adjacent[k]
            and all(o.neighbors_of(p) == adjacent[ids[p]] for p in adjacent[k])
            for k, o in enumerate(overlays)
        )

    await wait_until(settled, timeout=30, what="graph up and neighbours announced")
    return overlays, [r for _, r in nodes]


def own_envelope(o: Overlay) -> ScpMessage:
    statement = SCPStatement(o.node_id, 42, SCPNomination(bytes(32), (o.node_id.ed25519,), ()))
    return ScpMessage(sign_statement(o.keypair, NET_ID, statement))


TOPOLOGIES = {
    "line": [(i, i + 1) for i in range(24)],
    "ring": [(i, (i + 1) % 25) for i in range(25)],
    "random-4-8-seed1": random_links(25, 1),
    "random-4-8-seed2": random_links(25, 2),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", list(TOPOLOGIES))
async def test_relay_hints_still_reach_every_node_of_a_sparse_graph(make_overlay: Factory, name: str) -> None:
    overlays, recorders = await build_graph(make_overlay, 25, TOPOLOGIES[name])
    envelopes = {o.node_id: own_envelope(o) for o in overlays}
    for o in overlays:
        assert o.broadcast(envelopes[o.node_id]) == len(o.peers)
    await wait_until(lambda: quiescent(overlays), timeout=30, what="flooding settled")
    for o, rec in zip(overlays, recorders, strict=True):
        expected = Counter(m for node, m in envelopes.items() if node != o.node_id)
        assert Counter(rec.messages()) == expected  # every other node's envelope, once each


@pytest.mark.timeout(120)
async def test_on_a_full_mesh_envelopes_are_not_relayed_at_all(make_overlay: Factory) -> None:
    n = 8
    overlays, recorders = await build_graph(make_overlay, n, [(i, j) for i in range(n) for j in range(i + 1, n)])
    for o in overlays:
        assert o.broadcast(own_envelope(o)) == n - 1
    for rec in recorders:
        await wait_until(lambda rec=rec: len(rec.messages()) == n - 1, what="every envelope")  # type: ignore[misc]
    await wait_until(lambda: quiescent(overlays), what="flooding settled")
    assert sum(o.stats.flood_duplicates for o in overlays) == 0
    assert sum(o.stats.flood_sent for o in overlays) == n * (n - 1)  # the signers' own sends, no relays
    # A transaction has no signer to hear it from: it is still relayed (and met again as duplicates).
    assert overlays[0].broadcast(unique_tx()) == n - 1
    await wait_until(lambda: all(isinstance(r.messages()[-1], Transaction) for r in recorders[1:]), what="tx")
    await wait_until(lambda: quiescent(overlays), what="flooding settled")
    assert sum(o.stats.flood_duplicates for o in overlays) > 0


async def next_envelope(raw: RawPeer) -> ScpMessage:
    """Read what the overlay sends ``raw`` (keep-alives, NEIGHBORS, PEERS) until an SCP envelope."""
    assert raw.session is not None
    async with asyncio.timeout(WAIT):
        while True:
            message = raw.session.open(await read_frame(raw.reader))[0]
            if isinstance(message, ScpMessage):
                return message


async def test_a_peer_that_says_it_is_connected_to_the_signer_is_not_relayed_its_envelopes(
    served: Any, raw_peers: list[RawPeer]
) -> None:
    a, _, b, _ = served
    claims, silent = await RawPeer.authenticated(a.listen_port), await RawPeer.authenticated(a.listen_port)
    raw_peers.extend([claims, silent])
    await wait_until(lambda: a.peer(claims.node_id) is not None and a.peer(silent.node_id) is not None)
    # The claim is about the claimer alone: it cannot keep the signer's envelopes from anybody else.
    await claims.write(claims.sealed(Neighbors((b.node_id, silent.node_id))))
    await wait_until(lambda: a.neighbors_of(claims.node_id) == {b.node_id, silent.node_id}, what="claim heard")
    envelope = own_envelope(b)
    assert b.broadcast(envelope) == 1
    assert await next_envelope(silent) == envelope
    assert a.stats.flood_sent == 1  # to the silent peer only: not back to b, not to the claimer
    # Once the claimer says it lost the signer, it is relayed the signer's envelopes again.
    await claims.write(claims.sealed(Neighbors(())))
    await wait_until(lambda: a.neighbors_of(claims.node_id) == frozenset(), what="new claim heard")
    later = ScpMessage(
        sign_statement(b.keypair, NET_ID, SCPStatement(b.node_id, 43, SCPNomination(bytes(32), (b"v",), ())))
    )
    assert b.broadcast(later) == 1
    assert await next_envelope(claims) == later
    # Our own envelopes go to every peer, whatever they claim about us.
    await claims.write(claims.sealed(Neighbors((a.node_id,))))
    await wait_until(lambda: a.neighbors_of(claims.node_id) == {a.node_id}, what="claim about a")
    mine = own_envelope(a)
    assert a.broadcast(mine) == 3
    assert await next_envelope(claims) == mine


async def test_rebroadcast_with_force_resends(make_overlay: Factory) -> None:
    a, _ = await make_overlay()
    b, b_rec = await make_overlay()
    await connect_pair(a, b)
    tx = unique_tx()
    assert a.broadcast(tx) == 1
    assert a.broadcast(tx, force=True) == 1
    await wait_until(lambda: b.stats.flood_received == 2)
    assert b_rec.messages().count(tx) == 1  # the duplicate is recognised by hash
    assert b.stats.flood_duplicates == 1


async def test_a_known_flooded_copy_is_dropped_before_it_is_decoded(
    make_overlay: Factory, raw_peers: list[RawPeer], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, a_rec = await make_overlay()  # alone: nobody else decodes what it relays
    decoded: list[bytes] = []
    real_decode = decode_message

    def counting_decode(data: bytes) -> OverlayMessage:
        decoded.append(bytes(data))
        return real_decode(data)

    monkeypatch.setattr(peer_module, "decode_message", counting_decode)
    raw = await RawPeer.authenticated(a.listen_port)
    raw_peers.append(raw)
    tx, after = unique_tx(), unique_tx()
    await raw.write(raw.sealed(tx) + raw.sealed(tx) + raw.sealed(tx) + raw.sealed(after))
    await wait_until(lambda: (raw.node_id, after) in a_rec.received, what="the message after the copies")
    assert a_rec.messages().count(tx) == 1
    assert a.stats.flood_duplicates == 2
    assert decoded.count(encode_message(tx)) == 1  # the two copies cost a MAC check and a hash, no decode
    peer = a.peer(raw.node_id)
    assert peer is not None and peer.messages_received == 4  # every copy was authenticated in sequence


async def test_a_message_the_consumer_ignored_is_delivered_again_when_resent(make_overlay: Factory) -> None:
    a, _ = await make_overlay()
    b, b_rec = await make_overlay()
    b_rec.verdict = Verdict.IGNORE  # e.g. an envelope too far ahead of the slot b is on
    await connect_pair(a, b)
    tx = unique_tx()
    assert a.broadcast(tx) == 1
    await wait_until(lambda: b_rec.messages().count(tx) == 1)
    b_rec.verdict = Verdict.ACCEPT
    assert a.broadcast(tx, force=True) == 1  # asked for again later (GET_SCP_STATE answers are resends)
    await wait_until(lambda: b_rec.messages().count(tx) == 2, what="the resent message")
    assert a.broadcast(tx, force=True) == 1
    await wait_until(lambda: b.stats.flood_duplicates == 1, what="the duplicate of an accepted message")
    assert b_rec.messages().count(tx) == 2


# ----- resource limits (docs/security.md) -------------------------------------------


async def test_silent_connections_fill_only_the_pending_pool_and_the_oldest_makes_room(
    make_overlay: Factory, raw_peers: list[RawPeer]
) -> None:
    a, _ = await make_overlay(max_pending_handshakes=4, max_inbound_peers=2, handshake_timeout=30.0)
    silent = [await RawPeer.open(a.listen_port) for _ in range(10)]
    raw_peers.extend(silent)
    await wait_until(lambda: a.stats.handshakes_evicted >= 6, what="oldest handshakes evicted")
    honest = await RawPeer.authenticated(a.listen_port)  # not kept out by the silent ones
    raw_peers.append(honest)
    await wait_until(lambda: a.peer(honest.node_id) is not None, what="honest peer admitted")
    assert a.stats.handshakes_evicted >= 7


async def test_a_preferred_node_evicts_a_stranger_from_a_full_inbound_pool(make_overlay: Factory) -> None:
    validator = Keypair.random()
    a, _ = await make_overlay(max_inbound_peers=2, preferred_nodes=frozenset({validator.public_key}))
    strangers = [(await make_overlay())[0] for _ in range(3)]
    await connect_pair(a, strangers[0])
    await connect_pair(a, strangers[1])
    with pytest.raises(HandshakeError) as info:
        await strangers[2].connect(address_of(a))
    assert info.value.code == ErrorCode.LOAD and a.stats.inbound_refused == 1
    v, _ = await make_overlay(keypair=validator)
    await v.connect(address_of(a))
    await wait_until(lambda: a.peer(validator.public_key) is not None, what="validator admitted")
    await wait_until(lambda: len([p for p in a.peers if not p.outbound]) == 2, what="one stranger evicted")
    assert a.stats.peers_evicted == 1


async def test_a_peer_that_does_not_read_is_dropped_at_the_byte_limit_of_its_queue(
    make_overlay: Factory, raw_peers: list[RawPeer]
) -> None:
    a, _ = await make_overlay(send_queue_bytes=512 * 1024, write_timeout=30.0)
    sluggard = await RawPeer.authenticated(a.listen_port, rcvbuf=4096)
    raw_peers.append(sluggard)
    await wait_until(lambda: a.peer(sluggard.node_id) is not None)
    slow = a.peer(sluggard.node_id)
    assert slow is not None
    for i in range(100):  # 6 MB if nothing stopped it; the queue count (1000 messages) is never reached
        a.broadcast(Transaction(i.to_bytes(4, "big") + bytes(60 * 1024)))
        if slow.closed:
            break
    assert slow.close_reason is not None and "send queue full" in slow.close_reason
    assert slow.queued < 20


def big_qset(n: int = 200) -> SCPQuorumSet:
    return SCPQuorumSet(1, tuple(Keypair.random().public_key for _ in range(n)))


async def test_a_stranger_gets_no_answer_larger_than_what_it_sent(
    make_overlay: Factory, raw_peers: list[RawPeer]
) -> None:
    qset = big_qset()  # 7 KB
    h = quorum_set_hash(qset)
    a, _ = await make_overlay(handler=Recorder(quorum_sets={h: qset}))
    raw = await RawPeer.authenticated(a.listen_port)
    raw_peers.append(raw)
    await wait_until(lambda: a.peer(raw.node_id) is not None)
    sent = 0
    for _ in range(50):  # 50 requests of 84 bytes: 4 KB in, not enough for one 7 KB answer
        frame = raw.sealed(GetQuorumSet(h))
        await raw.write(frame)
        sent += len(frame)
    await wait_until(lambda: a.stats.answers_refused + a.stats.requests_throttled == 50, what="50 requests handled")
    assert a.stats.answer_bytes == 0
    padding = raw.sealed(Transaction(os.urandom(8000)))  # now it has sent enough for one answer
    await raw.write(padding)
    await raw.write(raw.sealed(GetQuorumSet(h)))
    await wait_until(lambda: a.stats.answer_bytes > 0, what="one answer, paid for")
    assert a.stats.answer_bytes <= sent + len(padding) + 100


async def test_a_preferred_node_is_answered_from_a_budget_that_refills_with_time(make_overlay: Factory) -> None:
    qset = big_qset()
    h = quorum_set_hash(qset)
    validator = Keypair.random()
    a, _ = await make_overlay(
        handler=Recorder(quorum_sets={h: qset}),
        preferred_nodes=frozenset({validator.public_key}),
        answer_burst=8 * 1024,
        answer_rate=8 * 1024,
    )
    v, _ = await make_overlay(keypair=validator)
    await connect_pair(a, v)
    peer = v.peer(a.node_id)
    assert peer is not None
    assert await v.fetch_quorum_set(h, a.node_id, WAIT) == qset
    # The burst is spent: the next answer comes as the budget refills (8 KB/s), with
    # DONT_HAVE (so the asker may try another peer at once) until then.
    refusals = 0
    async with asyncio.timeout(WAIT):
        while await v.fetch_quorum_set(h, a.node_id, WAIT) is None:
            refusals += 1
            await asyncio.sleep(0.05)
    assert refusals >= 1 and a.stats.answers_refused + a.stats.requests_throttled == refusals


async def test_unrequested_tx_sets_and_quorum_sets_never_reach_the_consumer(
    served: Any, raw_peers: list[RawPeer]
) -> None:
    a, a_rec, _, _ = served
    raw = await RawPeer.authenticated(a.listen_port)
    raw_peers.append(raw)
    await raw.write(raw.sealed(TxSetMessage(bytes(32), b"a big set nobody asked for")))
    await raw.write(raw.sealed(QuorumSetMessage(big_qset(3))))
    ok = unique_tx()
    await raw.write(raw.sealed(ok))
    await wait_until(lambda: (raw.node_id, ok) in a_rec.received, what="later message handled")
    assert a.stats.unrequested_answers == 2
    assert not any(isinstance(m, (TxSetMessage, QuorumSetMessage)) for m in a_rec.messages())
    assert a.peer(raw.node_id) is not None  # a late answer is not misbehaviour


async def test_after_a_ban_its_host_brings_fresh_keys_one_per_interval(
    make_overlay: Factory, raw_peers: list[RawPeer]
) -> None:
    validator = Keypair.random()
    a, _ = await make_overlay(new_key_interval=3600.0, preferred_nodes=frozenset({validator.public_key}))
    raw = await RawPeer.authenticated(a.listen_port)
    raw_peers.append(raw)
    await wait_until(lambda: a.peer(raw.node_id) is not None)
    a.ban(raw.node_id)
    fresh = await RawPeer.open(a.listen_port)
    raw_peers.append(fresh)
    with pytest.raises(HandshakeError) as info:
        await perform_handshake(fresh.reader, fresh.writer, Handshake(fresh.keypair, NET_ID, 0, initiator=True))
    assert info.value.code == ErrorCode.BANNED and a.stats.new_keys_refused == 1
    # A validator of our quorum set on the same host is not affected.
    v, _ = await make_overlay(keypair=validator)
    await v.connect(address_of(a))
    await wait_until(lambda: a.peer(validator.public_key) is not None, what="validator admitted")
