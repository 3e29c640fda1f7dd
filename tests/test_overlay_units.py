"""The overlay's pieces without sockets: messages, frames, sessions, handshake maths, policies."""

from __future__ import annotations

import asyncio
import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scpd.base.keys import Keypair, network_id, sign_statement
from scpd.base.types import PublicKey, SCPNomination, SCPQuorumSet, SCPStatement
from scpd.errors import OverlayError, XdrError
from scpd.node.overlay.backoff import Backoff
from scpd.node.overlay.bans import BanList
from scpd.node.overlay.floodgate import Floodgate
from scpd.node.overlay.framing import Deframer, FrameError, encode_frame, read_frame
from scpd.node.overlay.handshake import (
    Handshake,
    HandshakeError,
    auth_transcript,
    hkdf_sha256,
)
from scpd.node.overlay.requests import PendingRequests, TooManyRequests
from scpd.node.overlay.session import AuthenticationError, Session
from scpd.nodecore.messages import (
    MAX_PEER_ADDRESSES,
    Auth,
    DontHave,
    ErrorCode,
    ErrorMessage,
    GetQuorumSet,
    GetScpState,
    GetTxSet,
    Hello,
    MessageType,
    Neighbors,
    OverlayMessage,
    PeerAddress,
    Peers,
    Ping,
    Pong,
    QuorumSetMessage,
    ScpMessage,
    Transaction,
    TransactionBatch,
    TxSetMessage,
    decode_message,
    encode_message,
    register_message,
)

NET = network_id("unit test network")
KEY = Keypair(bytes(range(32)))
NODE = KEY.public_key


def sample_messages() -> list[OverlayMessage]:
    statement = SCPStatement(NODE, 9, SCPNomination(bytes(32), (b"a", b"bc"), (b"a",)))
    return [
        ErrorMessage(ErrorCode.WRONG_NETWORK, "other network"),
        Hello(1, NET, NODE, bytes(range(32, 64)), bytes(range(64, 96)), 11625),
        Auth(bytes(64)),
        DontHave(MessageType.GET_SCP_QUORUMSET, bytes(32)),
        Peers((PeerAddress("127.0.0.1", 1), PeerAddress("validator.example.org", 11625), PeerAddress("::1", 9))),
        Neighbors((NODE, Keypair(bytes(32)).public_key)),
        GetTxSet(b"\x01" * 32),
        TxSetMessage(b"\x02" * 32, b"opaque tx set"),
        Transaction(b"a transaction"),
        TransactionBatch((b"one", b"two!", b"\x00" * 5)),
        GetQuorumSet(b"\x03" * 32),
        QuorumSetMessage(SCPQuorumSet(1, (NODE,), (SCPQuorumSet(1, (NODE,)),))),
        ScpMessage(sign_statement(KEY, NET, statement)),
        GetScpState(2**64 - 1),
        Ping(7),
        Pong(2**64 - 1),
    ]


@pytest.mark.parametrize("message", sample_messages(), ids=lambda m: type(m).__name__)
def test_every_message_round_trips(message: OverlayMessage) -> None:
    encoded = encode_message(message)
    assert struct.unpack(">i", encoded[:4])[0] == message.TYPE
    assert decode_message(encoded) == message


def test_every_message_type_has_a_sample() -> None:
    assert {m.TYPE for m in sample_messages()} == {int(t) for t in MessageType}


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (struct.pack(">i", 99), "unknown discriminant 99"),
        (encode_message(Ping(1)) + b"\x00\x00\x00\x00", "trailing bytes"),
        (encode_message(Ping(1))[:-1], "truncated"),
        (struct.pack(">iI", MessageType.PEERS, MAX_PEER_ADDRESSES + 1), "exceed maximum"),
        (struct.pack(">iI", MessageType.PEERS, 1000), "exceed maximum"),
        (struct.pack(">iI", MessageType.TRANSACTION, 2**31), "exceeds"),
        (struct.pack(">iI", MessageType.TRANSACTIONS, 2), "cannot fit"),
        (struct.pack(">iIII", MessageType.TRANSACTIONS, 2, 0, 8) + bytes(8), "empty transaction"),
        (struct.pack(">ii", MessageType.ERROR, 42), "unknown discriminant 42"),
        (struct.pack(">iiI", MessageType.DONT_HAVE, MessageType.PING, 0), "unknown discriminant"),
        (encode_message(Peers((PeerAddress("h", 1),)))[:-4] + struct.pack(">I", 70000), "not a TCP port"),
        (encode_message(Peers((PeerAddress("h", 1),)))[:-8] + b"\x00\x00\x00\x00" + struct.pack(">I", 1), "not a host"),
        (encode_message(Hello(1, NET, NODE, bytes(32), bytes(32), 0))[:-4] + struct.pack(">I", 65536), "TCP port"),
        (struct.pack(">iiI", MessageType.ERROR, 0, 2) + b"\xff\xfe\x00\x00", "UTF-8"),
    ],
)
def test_malformed_messages_are_refused(data: bytes, match: str) -> None:
    with pytest.raises(XdrError, match=match):
        decode_message(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_decode_or_raise_xdr_error(data: bytes) -> None:
    try:
        message = decode_message(data)
    except XdrError:
        return
    assert encode_message(message) == data


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sample_messages()), st.data())
def test_mutated_messages_decode_or_raise_xdr_error(message: OverlayMessage, data: st.DataObject) -> None:
    encoded = bytearray(encode_message(message))
    index = data.draw(st.integers(0, len(encoded) - 1))
    encoded[index] = data.draw(st.integers(0, 255))
    with contextlib.suppress(XdrError):
        decode_message(bytes(encoded))


