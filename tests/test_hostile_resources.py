"""Hostile peers against real validators: what one stranger can make a node spend.

Each test starts a real 4-validator localnet (3 of 4), lets a peer with a
fresh key (in nobody's quorum set) complete the real handshake
(``tests/hostile.py``) and attack one node, and asserts a figure: the node's
peak RSS, the attacker's bytes in / bytes out, the disk, the HTTP clients'
refusals, the time a validator of our quorum set needs to reconnect. Every
test also checks that the honest validators kept closing ledgers during the
attack, with identical chains.

The attacks are plain functions returning their figures, so
``bench/bench_hostile_resources.py`` runs the very same code to print the
before/after table.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import sqlite3
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from hostile import HostilePeer, node_endpoint, process_rss
from netutil import Network, Node, wait_for

from scpd.base.keys import Keypair
from scpd.base.types import SCPQuorumSet
from scpd.node.overlay.framing import encode_frame
from scpd.node.overlay.handshake import HandshakeError
from scpd.nodecore.catchup import LEDGERS_TYPE, GetLedgers
from scpd.nodecore.messages import (
    GetQuorumSet,
    GetScpState,
    GetTxSet,
    MessageType,
    OverlayMessage,
    QuorumSetMessage,
    TransactionBatch,
    TxSetMessage,
)
from scpd.nodecore.values import TxSet

pytestmark = pytest.mark.timeout(240)

MIB = 1 << 20


@dataclass
class Figures:
    """What an attack cost the node, and what the honest validators did meanwhile."""

    rss_before: int = 0
    rss_peak: int = 0
    bytes_out: int = 0  # attacker to node
    bytes_in: int = 0  # node to attacker (answers only, where the attack is requests)
    ledgers_during: int = 0  # the fewest ledgers any honest validator closed during the attack
    extra: float = 0.0  # the attack's own figure (db bytes, refusals, seconds, keys admitted)

    @property
    def amplification(self) -> float:
        return self.bytes_in / max(1, self.bytes_out)

    @property
    def rss_growth_mib(self) -> float:
        return (self.rss_peak - self.rss_before) / MIB


class RssSampler:
    """Samples a process's RSS every 50 ms in a thread; ``peak`` is the largest seen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = process_rss(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.peak = max(self.peak, process_rss(self.pid))
            except (OSError, RuntimeError):
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, process_rss(self.pid))


def pid(node: Node) -> int:
    assert node.proc is not None
    return node.proc.pid


def tips(net: Network) -> list[int]:
    return [n.last_slot for n in net.nodes if n.running]


def ledgers_since(net: Network, before: list[int]) -> int:
    return min(now - then for now, then in zip(tips(net), before, strict=True))


def wait_more_ledgers(net: Network, before: list[int], count: int, timeout: float = 60.0) -> None:
    wait_for(lambda: ledgers_since(net, before) >= count, timeout, f"{count} more ledgers on every node")


def http(url: str, data: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    req.add_header("Content-Type", "application/octet-stream")
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Network]:
    with Network(tmp_path, 4) as network:
        network.wait_slot(2)
        yield network
        network.assert_agreement()


# ----- the attacks ------------------------------------------------------------


