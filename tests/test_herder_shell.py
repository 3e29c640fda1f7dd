"""The herder carries out the node core's actions on a real loop and store: a node that is its own
quorum closes ledgers one after the other, writes each before reporting it, and stops cleanly."""

from __future__ import annotations

import asyncio
from pathlib import Path

from scpd.base.keys import Keypair, network_id
from scpd.base.types import SCPQuorumSet
from scpd.node.herder import ExternalizedSlot, Herder
from scpd.node.ledger import LedgerStore
from scpd.nodecore.settings import CoreSettings
from scpd.nodecore.values import tx_id


async def test_a_solo_node_closes_ledgers_in_order_and_each_is_on_disk_when_reported(tmp_path: Path) -> None:
    kp = Keypair.random()
    store = LedgerStore.open_data_dir(tmp_path / "data")
    reported: list[int] = []
    on_disk: list[int] = []
    three = asyncio.Event()

    def on_externalized(done: ExternalizedSlot) -> None:
        reported.append(done.slot)
        on_disk.append(store.tip().slot)
        if done.slot >= 3:
            three.set()

    herder = Herder(
        kp,
        network_id("shell"),
        SCPQuorumSet(1, (kp.public_key,)),
        store,
        CoreSettings(slot_interval=0.05),
        on_externalized=on_externalized,
    )
    herder.start()
    try:
        herder.submit_transaction(b"a transaction")
        await asyncio.wait_for(three.wait(), 30)
    finally:
        await herder.stop()
    try:
        assert reported[:3] == [1, 2, 3]
        assert on_disk[:3] == [1, 2, 3]
        assert herder.tip.slot == store.tip().slot >= 3
        assert store.verify_chain() is None
        # The transaction submitted was proposed and written (the first slot it could go in is 1 or 2).
        assert store.get_tx(tx_id(b"a transaction")) in (1, 2)
    finally:
        store.close()