def test_registering_a_taken_type_is_refused() -> None:
    class Clash(Ping):
        pass

    with pytest.raises(ValueError, match="already"):
        register_message(Clash)


def test_long_error_text_is_cut_to_fit() -> None:
    decoded = decode_message(encode_message(ErrorMessage(ErrorCode.MISC, "x" * 1000)))
    assert isinstance(decoded, ErrorMessage) and decoded.text == "x" * 256


# ----- framing -------------------------------------------------------------------


def stream(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_frames_round_trip_back_to_back() -> None:
    reader = stream(encode_frame(b"one") + encode_frame(b"two" * 100))
    assert await read_frame(reader) == b"one"
    assert await read_frame(reader) == b"two" * 100
    with pytest.raises(FrameError, match="connection closed"):
        await read_frame(reader)


async def test_oversized_length_is_refused_without_the_body() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(struct.pack(">I", 1025))  # no body, no EOF: reading it would hang
    with pytest.raises(FrameError, match=r"outside 1\.\.1024"):
        await asyncio.wait_for(read_frame(reader, max_size=1024), 5)


@pytest.mark.parametrize("data", [struct.pack(">I", 0), struct.pack(">I", 10) + b"short", b"\x00\x00"])
async def test_empty_and_truncated_frames_are_refused(data: bytes) -> None:
    with pytest.raises(FrameError):
        await read_frame(stream(data))


def test_encode_frame_refuses_what_the_peer_would_refuse() -> None:
    with pytest.raises(FrameError):
        encode_frame(b"x" * 1025, max_size=1024)
    with pytest.raises(FrameError):
        encode_frame(b"")


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=8), st.lists(st.integers(1, 64), min_size=1))
def test_deframer_cuts_frames_out_of_any_chunking(bodies: list[bytes], cuts: list[int]) -> None:
    stream_bytes = b"".join(encode_frame(b) for b in bodies)
    deframer, got, at = Deframer(1024), [], 0
    while at < len(stream_bytes):
        step = cuts[len(got) % len(cuts)]
        got += deframer.feed(stream_bytes[at : at + step])
        at += step
    assert got == bodies
    assert deframer.buffered == 0
    assert str(deframer.end_of_stream()) == "connection closed"


def test_deframer_refuses_a_bad_length_before_keeping_its_body() -> None:
    deframer = Deframer(1024)
    assert deframer.feed(encode_frame(b"ok") + struct.pack(">I", 1025)[:2]) == [b"ok"]
    with pytest.raises(FrameError, match=r"outside 1\.\.1024"):
        deframer.feed(struct.pack(">I", 1025)[2:])  # the length alone is refused: no body is waited for
    with pytest.raises(FrameError, match=r"outside 1\.\.1024"):
        Deframer(1024).feed(struct.pack(">I", 0))


def test_deframer_says_where_the_stream_was_cut() -> None:
    deframer = Deframer(1024)
    deframer.feed(b"\x00\x00")
    assert str(deframer.end_of_stream()) == "connection closed inside a frame header"
    deframer.feed(b"\x00\x10abc")
    assert str(deframer.end_of_stream()) == "connection closed inside a 16-byte frame"


# ----- sessions -----------------------------------------------------------------


def session_pair() -> tuple[Session, Session]:
    k1, k2 = b"\x01" * 32, b"\x02" * 32
    return Session(k1, k2), Session(k2, k1)


def test_session_delivers_in_order_and_counts_per_direction() -> None:
    alice, bob = session_pair()
    for i in range(3):
        message = Transaction(b"%d" % i)
        assert bob.open(alice.seal(message))[0] == message
    assert bob.open(alice.seal(Ping(1)))[0] == Ping(1)
    assert alice.open(bob.seal(Pong(1)))[0] == Pong(1)
    assert (alice.next_send_sequence, bob.next_receive_sequence, bob.next_send_sequence) == (4, 4, 1)


