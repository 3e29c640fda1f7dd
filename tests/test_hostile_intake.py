"""Hostile peers against the SCP intake over real TCP: trust, future slots, proofs, copies, equivocation.

Each test runs four real validators (3 of 4), attacks through ``tests/hostile.HostilePeer`` (the real
handshake, then anything), and checks safety and liveness: the honest validators keep closing
ledgers during and after the attack, with identical chains. "Stolen key" means the attacker signs
with validator v3's seed (read from its config): v3 then counts as faulty, which 3 of 4 tolerates.
"""

from __future__ import annotations

import base64
import json
import os
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile import HostilePeer
from netutil import Network, Node, wait_for
from prometheus_client.parser import text_string_to_metric_families

from scpd.base.keys import Keypair, verify_envelope
from scpd.base.types import SCPBallot, SCPEnvelope, SCPExternalize, SCPNomination, SCPPrepare, SCPStatement
from scpd.nodecore.messages import ErrorMessage, ScpMessage
from scpd.nodecore.values import ConsensusValue


def http_json(node: Node, path: str) -> Any:
    with urllib.request.urlopen(node.http_url + path, timeout=10) as r:
        return json.loads(r.read())


def metric(source: Node, name: str, **labels: str) -> float:
    """One sample of a node's /metrics (0 when absent)."""
    with urllib.request.urlopen(source.http_url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def stolen_key(node: Node) -> Keypair:
    return Keypair.from_seed_strkey(tomllib.loads(node.config.read_text())["node"]["seed"])


def qset_hash(node: Node) -> bytes:
    return bytes.fromhex(http_json(node, "/info")["quorum"]["hash"])


def junk_value(i: int) -> bytes:
    """A well-formed value naming a tx set nobody has: it can never be judged."""
    return ConsensusValue(2_000_000_000 + i, os.urandom(32)).to_xdr()


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Network]:
    """Four validators (3 of 4) that closed two ledgers."""
    with Network(tmp_path, 4) as network:
        network.wait_slot(2)
        yield network


def progress(net: Network, slots: int, nodes: list[Node], timeout: float = 60.0) -> None:
    """Every node in ``nodes`` closes ``slots`` more ledgers."""
    target = max(n.last_slot for n in nodes) + slots
    net.wait_slot(target, nodes, timeout)


def test_future_slot_prepares_from_strangers_and_a_stolen_member_key_do_not_stall_anyone(net: Network) -> None:
    qh = qset_hash(net.nodes[0])
    v3 = stolen_key(net.nodes[3])
    # A value every node can fetch at once (ledger 1's tx set) but cannot judge for a future
    # slot: the tx set builds on another ledger than that slot's predecessor.
    known = ConsensusValue(2_000_000_000, bytes.fromhex(http_json(net.nodes[0], "/ledger/1")["tx_set_hash"]))
    peers = [HostilePeer.to_node(n) for n in net.nodes[:3]]
    try:
        current = int(http_json(net.nodes[0], "/info")["current_slot"])
        attacked = range(current + 1, current + 13)
        for peer in peers:
            for slot in attacked:
                for signer in (peer.keypair, v3):
                    prepare = SCPPrepare(qh, SCPBallot(1000, known.to_xdr()))
                    # Judged INVALID once its slot is current: the peer is scored and banned.
                    peer.try_send(peer.envelope(slot, prepare, signer))
        # Every attacked slot closes, on every honest validator.
        net.wait_slot(attacked[-1] + 1, net.nodes[:3], 90)
    finally:
        for peer in peers:
            peer.close()
    progress(net, 3, net.nodes)
    net.assert_agreement()
    assert metric(net.nodes[0], "scpd_envelopes_rejected_total", reason="untrusted") >= 12
    assert not net.errors()


def test_an_envelope_for_slot_2_to_the_63_sends_nobody_catching_up(net: Network) -> None:
    qh = qset_hash(net.nodes[0])
    v3 = stolen_key(net.nodes[3])
    with HostilePeer.to_node(net.nodes[0]) as peer:
        nomination = SCPNomination(qh, (junk_value(0),))
        peer.send(peer.envelope(2**63, nomination))
        peer.send(peer.envelope(2**63, nomination, v3))
        progress(net, 5, net.nodes)
    network_slot = metric(net.nodes[0], "scpd_network_slot")
    assert network_slot < net.nodes[0].last_slot + 10
    catching_up = [r for r in net.nodes[0].records if r.get("event") == "catching up"]
    assert all(int(r["from_slot"]) + int(r["count"]) < 1000 for r in catching_up)
    net.assert_agreement()


