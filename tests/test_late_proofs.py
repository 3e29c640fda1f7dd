"""Late EXTERNALIZE proofs: kept in batches, one transaction for several slots, nothing good lost to a bad slot."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from test_ledger_store import KEYS, externalize, make_ledger

from scpd.base.types import SCPEnvelope
from scpd.node import herder_io
from scpd.node.herder_io import StoreActions
from scpd.node.ledger import LedgerStore
from scpd.nodecore import actions as act
from scpd.nodecore.values import ConsensusValue


def chain(store: LedgerStore, slots: int) -> list[ConsensusValue]:
    """Ledgers 1..slots, each proved by KEYS[0] alone (KEYS[1] and KEYS[2] send theirs late)."""
    values = []
    for _ in range(slots):
        tip = store.tip()
        entry, tx_set = make_ledger(tip.slot + 1, tip.hash, [bytes([tip.slot])])
        store.append_ledger(entry, tx_set, [externalize(KEYS[0], entry.slot, entry.value)])
        values.append(entry.value)
    return values


def late(slot: int, values: list[ConsensusValue], signer: int = 2) -> SCPEnvelope:
    return externalize(KEYS[signer], slot, values[slot - 1])


def signers(store: LedgerStore, slot: int) -> set[int]:
    nodes = [kp.node_id for kp in KEYS]
    return {nodes.index(env.statement.node_id) for env in store.proofs(slot)}


def test_a_batch_keeps_every_good_slot_and_names_the_refused_ones(tmp_path: Path) -> None:
    writes: list[str] = []
    with LedgerStore.open_data_dir(tmp_path, write_observer=lambda kind, _: writes.append(kind)) as store:
        values = chain(store, 3)
        writes.clear()
        batch = {
            1: [late(1, values), late(1, values, signer=1)],
            # Slot 1's value as a proof of slot 2 spoils slot 2's whole batch, not the others.
            2: [externalize(KEYS[2], 2, values[0]), late(2, values, signer=1)],
            3: [late(3, values)],
            9: [externalize(KEYS[2], 9, values[0])],  # no such ledger
        }
        refused = store.add_proofs_of(batch)
        assert set(refused) == {2, 9}
        assert "no such ledger" in refused[9]
        assert writes == ["proofs"]  # one transaction for the whole batch
        assert signers(store, 1) == {0, 1, 2}
        assert signers(store, 2) == {0}  # the whole refused slot is left as it was
        assert signers(store, 3) == {0, 2}
        assert store.add_proofs_of({1: [late(1, values)]}) == {}  # again: kept once
        assert signers(store, 1) == {0, 1, 2}


async def test_late_proofs_wait_and_go_to_the_store_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(herder_io, "PROOF_BATCH_SECONDS", 0.05)
    writes: list[str] = []
    proofs_written = threading.Event()  # set from the store's worker thread

    def observe(kind: str, _: float) -> None:
        writes.append(kind)
        if kind == "proofs":
            proofs_written.set()

    with LedgerStore.open_data_dir(tmp_path, write_observer=observe) as store:
        values = chain(store, 2)
        writes.clear()
        actions = StoreActions(store, feed=lambda _: None, clock=lambda: 0.0)
        actions.add_proofs(act.AddProofs(1, (late(1, values),)))
        actions.add_proofs(act.AddProofs(2, (late(2, values),)))
        actions.add_proofs(act.AddProofs(1, (late(1, values, signer=1),)))
        assert writes == []  # nothing written before the batch is due
        assert await asyncio.to_thread(proofs_written.wait, 10), "the batch was never written"
        await actions.drain()
        assert writes == ["proofs"]
        assert signers(store, 1) == {0, 1, 2}
        assert signers(store, 2) == {0, 2}


async def test_a_stop_writes_the_late_proofs_still_waiting(tmp_path: Path) -> None:
    with LedgerStore.open_data_dir(tmp_path) as store:
        values = chain(store, 1)
        actions = StoreActions(store, feed=lambda _: None, clock=lambda: 0.0)
        actions.add_proofs(act.AddProofs(1, (late(1, values),)))
        await actions.drain()  # long before PROOF_BATCH_SECONDS
        assert signers(store, 1) == {0, 2}


async def test_a_refused_slot_is_logged_and_the_batch_goes_on(tmp_path: Path) -> None:
    with LedgerStore.open_data_dir(tmp_path) as store, capture_logs() as logs:
        values = chain(store, 1)
        actions = StoreActions(store, feed=lambda _: None, clock=lambda: 0.0)
        actions.add_proofs(act.AddProofs(5, (externalize(KEYS[2], 5, values[0]),)))
        actions.add_proofs(act.AddProofs(1, (late(1, values),)))
        await actions.drain()
        assert signers(store, 1) == {0, 2}
    refused = [e for e in logs if e["event"] == "EXTERNALIZE proofs not kept"]
    assert [(e["slot"], e["log_level"]) for e in refused] == [(5, "warning")]