def big_tx_set(net: Network, count: int = 800, size: int = 1000) -> bytes:
    """Have the network close a ledger of ``count`` transactions of ``size`` bytes; its tx set hash."""
    node = net.nodes[0]
    body = b"\n".join(base64.b64encode(os.urandom(size)) for _ in range(count))
    status, _ = http(f"{node.http_url}/txs", body)
    assert status == 200

    def closed_big() -> bool:
        node.poll_log()
        return any(r.get("event") == "ledger closed" and int(r.get("txs", 0)) >= count // 2 for r in node.records)

    wait_for(closed_big, 60, "a ledger carrying the submitted transactions")
    slot = next(
        int(r["slot"]) for r in node.records if r.get("event") == "ledger closed" and int(r.get("txs", 0)) >= count // 2
    )
    status, answer = http(f"{node.http_url}/ledger/{slot}")
    assert status == 200
    return bytes.fromhex(json.loads(answer)["tx_set_hash"])


def get_tx_set_flood(net: Network, requests: int = 990) -> Figures:
    """A stranger asks for a big tx set ``requests`` times and never reads; then reads what came."""
    tx_set_hash = big_tx_set(net)
    target = net.nodes[0]
    before = tips(net)
    with HostilePeer.to_node(target, rcvbuf=4096) as peer, RssSampler(pid(target)) as rss:
        rss_before = rss.peak
        peer.send_many(GetTxSet(tx_set_hash) for _ in range(requests))
        wait_more_ledgers(net, before, 3)
        peer.read_for(1.0)
    answers = sum(peer.bytes_in_by_type[t] for t in (MessageType.TX_SET, MessageType.DONT_HAVE))
    return Figures(rss_before, rss.peak, peer.bytes_out, answers, ledgers_since(net, before))


def every_request_type(net: Network, requests: int = 2000) -> dict[str, float]:
    """A stranger sends ``requests`` of each request type and reads; answer bytes / request bytes, per type.

    SCP state is answered with SCP messages, which the node also relays to
    every peer meanwhile: that figure counts both, so it is an upper bound.
    """
    tx_set_hash = big_tx_set(net, count=200)
    qset_hash = bytes(32)  # an unknown one: the answer, if any, is DONT_HAVE
    asks: dict[str, tuple[OverlayMessage, tuple[int, ...]]] = {
        "GET_TX_SET": (GetTxSet(tx_set_hash), (MessageType.TX_SET, MessageType.DONT_HAVE)),
        "GET_SCP_QUORUMSET": (GetQuorumSet(qset_hash), (MessageType.SCP_QUORUMSET, MessageType.DONT_HAVE)),
        "GET_SCP_STATE": (GetScpState(0), (MessageType.SCP_MESSAGE,)),
        "GET_LEDGERS": (GetLedgers(0, 64), (LEDGERS_TYPE,)),
    }
    figures = {}
    for name, (request, answers) in asks.items():
        with HostilePeer.to_node(net.nodes[0]) as peer:
            peer.sync()
            peer.bytes_in_by_type.clear()
            sent = 0
            for _ in range(requests // 200):  # in bursts, reading between them: not a peer that stops reading
                sent += peer.send_many(request for _ in range(200))
                assert peer.sync(30), f"the node stopped answering the attacker's PING after {name}"
            figures[name] = sum(peer.bytes_in_by_type[t] for t in answers) / sent
    return figures


def unrequested_tx_sets(net: Network, count: int = 30, size: int = 4 * MIB - 4096) -> Figures:
    """A stranger pushes ``count`` valid tx sets of ``size`` bytes nobody asked for; ``extra``: RSS still held."""
    target = net.nodes[0]
    per_tx = 60_000
    before = tips(net)
    with HostilePeer.to_node(target) as peer, RssSampler(pid(target)) as rss:
        rss_before = rss.peak
        for _ in range(count):
            tx_set = TxSet.canonical(bytes(32), [os.urandom(per_tx) for _ in range(size // (per_tx + 8))])
            if not peer.try_send(TxSetMessage(tx_set.hash(), tx_set.to_xdr())):
                break
        wait_more_ledgers(net, before, 3)
    # What is still held once the attack is over (the peak may be the frames in flight).
    held = process_rss(pid(target)) - rss_before
    return Figures(rss_before, rss.peak, peer.bytes_out, peer.bytes_in, ledgers_since(net, before), held)


def stored_quorum_sets(node: Node) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{node.data_dir / 'ledger.db'}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT count(*) FROM quorum_sets").fetchone()[0])


def unrequested_quorum_sets(net: Network, count: int = 1000, validators: int = 50) -> Figures:
    """A stranger pushes ``count`` distinct quorum sets nobody asked for; ``extra``: quorum sets stored."""
    target = net.nodes[0]
    before = tips(net)
    with HostilePeer.to_node(target) as peer:
        for _ in range(count // 100):
            qsets = [SCPQuorumSet(1, tuple(Keypair.random().public_key for _ in range(validators))) for _ in range(100)]
            peer.send_many(QuorumSetMessage(q) for q in qsets)
        assert peer.sync(60), "the node stopped answering the attacker's PING"
        wait_more_ledgers(net, before, 3)
    return Figures(ledgers_during=ledgers_since(net, before), extra=stored_quorum_sets(target))


def junk_transactions(net: Network, count: int = 175_000, batch: int = 5000, clients: int = 30) -> Figures:
    """A stranger floods ``count`` junk transactions and keeps the queue topped up while clients post.

    ``extra``: how many of ``clients`` POST /tx got a 5xx.
    """
    target = net.nodes[0]
    before = tips(net)
    with HostilePeer.to_node(target) as peer:
        for _ in range(count // batch):
            peer.send(TransactionBatch(tuple(os.urandom(64) for _ in range(batch))))
        refused = 0
        for _ in range(clients):
            # Ledgers drain the queue; the attacker refills what they took before each client comes.
            peer.send(TransactionBatch(tuple(os.urandom(64) for _ in range(batch))))
            assert peer.sync(60), "the node stopped answering the attacker's PING"
            status, _ = http(f"{target.http_url}/tx", os.urandom(100))
            refused += status >= 500
    wait_more_ledgers(net, before, 2)
    return Figures(ledgers_during=ledgers_since(net, before), extra=refused)


def client_socket(port: int) -> socket.socket:
    """A TCP connection to 127.0.0.1:``port`` that never keeps a restarted node from binding its port.

    Its ephemeral port may be one a node listens on (node2's, while it is
    down); with SO_REUSEADDR the node can still bind it, even while this
    socket lingers in TIME_WAIT.
    """
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def silent_connections(net: Network, silent: int = 500, strangers: int = 8) -> Figures:
    """Silent TCP connections and handshaken strangers fill node4; ``extra``: seconds until node2 is back.

    Node2 (a validator of node4's quorum set) dials node4; it is restarted
    while the connections are held.
    """
    target, victim = net.nodes[3], net.nodes[1]
    endpoint = node_endpoint(target.config)
    victim_key = node_endpoint(victim.config).public_key
    before = tips(net)
    with ExitStack() as stack:
        victim.terminate()
        for _ in range(strangers):
            try:
                stack.enter_context(HostilePeer.to_node(target))
            except (HandshakeError, OSError):
                break
        for _ in range(silent):
            stack.enter_context(client_socket(endpoint.port))
        target.poll_log()
        seen = len(target.records)
        victim.start()

        def reconnected() -> bool:
            target.poll_log()
            return any(
                r.get("event") == "peer connected" and r.get("peer") == victim_key for r in target.records[seen:]
            )

        wait_for(reconnected, 60, "node2 connected to node4 again")
        # From node2's overlay being up (its process start is not the overlay's doing) to node4 admitting it.
        victim.poll_log()
        up = [r for r in victim.records if r.get("event") == "overlay started"][-1]["timestamp"]
        back = next(
            r["timestamp"]
            for r in target.records[seen:]
            if r.get("event") == "peer connected" and r.get("peer") == victim_key
        )
        seconds = (datetime.fromisoformat(back) - datetime.fromisoformat(up)).total_seconds()
        wait_more_ledgers(net, before, 2)
    return Figures(ledgers_during=ledgers_since(net, before), extra=seconds)


def fresh_keys_after_ban(net: Network, keys: int = 5) -> Figures:
    """A stranger gets banned (malformed messages), then comes back under fresh keys; ``extra``: keys admitted."""
    target = net.nodes[0]
    before = tips(net)
    with HostilePeer.to_node(target) as peer:
        assert peer.session is not None
        junk = encode_frame(peer.session.seal_encoded(b"\x00\x00\x00\x63not a message"))
        for _ in range(4):
            peer.send_raw(junk)
            junk = encode_frame(peer.session.seal_encoded(b"\x00\x00\x00\x63not a message"))
        assert peer.wait_closed(10), "the node did not drop a peer that sent only malformed messages"
    admitted = 0
    for _ in range(keys):
        try:
            with HostilePeer.to_node(target):
                admitted += 1
        except (HandshakeError, OSError):
            pass
    wait_more_ledgers(net, before, 2)
    return Figures(ledgers_during=ledgers_since(net, before), extra=admitted)


# ----- the tests ----------------------------------------------------------------


def test_get_tx_set_flood_without_reading_costs_little_memory_and_no_amplification(net: Network) -> None:
    f = get_tx_set_flood(net)
    assert f.amplification < 2, f"bytes out / bytes in = {f.amplification:.1f}"
    assert f.rss_growth_mib < 64, f"RSS grew {f.rss_growth_mib:.0f} MiB"
    assert f.ledgers_during >= 3


def test_no_request_type_is_answered_with_more_than_twice_its_bytes(net: Network) -> None:
    before = tips(net)
    figures = every_request_type(net)
    assert all(ratio < 2 for ratio in figures.values()), figures
    wait_more_ledgers(net, before, 2)


def test_unrequested_tx_sets_are_not_kept(net: Network) -> None:
    f = unrequested_tx_sets(net)
    assert f.bytes_out > 25 * 4 * MIB  # the attack was delivered
    held = f.extra / MIB
    assert held < 48, f"{held:.0f} MiB still held after the attack"
    assert f.ledgers_during >= 3


def test_unrequested_quorum_sets_never_reach_the_disk(net: Network) -> None:
    f = unrequested_quorum_sets(net)
    assert f.extra == 0, f"{f.extra:.0f} unrequested quorum sets stored"
    assert f.ledgers_during >= 3


def test_junk_transactions_leave_room_for_clients(net: Network) -> None:
    f = junk_transactions(net)
    assert f.extra == 0, f"{f.extra:.0f} of 30 client POST /tx refused with a 5xx"
    assert f.ledgers_during >= 2


def test_a_validator_of_our_quorum_reconnects_through_silent_connections_and_strangers(net: Network) -> None:
    f = silent_connections(net)
    assert f.extra < 10, f"node2 needed {f.extra:.1f} s to reconnect to node4"
    assert f.ledgers_during >= 2


def test_a_banned_host_cannot_come_back_under_fresh_keys(net: Network) -> None:
    f = fresh_keys_after_ban(net)
    assert f.extra == 0, f"{f.extra:.0f} fresh keys admitted right after the ban"
    assert f.ledgers_during >= 2
