"""An acknowledged transaction survives a SIGKILL of the node that acknowledged it."""

from __future__ import annotations

import random
from pathlib import Path

from netutil import Network, wait_for
from test_kill9 import _submit

from scpd.node.ledger import LedgerStore
from scpd.nodecore.values import tx_id


def _ledger_tx_ids(data_dir: Path) -> list[bytes]:
    with LedgerStore.open_data_dir(data_dir, create=False) as store:
        ids: list[bytes] = []
        for slot in range(1, store.tip().slot + 1):
            record = store.get(slot)
            assert record is not None
            ids += record.tx_set.tx_ids
        return ids


def test_transactions_acknowledged_just_before_a_kill_are_included_after_restart(tmp_path: Path) -> None:
    # One validator and long slots: nobody else holds the transactions, and no
    # ledger closes between the acknowledgement and the kill.
    rng = random.Random(7)
    with Network(tmp_path, 1, slot_interval=60.0) as net:
        [node] = net.nodes
        net.wait_slot(1, timeout=60)
        wait_for(lambda: node.started, 30, "the node's API")
        txs = [rng.randbytes(250) for _ in range(50)]
        results = _submit(node.http_url, txs)
        assert {r["status"] for r in results} == {"queued"}
        node.kill()
        assert node.last_slot == 1, "no ledger closed before the kill"
        node.start()
        net.wait_slot(2, timeout=60)  # a restarted node nominates at once
        assert node.terminate() == 0
    included = _ledger_tx_ids(node.data_dir)
    assert sorted(included) == sorted(tx_id(tx) for tx in txs)
