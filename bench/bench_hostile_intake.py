"""What hostile peers do to a validator's SCP intake: the attacks of tests/test_hostile_intake.py, as figures.

Each attack runs on a 4-validator localnet (0.5 s slots, 3 of 4) against real
``scpd`` processes, through ``tests/hostile.HostilePeer`` (the real handshake,
then anything); "stolen key" signs with validator v3's seed. The table gives
each attack's figure on node 0. Run it from another checkout's root (e.g. the
commit before the intake work) to get the "before" column:

    .venv/bin/python bench/bench_hostile_intake.py [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import tomllib
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE.parent), str(HERE)]

from benchdoc import write_section  # noqa: E402
from hostile import HostilePeer  # noqa: E402
from netutil import Network, Node  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from scpd.base.keys import Keypair  # noqa: E402
from scpd.base.types import SCPBallot, SCPExternalize, SCPNomination, SCPPrepare  # noqa: E402
from scpd.nodecore.values import ConsensusValue  # noqa: E402


def get(node: Node, path: str) -> Any:
    with urllib.request.urlopen(node.http_url + path, timeout=10) as r:
        return json.loads(r.read())


def metric(source: Node, name: str, **labels: str) -> float | None:
    with urllib.request.urlopen(source.http_url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


def stolen(node: Node) -> Keypair:
    return Keypair.from_seed_strkey(tomllib.loads(node.config.read_text())["node"]["seed"])


def qset_hash(node: Node) -> bytes:
    return bytes.fromhex(get(node, "/info")["quorum"]["hash"])


def unjudgeable(i: int) -> bytes:
    return ConsensusValue(2_000_000_000 + i, os.urandom(32)).to_xdr()


def future_prepares(net: Network) -> str:
    n0, h, v3 = net.nodes[0], qset_hash(net.nodes[0]), stolen(net.nodes[3])
    known = ConsensusValue(2_000_000_000, bytes.fromhex(get(n0, "/ledger/1")["tx_set_hash"])).to_xdr()
    peers = [HostilePeer.to_node(n) for n in net.nodes[:3]]
    current, start = int(get(n0, "/info")["current_slot"]), n0.last_slot
    for peer in peers:
        for slot in range(current + 1, current + 13):
            for signer in (peer.keypair, v3):
                peer.try_send(peer.envelope(slot, SCPPrepare(h, SCPBallot(1000, known)), signer))
    time.sleep(20)
    for peer in peers:
        peer.close()
    return f"ledgers closed in the 20 s after: {n0.last_slot - start}"


def copies(net: Network) -> str:
    n0, h, v3 = net.nodes[0], qset_hash(net.nodes[0]), stolen(net.nodes[3])
    with HostilePeer.to_node(n0) as peer:
        before = metric(n0, "scpd_signature_verifications_total") or 0.0
        copy = peer.envelope(int(get(n0, "/info")["current_slot"]), SCPNomination(h, (unjudgeable(0),)), v3)
        for _ in range(10):
            peer.send_many([copy] * 1000)
        time.sleep(8)
        after = metric(n0, "scpd_signature_verifications_total") or 0.0
    return f"signature checks in 8 s (honest traffic included): {after - before:.0f}"


def far_slot(net: Network) -> str:
    n0, h, v3 = net.nodes[0], qset_hash(net.nodes[0]), stolen(net.nodes[3])
    with HostilePeer.to_node(n0) as peer:
        nomination = SCPNomination(h, (unjudgeable(0),))
        peer.send(peer.envelope(2**63, nomination))
        peer.send(peer.envelope(2**63, nomination, v3))
        start = n0.last_slot
        time.sleep(10)
    n0.poll_log()
    asks = sum(1 for r in n0.records if r.get("event") == "catching up" and int(r.get("count", 0)) >= 8)
    return f"full catch-up requests in 10 s: {asks}; ledgers closed: {n0.last_slot - start}"


def throwaway_proofs(net: Network) -> str:
    n0, h = net.nodes[0], qset_hash(net.nodes[0])
    slot = n0.last_slot - 1
    value = bytes.fromhex(get(n0, f"/ledger/{slot}")["value"])
    with HostilePeer.to_node(n0) as peer:
        externalize = SCPExternalize(SCPBallot(1, value), 1, h)
        peer.send_many(peer.envelope(slot, externalize, Keypair.random()) for _ in range(140))
        time.sleep(5)
    return f"proofs stored for the slot: {len(get(n0, f'/ledger/{slot}')['proofs'])}"


def equivocation(net: Network) -> str:
    n0, h, v3 = net.nodes[0], qset_hash(net.nodes[0]), stolen(net.nodes[3])
    with HostilePeer.to_node(n0) as peer:
        slot = int(get(n0, "/info")["current_slot"]) + 2
        for i in (1, 2):
            peer.send(peer.envelope(slot, SCPNomination(h, (unjudgeable(i),)), v3))
        time.sleep(3)
    states = {m["node"]: m["state"] for m in get(n0, "/quorum")["quorum_set"]["validators"]}
    counted = metric(n0, "scpd_equivocations_total", node=str(v3.public_key))
    return f"v3 in /quorum: {states[str(v3.public_key)]}; scpd_equivocations_total: {counted}"


ATTACKS: list[tuple[str, Callable[[Network], str]]] = [
    ("one PREPARE per future slot (12 slots, stranger + stolen key, every validator)", future_prepares),
    ("10,000 copies of a stolen-key envelope waiting for its tx set", copies),
    ("an envelope for slot 2^63 (stranger + stolen key)", far_slot),
    ("EXTERNALIZE proofs from 140 throw-away keys", throwaway_proofs),
    ("stolen key: two contradictory NOMINATEs", equivocation),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--write", action="store_true", help="record the table in docs/benchmarks.md")
    args = parser.parse_args()
    rows = ["| attack | figure on node 0 |", "|---|---|"]
    for name, attack in ATTACKS:
        with tempfile.TemporaryDirectory() as tmp, Network(Path(tmp), 4) as net:
            net.wait_slot(3)
            rows.append(f"| {name} | {attack(net)} |")
            net.assert_agreement()
        print(rows[-1], flush=True)
    table = "\n".join(rows)
    print(table)
    if args.write:
        write_section("Hostile peers: SCP intake", table, "python bench/bench_hostile_intake.py --write")


if __name__ == "__main__":
    main()
