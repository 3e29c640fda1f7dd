"""The NEIGHBORS hint for transaction batches (scpd.nodecore.txrelay), driven directly.

The graph tests flood one transaction over a whole network of nodes that all
follow the policy, delivering copies in a random (seeded) order, and check
that every node gets it; on a full mesh each node but the first gets exactly
one copy.
"""

from __future__ import annotations

import itertools
import random
from collections import deque

import pytest
from nodecore_harness import T0, make_net

from scpd.base.keys import Keypair
from scpd.base.types import NodeID
from scpd.nodecore import events as ev
from scpd.nodecore.actions import SendEncoded, TimerKey, TimerKind
from scpd.nodecore.messages import (
    Neighbors,
    TransactionBatch,
    encode_transaction_entries,
    encode_transactions_message,
)
from scpd.nodecore.txrelay import batch_recipients, gets_from_origin

FLOOD = TimerKey(TimerKind.TX_FLOOD)
KEYS = [Keypair(bytes([i + 1]) * 32).public_key for i in range(25)]
ORIGIN, P, Q = KEYS[:3]

Graph = dict[NodeID, frozenset[NodeID]]


def test_transactions_from_our_api_go_to_every_peer() -> None:
    neighbors = {P: frozenset({Q}), Q: frozenset({P})}
    assert batch_recipients([None], [P, Q], neighbors) == {P: (None,), Q: (None,)}


def test_a_peer_does_not_get_back_what_it_sent() -> None:
    assert gets_from_origin(ORIGIN, ORIGIN, {})
    assert batch_recipients([ORIGIN], [ORIGIN, P], {}) == {P: (ORIGIN,)}


def test_a_peer_is_spared_an_origins_transactions_only_when_both_say_they_are_connected() -> None:
    both = {ORIGIN: frozenset({P}), P: frozenset({ORIGIN})}
    assert gets_from_origin(P, ORIGIN, both)
    # The origin's word alone: a peer that lies about its connections cannot cut another off.
    assert not gets_from_origin(P, ORIGIN, {ORIGIN: frozenset({P})})
    # The peer's word alone is not enough either (the origin may not send to it).
    assert not gets_from_origin(P, ORIGIN, {P: frozenset({ORIGIN})})
    assert not gets_from_origin(P, ORIGIN, {})


def test_each_peer_gets_the_origins_it_lacks_in_the_order_they_were_gathered() -> None:
    neighbors = {ORIGIN: frozenset({P}), P: frozenset({ORIGIN, Q}), Q: frozenset({P})}
    # ORIGIN-P and P-Q say they are connected, each pair both ways; ORIGIN and Q are not (as far as we know).
    assert batch_recipients([Q, None, ORIGIN, P], [ORIGIN, P, Q], neighbors) == {
        ORIGIN: (Q, None),
        P: (None,),
        Q: (None, ORIGIN),
    }
    assert batch_recipients([ORIGIN], [ORIGIN, P], neighbors) == {}


def _full(n: int) -> Graph:
    nodes = KEYS[:n]
    return {a: frozenset(b for b in nodes if b != a) for a in nodes}


def _ring(n: int) -> Graph:
    nodes = KEYS[:n]
    return {a: frozenset({nodes[i - 1], nodes[(i + 1) % n]}) for i, a in enumerate(nodes)}


def _line(n: int) -> Graph:
    nodes = KEYS[:n]
    return {a: frozenset(nodes[j] for j in (i - 1, i + 1) if 0 <= j < n) for i, a in enumerate(nodes)}


def _random_graph(n: int, degree: int, rng: random.Random) -> Graph:
    """A connected graph: a random spanning path plus random edges up to about ``degree`` per node."""
    nodes = KEYS[:n]
    order = rng.sample(nodes, n)
    edges = {frozenset(pair) for pair in itertools.pairwise(order)}
    while len(edges) < n * degree // 2:
        a, b = rng.sample(nodes, 2)
        edges.add(frozenset({a, b}))
    return {a: frozenset(b for e in edges if a in e for b in e if b != a) for a in nodes}


