"""The herder's cadence: slot i+1 starts slot_interval after slot i started, or at once if slot i took longer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from scpd.base.keys import Keypair, network_id
from scpd.base.types import SCPQuorumSet
from scpd.node.herder import ExternalizedSlot, Herder, HerderSettings
from scpd.node.ledger import LedgerStore


async def test_a_slot_that_took_longer_than_the_interval_is_followed_at_once(tmp_path: Path) -> None:
    kp = Keypair.random()
    store = LedgerStore.open_data_dir(tmp_path / "data")
    skew = 0.0

    def clock() -> float:
        return time.time() + skew

    nominated: dict[int, float] = {}
    written = asyncio.Event()

    def on_externalized(_: ExternalizedSlot) -> None:
        # Slot 1 "took" 100 s by our clock: far longer than the 30 s interval.
        nonlocal skew
        skew += 100.0
        written.set()

    settings = HerderSettings(slot_interval=30.0)
    herder = Herder(
        kp,
        network_id("cadence"),
        SCPQuorumSet(1, (kp.public_key,)),
        store,
        settings,
        clock=clock,
        on_externalized=on_externalized,
    )
    original = herder._nominate_current

    def nominate() -> None:
        nominated.setdefault(herder.current_slot, asyncio.get_running_loop().time())
        original()

    herder._nominate_current = nominate  # type: ignore[method-assign]
    herder.start()
    try:
        await asyncio.wait_for(written.wait(), 10)
        # Slot 2 starts now, not 30 s after slot 1's ledger was written.
        async with asyncio.timeout(10):
            while 2 not in nominated:
                await asyncio.sleep(0.01)
        assert herder.current_slot >= 2
    finally:
        await herder.stop()
        store.close()


async def test_a_quick_slot_is_followed_an_interval_after_it_started(tmp_path: Path) -> None:
    kp = Keypair.random()
    store = LedgerStore.open_data_dir(tmp_path / "data")
    # The herder's clock stands still except where the test moves it, so the expected delay is exact
    # and no allowance for a loaded machine is needed.
    now = [1_700_000_000.0]
    scheduled_between: list[float] = []

    def on_externalized(_: ExternalizedSlot) -> None:
        now[0] += 1.5  # slot 1 took 1.5 s by the herder's clock
        scheduled_between.append(asyncio.get_running_loop().time())  # the next slot is scheduled after this
        written.set()

    written = asyncio.Event()
    herder = Herder(
        kp,
        network_id("cadence"),
        SCPQuorumSet(1, (kp.public_key,)),
        store,
        HerderSettings(slot_interval=30.0),
        clock=lambda: now[0],
        on_externalized=on_externalized,
    )
    herder.start()
    try:
        await asyncio.wait_for(written.wait(), 10)
        scheduled_between.append(asyncio.get_running_loop().time())
        cadence = herder._cadence
        assert cadence is not None and herder.current_slot == 2
        # Slot 2 is due 30 s after slot 1 started: 28.5 s after the write, however long the write took.
        low, high = scheduled_between
        assert low + 28.5 <= cadence.when() <= high + 28.5
    finally:
        await herder.stop()
        store.close()