def test_session_refuses_tampering_replay_and_reordering() -> None:
    alice, bob = session_pair()
    first, second = alice.seal(Ping(1)), alice.seal(Ping(2))
    with pytest.raises(AuthenticationError, match="out of order"):
        bob.open(second)
    bob.open(first)
    with pytest.raises(AuthenticationError, match="replayed"):
        bob.open(first)
    for i in range(len(second)):
        flipped = bytearray(second)
        flipped[i] ^= 0x80
        with pytest.raises(AuthenticationError, match="bad MAC"):
            bob.open(bytes(flipped))
    with pytest.raises(AuthenticationError, match="too short"):
        bob.open(second[:20])
    assert bob.open(second)[0] == Ping(2)


def test_a_message_sealed_for_the_other_direction_is_refused() -> None:
    alice, _bob = session_pair()
    with pytest.raises(AuthenticationError, match="bad MAC"):
        alice.open(alice.seal(Ping(1)))  # reflected back at its sender


def test_authenticate_checks_mac_and_sequence_without_decoding() -> None:
    alice, bob = session_pair()
    junk = b"\x00\x00\x00\x63 not a message"
    assert bob.authenticate(alice.seal_encoded(junk)) == junk  # authentic bytes, not decoded
    tampered = bytearray(alice.seal_encoded(junk))
    tampered[10] ^= 1
    with pytest.raises(AuthenticationError, match="bad MAC"):
        bob.authenticate(bytes(tampered))
    with pytest.raises(AuthenticationError, match="replayed"):
        bob.authenticate(Session(b"\x01" * 32, b"\x02" * 32).seal_encoded(junk))


def test_authentic_but_malformed_message_keeps_the_stream_in_step() -> None:
    alice, bob = session_pair()
    with pytest.raises(XdrError):
        bob.open(alice.seal_encoded(b"\x00\x00\x00\x63"))
    assert bob.open(alice.seal(Ping(5)))[0] == Ping(5)


# ----- handshake maths ------------------------------------------------------------


def test_hkdf_matches_rfc5869_test_case_1() -> None:
    okm = hkdf_sha256(bytes(range(13)), b"\x0b" * 22, bytes(range(0xF0, 0xFA)), 42)
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")


def exchange(initiator: Handshake, responder: Handshake) -> tuple[Session, Session]:
    responder.receive_hello(initiator.local_hello)
    initiator.receive_hello(responder.local_hello)
    return initiator.session(), responder.session()


def test_both_sides_derive_matching_direction_keys_and_verify_each_other() -> None:
    a, b = Keypair.random(), Keypair.random()
    ini, resp = Handshake(a, NET, 1, initiator=True), Handshake(b, NET, 2, initiator=False)
    s_ini, s_resp = exchange(ini, resp)
    assert s_resp.open(s_ini.seal(ini.auth_message()))[0] == ini.auth_message()
    resp.verify_auth(ini.auth_message())
    ini.verify_auth(resp.auth_message())
    assert s_ini.open(s_resp.seal(Ping(3)))[0] == Ping(3)
    other = Handshake(a, NET, 1, initiator=True)
    other_resp = Handshake(b, NET, 2, initiator=False)
    s_other, _ = exchange(other, other_resp)
    with pytest.raises(AuthenticationError):
        s_resp.open(s_other.seal(Ping(1)))  # fresh ephemerals and nonces: every session has new keys


def test_auth_signatures_do_not_transfer_between_roles_or_sessions() -> None:
    a, b = Keypair.random(), Keypair.random()
    ini, resp = Handshake(a, NET, 1, initiator=True), Handshake(b, NET, 2, initiator=False)
    exchange(ini, resp)
    with pytest.raises(HandshakeError, match="does not match"):
        ini.verify_auth(ini.auth_message())  # our own AUTH reflected back
    later_ini, later_resp = Handshake(a, NET, 1, initiator=True), Handshake(b, NET, 2, initiator=False)
    exchange(later_ini, later_resp)
    with pytest.raises(HandshakeError, match="does not match"):
        later_resp.verify_auth(ini.auth_message())  # replayed from an earlier session
    hello_i, hello_r = encode_message(ini.local_hello), encode_message(resp.local_hello)
    assert auth_transcript(hello_i, hello_r, True) != auth_transcript(hello_i, hello_r, False)