def _flood(graph: Graph, submitted_to: NodeID, rng: random.Random) -> dict[NodeID, int]:
    """Flood one transaction with every node following the policy; copies received by each node.

    Every node's NEIGHBORS is true (its peers in ``graph``). Copies in flight
    are delivered in a random order, so which copy arrives first (the origin
    a node relays for) varies with ``rng``.
    """
    copies = dict.fromkeys(graph, 0)
    holders = {submitted_to}
    in_flight: deque[tuple[NodeID, NodeID]] = deque()

    def send(node: NodeID, origin: NodeID | None) -> None:
        for peer in batch_recipients([origin], graph[node], graph):
            in_flight.append((node, peer))

    send(submitted_to, None)
    while in_flight:
        i = rng.randrange(len(in_flight))
        in_flight.rotate(-i)
        sender, receiver = in_flight.popleft()
        copies[receiver] += 1
        if receiver not in holders:
            holders.add(receiver)
            send(receiver, sender)
    return copies


@pytest.mark.parametrize("n", [2, 4, 7, 10, 25])
def test_on_a_full_mesh_every_node_gets_each_transaction_exactly_once(n: int) -> None:
    graph = _full(n)
    for seed in range(10):
        copies = _flood(graph, KEYS[seed % n], random.Random(seed))
        assert copies == {node: 0 if node == KEYS[seed % n] else 1 for node in graph}


@pytest.mark.parametrize(("name", "graph"), [("ring", _ring(25)), ("line", _line(25)), ("ring of 4", _ring(4))])
def test_on_a_ring_or_a_line_every_node_gets_each_transaction(name: str, graph: Graph) -> None:
    for seed in range(25):
        copies = _flood(graph, KEYS[seed % len(graph)], random.Random(seed))
        assert all(copies[node] >= 1 for node in graph if node != KEYS[seed % len(graph)]), name


@pytest.mark.parametrize("degree", [4, 6, 8])
def test_on_random_graphs_every_node_gets_each_transaction_with_fewer_copies(degree: int) -> None:
    for seed in range(40):
        rng = random.Random(seed)
        graph = _random_graph(25, degree, rng)
        start = rng.choice(KEYS[:25])
        copies = _flood(graph, start, rng)
        assert all(copies[node] >= 1 for node in graph if node != start), seed
        # Without the hint each node that relays sends to all its peers but one: sum(degree - 1) + the first's.
        assert sum(copies.values()) < sum(len(p) - 1 for p in graph.values()) + 1


def test_the_node_core_spares_a_peer_the_transactions_of_an_origin_it_is_connected_to() -> None:
    net = make_net()
    net.handle(ev.Started(T0))
    a, b = net.a.public_key, net.b.public_key
    # Only a says it is connected to b: not enough, b still gets a's transactions from us.
    net.handle(ev.MessageReceived(a, Neighbors((b, net.local.public_key)), T0))
    net.handle(ev.MessageReceived(a, TransactionBatch((b"from a one",)), T0 + 0.001))
    one = encode_transactions_message(1, [encode_transaction_entries([b"from a one"])])
    assert net.handle(ev.TimerFired(FLOOD, T0 + 0.03)) == [SendEncoded(b, (one,))]
    # Once b confirms, a's transactions go to nobody (a floods them to b itself); ours still go to both.
    net.handle(ev.MessageReceived(b, Neighbors((a, net.local.public_key)), T0 + 0.04))
    net.handle(ev.MessageReceived(a, TransactionBatch((b"from a two",)), T0 + 0.05))
    net.core.handle(ev.TransactionsSubmitted((b"ours",), T0 + 0.051))
    ours = encode_transactions_message(1, [encode_transaction_entries([b"ours"])])
    assert net.handle(ev.TimerFired(FLOOD, T0 + 0.08)) == [SendEncoded(a, (ours,)), SendEncoded(b, (ours,))]
    # b gone and back: its old word is forgotten until it speaks again.
    net.handle(ev.PeerGone(b, T0 + 0.09))
    net.handle(ev.PeerConnected(b, T0 + 0.1))
    net.handle(ev.MessageReceived(a, TransactionBatch((b"from a three",)), T0 + 0.11))
    three = encode_transactions_message(1, [encode_transaction_entries([b"from a three"])])
    assert net.handle(ev.TimerFired(FLOOD, T0 + 0.14)) == [SendEncoded(b, (three,))]
