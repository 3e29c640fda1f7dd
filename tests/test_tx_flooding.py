"""Transactions flooded in TRANSACTIONS batches reach validators that are not directly connected.

Real processes on loopback, in a line (node1 - node2 - node3 - node4): a
batch submitted to one end must reach the other end through the relays of
the nodes in between, and every transaction must land in the ledger exactly
once, in the same slot on every node.
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


def _received_from_peers(url: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    match = re.search(r'^scpd_transactions_received_total\{source="peer"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


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