def test_externalize_proofs_from_throwaway_keys_are_not_kept_and_a_restarted_validator_catches_up(
    net: Network,
) -> None:
    net.wait_slot(3)
    net.nodes[3].terminate()
    progress(net, 4, net.nodes[:3])
    qh = qset_hash(net.nodes[0])
    tip = min(n.last_slot for n in net.nodes[:3])
    slots = range(max(1, tip - 4), tip + 1)
    values = {s: bytes.fromhex(http_json(net.nodes[0], f"/ledger/{s}")["value"]) for s in slots}
    received = metric(net.nodes[0], "scpd_envelopes_received_total")
    peers = [HostilePeer.to_node(n) for n in net.nodes[:3]]
    try:
        for s in slots:
            throwaway = [Keypair.random() for _ in range(140)]
            externalize = SCPExternalize(SCPBallot(1, values[s]), 1, qh)
            for peer in peers:
                peer.send_many(peer.envelope(s, externalize, k) for k in throwaway)
        wait_for(
            lambda: metric(net.nodes[0], "scpd_envelopes_received_total") >= received + 140 * len(slots),
            30,
            "the throw-away proofs received",
        )
    finally:
        for peer in peers:
            peer.close()
    for s in slots:
        proofs = http_json(net.nodes[0], f"/ledger/{s}")["proofs"]
        assert len(proofs) <= 4, f"slot {s}: {len(proofs)} proofs kept"
    assert metric(net.nodes[0], "scpd_envelopes_rejected_total", reason="untrusted") >= 140 * len(slots)
    net.nodes[3].start()
    wait_for(lambda: net.nodes[3].last_slot >= tip + 2, 90, "the restarted validator to catch up")
    assert metric(net.nodes[3], "scpd_overlay_bans_total") == 0
    net.assert_agreement()


def test_ten_thousand_copies_of_an_envelope_waiting_for_its_tx_set_cost_one_signature_check(net: Network) -> None:
    node = net.nodes[0]
    qh = qset_hash(node)
    v3 = stolen_key(net.nodes[3])
    with HostilePeer.to_node(node) as peer:
        before = metric(node, "scpd_signature_verifications_total")
        hits_before = metric(node, "scpd_signature_cache_hits_total")
        current = int(http_json(node, "/info")["current_slot"])
        copy = peer.envelope(current, SCPNomination(qh, (junk_value(0),)), v3)
        for _ in range(10):
            peer.send_many([copy] * 1000)
        wait_for(
            lambda: (
                metric(node, "scpd_signature_cache_hits_total")
                - hits_before
                + metric(node, "scpd_envelopes_rejected_total", reason="slot_out_of_range")
                >= 9000
            ),
            60,
            "the copies to be handled",
        )
        checks = metric(node, "scpd_signature_verifications_total") - before
    # The copies cost at most one check; the rest is the honest traffic of those few seconds.
    assert checks < 1000, f"{checks} signature checks"
    # And they waited once: a copy of an envelope already waiting takes no place in the wait list.
    assert metric(node, "scpd_envelopes_rejected_total", reason="too_many_waiting") == 0
    progress(net, 3, net.nodes)
    net.assert_agreement()


def test_a_stolen_key_signing_contradictory_statements_is_reported_with_proof(net: Network) -> None:
    node = net.nodes[0]
    qh = qset_hash(node)
    v3 = stolen_key(net.nodes[3])
    with HostilePeer.to_node(node) as peer:
        slot = int(http_json(node, "/info")["current_slot"]) + 2
        peer.send(peer.envelope(slot, SCPNomination(qh, (junk_value(1),)), v3))
        peer.send(peer.envelope(slot, SCPNomination(qh, (junk_value(2),)), v3))
        wait_for(
            lambda: metric(node, "scpd_equivocations_total", node=str(v3.public_key)) >= 1,
            30,
            "the equivocation counted",
        )
    quorum = http_json(node, "/quorum")
    states = {m["node"]: m["state"] for m in quorum["quorum_set"]["validators"]}
    assert states[str(v3.public_key)] == "equivocating"
    proof = [e for e in quorum["equivocations"] if e["node"] == str(v3.public_key)]
    assert proof, quorum["equivocations"]
    envelopes = [SCPEnvelope.from_xdr(base64.b64decode(e)) for e in proof[0]["envelopes"]]
    assert len(envelopes) == 2 and envelopes[0] != envelopes[1]
    net_id = peer.net_id
    assert all(verify_envelope(net_id, e) and e.statement.node_id == v3.public_key for e in envelopes)
    node.poll_log()
    lines = [r for r in node.records if r.get("event") == "equivocation"]
    assert any(r["node"] == str(v3.public_key) and int(r["slot"]) >= 1 for r in lines)
    progress(net, 3, net.nodes[:3])
    net.assert_agreement()


def test_forged_signatures_are_refused_and_their_sender_banned(net: Network) -> None:
    """Statements claiming a member's key without its signature never count (not even as equivocation)."""
    node = net.nodes[0]
    qh = qset_hash(node)
    v3 = stolen_key(net.nodes[3])
    impostor = Keypair.random()
    with HostilePeer.to_node(node) as peer:
        slot = int(http_json(node, "/info")["current_slot"]) + 1
        for i in range(8):
            signed = peer.envelope(slot, SCPNomination(qh, (junk_value(i),)), impostor).envelope
            forged = SCPEnvelope(SCPStatement(v3.public_key, slot, signed.statement.pledges), signed.signature)
            if not peer.try_send(ScpMessage(forged)):
                break
        answers = peer.read_until(lambda m: isinstance(m, ErrorMessage), 30)
        assert peer.closed_by_remote or any(isinstance(m, ErrorMessage) for m in answers), "forger not dropped"
    assert metric(node, "scpd_envelopes_rejected_total", reason="bad_signature") >= 4
    assert metric(node, "scpd_equivocations_total", node=str(v3.public_key)) == 0
    assert metric(node, "scpd_overlay_bans_total") >= 1
    progress(net, 3, net.nodes)
    net.assert_agreement()
