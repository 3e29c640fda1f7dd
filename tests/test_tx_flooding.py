"""Transactions flooded in TRANSACTIONS batches: every node gets them, a full mesh gets no copies.

Real processes on loopback. In a line (node1 - node2 - node3 - node4) a
batch submitted to one end must reach the other end through the relays of
the nodes in between, and every transaction must land in the ledger exactly
once, in the same slot on every node. On a full mesh the NEIGHBORS hint
(scpd.nodecore.txrelay) means no node relays what its origin sends to all:
each node hears each transaction once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from netutil import Network, wait_for


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def _post_batch(url: str, txs: list[bytes]) -> list[str]:
    body = b"\n".join(base64.b64encode(tx) for tx in txs)
    req = urllib.request.Request(f"{url}/txs", data=body, method="POST", headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return [r["status"] for r in json.loads(resp.read())["results"]]


def _slot_of(url: str, tx: bytes) -> int | None:
    try:
        answer = _get(f"{url}/tx/{hashlib.sha256(tx).hexdigest()}")
    except urllib.error.HTTPError:
        return None
    return int(answer["slot"]) if answer.get("status") == "included" else None


def _metric(url: str, sample: str) -> float:
    """One sample of a node's /metrics (name and labels as written there); 0 if absent."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def _received_from_peers(url: str) -> float:
    return _metric(url, 'scpd_transactions_received_total{source="peer"}')


def _connected(url: str) -> float:
    return sum(_metric(url, f'scpd_peers_connected{{direction="{d}"}}') for d in ("inbound", "outbound"))


def test_batches_cross_a_line_of_validators_and_land_exactly_once(tmp_path: Path) -> None:
    with Network(tmp_path, 4, topology="line", slot_interval=0.5) as net:
        net.wait_slot(2, timeout=60)
        first, last = net.nodes[0], net.nodes[-1]
        from_first = [b"first end " + os.urandom(240) for _ in range(300)]
        from_last = [b"last end " + os.urandom(240) for _ in range(300)]
        assert _post_batch(first.http_url, from_first) == ["queued"] * 300
        assert _post_batch(last.http_url, from_last) == ["queued"] * 300

        # Each end hears the other end's transactions from its only peer: relayed by the nodes between.
        wait_for(lambda: _received_from_peers(last.http_url) >= 300, 30, "node4 hearing node1's transactions")
        wait_for(lambda: _received_from_peers(first.http_url) >= 300, 30, "node1 hearing node4's transactions")

        txs = from_first + from_last

        def all_included() -> bool:
            return all(_slot_of(n.http_url, tx) is not None for n in net.nodes for tx in txs[::50])

        wait_for(all_included, 60, "inclusion on every node")
        slots = {tx: _slot_of(first.http_url, tx) for tx in txs}
        assert all(s is not None for s in slots.values())
        for node in net.nodes[1:]:
            assert {tx: _slot_of(node.http_url, tx) for tx in txs} == slots
        # Exactly once: the ledgers that include them list each id once, and nothing else of ours.
        ids = sorted(hashlib.sha256(tx).hexdigest() for tx in txs)
        listed: list[str] = []
        for slot in sorted({s for s in slots.values() if s is not None}):
            listed += [t["id"] for t in _get(f"{first.http_url}/ledger/{slot}")["transactions"]]
        assert sorted(i for i in listed if i in set(ids)) == ids
        net.assert_agreement()
        assert not net.errors()


def test_on_a_full_mesh_each_node_hears_each_transaction_once(tmp_path: Path) -> None:
    with Network(tmp_path, 4, topology="full", slot_interval=0.5) as net:
        net.wait_slot(1, timeout=60)
        urls = [n.http_url for n in net.nodes]
        wait_for(lambda: all(_connected(u) == 3 for u in urls), 60, "every node connected to the 3 others")
        # A slot later (at least 0.5 s) every node has announced its peers (NEIGHBORS, 0.1 s after a change).
        net.wait_slot(max(n.last_slot for n in net.nodes) + 1, timeout=60)
        before = [(_received_from_peers(u), _metric(u, "scpd_transactions_already_known_total")) for u in urls]
        txs = [b"full mesh " + os.urandom(240) for _ in range(300)]
        assert _post_batch(urls[0], txs) == ["queued"] * 300
        wait_for(lambda: all(_slot_of(u, tx) is not None for u in urls for tx in txs[::50]), 60, "inclusion")

        after = [(_received_from_peers(u), _metric(u, "scpd_transactions_already_known_total")) for u in urls]
        copies = [a[0] - b[0] for a, b in zip(after, before, strict=True)]
        duplicates = [a[1] - b[1] for a, b in zip(after, before, strict=True)]
        # node1 hears none back; the others hear each one once, from node1 (no relays: node1 sends to all).
        assert copies == [0, 300, 300, 300]
        assert duplicates == [0, 0, 0, 0]
        net.assert_agreement()
        assert not net.errors()