def test_hello_checks() -> None:
    a = Keypair.random()
    local = Handshake(a, NET, 1, initiator=False)
    good = Handshake(Keypair.random(), NET, 1, initiator=True).local_hello
    cases = [
        (Hello(good.version, network_id("x"), *_rest(good)), ErrorCode.WRONG_NETWORK),
        (Hello(2, good.network_id, *_rest(good)), ErrorCode.VERSION),
        (Hello(good.version, good.network_id, a.public_key, *_rest(good)[1:]), ErrorCode.SELF),
    ]
    for hello, code in cases:
        with pytest.raises(HandshakeError) as info:
            local.receive_hello(hello)
        assert info.value.code == code
    echoed = Hello(1, NET, good.node_id, good.ephemeral_key, local.local_hello.nonce, 0)
    with pytest.raises(HandshakeError, match="echoed"):
        local.receive_hello(echoed)


def _rest(hello: Hello) -> tuple[PublicKey, bytes, bytes, int]:
    return hello.node_id, hello.ephemeral_key, hello.nonce, hello.listening_port


def test_low_order_ephemeral_key_is_refused() -> None:
    ini, resp = Handshake(Keypair.random(), NET, 1, initiator=True), Handshake(Keypair.random(), NET, 2, False)
    resp.receive_hello(Hello(1, NET, ini.local_hello.node_id, bytes(32), ini.local_hello.nonce, 0))
    with pytest.raises(HandshakeError, match="low-order"):
        resp.session()


# ----- policies -----------------------------------------------------------------


def test_backoff_grows_exponentially_to_the_cap_with_injected_jitter() -> None:
    exact = Backoff(initial=1.0, maximum=10.0, factor=2.0, jitter=0.5, rand=lambda: 0.0)
    assert [exact.delay(n) for n in range(7)] == [0.0, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert exact.delay(10_000) == 10.0
    halved = Backoff(initial=1.0, maximum=10.0, factor=2.0, jitter=0.5, rand=lambda: 1.0)
    assert [halved.delay(n) for n in range(1, 5)] == [0.5, 1.0, 2.0, 4.0]
    with pytest.raises(ValueError):
        Backoff(initial=0)


def test_bans_expire_on_the_injected_clock() -> None:
    now = [100.0]
    bans = BanList(lambda: now[0])
    bans.ban(NODE, 10)
    bans.ban(PeerAddress("h", 1), 5)
    assert bans.is_banned(NODE) and bans.is_banned(PeerAddress("h", 1))
    now[0] = 106
    assert bans.is_banned(NODE) and not bans.is_banned(PeerAddress("h", 1))
    now[0] = 110
    assert not bans.is_banned(NODE)


def test_ban_list_stays_bounded() -> None:
    bans = BanList(lambda: 0.0, capacity=3)
    for i in range(10):
        bans.ban(i, 100 + i)
    assert sum(bans.is_banned(i) for i in range(10)) == 3
    assert bans.is_banned(9)


def test_floodgate_remembers_holders_and_forgets_the_oldest() -> None:
    gate = Floodgate(capacity=2)
    p1, p2, p3 = (PublicKey(bytes([i]) * 32) for i in range(3))
    assert gate.add(b"m1", p1) and not gate.add(b"m1", p2)
    assert gate.targets(b"m1", [p1, p2, p3]) == [p3]
    assert gate.targets(b"m1", [p1, p2, p3]) == []
    gate.add(b"m2")
    gate.add(b"m3")
    assert b"m1" not in gate and len(gate) == 2
    gate.forget_peer(p3)
    assert gate.targets(b"m3", [p3]) == [p3]


async def test_pending_requests_share_one_request_and_resolve_by_hash() -> None:
    table: PendingRequests[str] = PendingRequests(limit=1)
    sent: list[str] = []
    waiters = [asyncio.create_task(table.wait(b"h", NODE, lambda: sent.append("req") is None, 5.0)) for _ in range(3)]
    await asyncio.sleep(0)
    assert sent == ["req"]  # one request on the wire for three waiters
    with pytest.raises(TooManyRequests):
        await table.wait(b"other", NODE, lambda: True, 5.0)
    assert table.resolve(b"unknown", "x") is None
    assert table.resolve(b"h", "item") is True
    assert table.resolve(b"h", "again") is None
    assert await asyncio.gather(*waiters) == ["item"] * 3
    assert len(table) == 0


async def test_pending_requests_end_on_refusal_verification_or_timeout() -> None:
    table: PendingRequests[str] = PendingRequests()
    waiter = asyncio.create_task(table.wait(b"h", NODE, lambda: True, 60.0, verify=lambda s: s == "right"))
    await asyncio.sleep(0)
    assert table.resolve(b"h", "wrong") is False
    table.refuse(b"h", NODE)
    assert await waiter is None
    assert await table.wait(b"t", NODE, lambda: True, 0.01) is None
    assert await table.wait(b"gone", NODE, lambda: False, 60.0) is None  # request could not be sent
    assert len(table) == 0
    assert issubclass(TooManyRequests, OverlayError)
