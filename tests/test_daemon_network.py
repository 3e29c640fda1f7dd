"""Real ``scpd run`` processes on 127.0.0.1 reaching consensus over TCP."""

from __future__ import annotations

import tomllib
import urllib.request
from pathlib import Path

from netutil import Network, Node, wait_for
from prometheus_client.parser import text_string_to_metric_families

from scpd.node.ledger import LedgerStore


def _timer_expiries(node: Node) -> float:
    """Consensus timers (nomination and ballot) that fired on ``node``, from its /metrics."""
    port = tomllib.loads(node.config.read_text())["http"]["port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "scpd_timer_expiries_total"
    )


def _ledger_values(data_dir: Path) -> dict[int, bytes]:
    store = LedgerStore.open_data_dir(data_dir, create=False)
    try:
        assert store.verify_chain() is None
        out = {}
        slot = 1
        while (rec := store.get(slot)) is not None:
            out[slot] = rec.hash
            slot += 1
        return out
    finally:
        store.close()


def test_four_validators_agree_tolerate_one_failure_halt_at_two_and_resume(tmp_path: Path) -> None:
    with Network(tmp_path, 4) as net:
        n1, n2, n3, n4 = net.nodes
        net.wait_slot(5)
        net.assert_agreement()

        n4.kill()
        resumed_at = max(n.last_slot for n in (n1, n2, n3))
        net.wait_slot(resumed_at + 3, [n1, n2, n3])

        fired = {n.name: _timer_expiries(n) for n in (n1, n2)}
        n3.kill()
        halted_at = max(n1.last_slot, n2.last_slot)
        # Judged by work, not by a wall-clock window (which proves nothing on a slow machine): once
        # both survivors have each run out several consensus timers, they have tried and failed.
        wait_for(
            lambda: all(_timer_expiries(n) >= fired[n.name] + 3 for n in (n1, n2)),
            90,
            "node1 and node2 each to time out three more times",
            interval=0.5,
        )
        # A slot already past its ballot phase may still finish; then nothing can.
        assert max(n1.last_slot, n2.last_slot) <= halted_at + 1, "two of four validators cannot make progress"
        halted_at = max(n1.last_slot, n2.last_slot)

        n3.start()
        net.wait_slot(halted_at + 3, [n1, n2, n3])
        n4.start()
        net.wait_slot(halted_at + 4, [n1, n2, n3])
        net.assert_agreement()
        assert not net.errors()

        wait_for(lambda: all(n.started for n in net.nodes), 30, "every node to finish starting")
        codes = [n.terminate() for n in net.nodes if n.running]
        assert codes == [0] * len(codes), "SIGTERM stops every node cleanly"

    # The durable ledgers agree slot by slot and each chain verifies.
    chains = [_ledger_values(tmp_path / f"{n.name}-data") for n in net.nodes]
    for chain in chains[1:]:
        for slot in chain.keys() & chains[0].keys():
            assert chain[slot] == chains[0][slot]
    assert min(len(c) for c in chains[:3]) >= halted_at + 3


def test_seven_validators_on_a_ring_reach_consensus_through_flooding(tmp_path: Path) -> None:
    with Network(tmp_path, 7, topology="ring") as net:
        net.wait_slot(3, timeout=120)
        net.assert_agreement()
        assert not net.errors()
