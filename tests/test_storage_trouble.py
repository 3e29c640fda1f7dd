"""A full disk is not forever: the node retries, reports `storage` trouble, bans nobody, and resumes
by itself once space is back.

Three validators run as processes; the fourth runs in this process (``run_node``, the daemon's own
code) so the test can fill its disk deterministically: ``PRAGMA max_page_count`` caps the real
SQLite file at its current size, which makes the next write that needs a page fail with
SQLITE_FULL ("database or disk is full"), exactly as a full file system does; raising the cap
again is space coming back.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from netutil import Network
from test_ledger_store import append_next, make_ledger

from scpd.base.keys import Keypair, network_id
from scpd.base.types import SCPQuorumSet
from scpd.node.herder import Herder
from scpd.node.ledger import LedgerStore
from scpd.node.ledger_db import StorageError
from scpd.node.overlay.overlay import Overlay
from scpd.nodecore.core import NodeCore
from scpd.nodecore.settings import CoreSettings
from scpd.nodecore.storage import StorageHealth
from scpd.nodecore.values import ledger_hash
from scpd.operator.config import load_config
from scpd.operator.daemon import run_node


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)
    assert condition(), what


def readyz(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def cap_pages(store: LedgerStore, pages: int | None) -> None:
    """Cap the database at its current size (None: lift the cap), on the writer's own connection."""
    db = store._db
    with db._lock:
        current = db._conn.execute("PRAGMA page_count").fetchone()[0]
        db._conn.execute(f"PRAGMA max_page_count = {current if pages is None else pages}")


def sample(herder: Herder, name: str, labels: dict[str, str] | None = None) -> float:
    value = herder.metrics.registry.get_sample_value(name, labels or {})
    assert value is not None, name
    return value


async def test_a_full_disk_is_retried_reported_and_outlived_without_banning_anyone(tmp_path: Path) -> None:
    net = Network(tmp_path, 4, slot_interval=0.5)
    others = net.nodes[1:]
    for node in others:
        node.start()
    cfg = load_config(net.nodes[0].config)
    started: dict[str, Any] = {}

    def on_started(herder: Herder, overlay: Overlay) -> None:
        started.update(herder=herder, overlay=overlay)

    task = asyncio.create_task(run_node(cfg, on_started=on_started))
    try:
        await until(lambda: "herder" in started, 30, "the in-process node to start")
        herder: Herder = started["herder"]
        overlay: Overlay = started["overlay"]
        await until(lambda: herder.tip.slot >= 3, 60, "a few ledgers before the disk fills")

        cap_pages(herder.store, None)
        ledger_failures = {"kind": "ledger"}
        await until(
            lambda: sample(herder, "scpd_storage_write_failures_total", ledger_failures) >= 1,
            60,
            "a ledger write to fail on the full disk",
        )
        stuck_at = herder.tip.slot
        status, body = await asyncio.to_thread(readyz, net.nodes[0].http_url)
        assert status == 503 and body["ready"] is False
        assert "disk is full" in body["storage"]["error"]
        assert sample(herder, "scpd_storage_failing") == 1

        # The others go on without us; we neither write nor ask for ledgers past the unwritten one.
        await asyncio.to_thread(net.wait_slot, stuck_at + 6, others, 60)
        assert herder.tip.slot == stuck_at
        assert herder.store.tip().slot == stuck_at

        cap_pages(herder.store, 1 << 30)  # space is back
        await until(lambda: herder.storage.ok, 30, "writes to go through again")
        target = max(n.last_slot for n in others) + 2
        await until(lambda: herder.tip.slot >= target, 90, f"catching up and following again (slot {target})")
        status, body = await asyncio.to_thread(readyz, net.nodes[0].http_url)
        assert "storage" not in body
        assert sample(herder, "scpd_storage_failing") == 0
        # Our failure was nobody's fault: no peer scored or banned, all still connected.
        assert overlay.stats.misbehaviour_reports == 0
        assert overlay.stats.bans == 0
        assert len(overlay.peers) == 3
        assert herder.store.verify_chain() is None
        ours = {s: herder.store.get(s) for s in range(1, target + 1)}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for node in others:
            if node.running:
                node.terminate()
    with LedgerStore.open_data_dir(others[0].data_dir, create=False) as theirs:
        for slot, record in ours.items():
            other = theirs.get(slot)
            assert record is not None and other is not None and record.hash == other.hash, slot
    net.assert_agreement()
    assert not net.errors()


def test_a_failed_write_stores_nothing_and_the_same_write_succeeds_once_space_is_back(tmp_path: Path) -> None:
    with LedgerStore.open_data_dir(tmp_path) as store:
        append_next(store, [b"before"])
        cap_pages(store, None)
        tip = store.tip()
        entry, tx_set = make_ledger(tip.slot + 1, tip.hash, [bytes([i]) * 2000 for i in range(64)])
        with pytest.raises(StorageError, match="disk is full"):
            store.append_ledger(entry, tx_set, [])
        assert store.tip() == tip
        cap_pages(store, 1 << 30)
        store.append_ledger(entry, tx_set, [])
        assert store.tip().slot == tip.slot + 1
        assert store.verify_chain() is None


def test_storage_health_backs_off_per_kind_and_clears_on_success() -> None:
    health = StorageHealth()
    assert health.ok and health.problem is None
    delays = [health.failed("ledger", "disk full", 100.0 + i) for i in range(8)]
    assert delays == sorted(delays) and delays[0] == StorageHealth.RETRY_INITIAL
    assert delays[-1] == StorageHealth.RETRY_MAX
    assert health.failed("own_envelope", "I/O error", 200.0) == StorageHealth.RETRY_INITIAL
    assert health.problem == "ledger: disk full" and health.since == 100.0
    # A small write that fits says nothing about the ledger that does not.
    assert health.succeeded("own_envelope") == 200.0
    assert not health.ok
    assert health.succeeded("ledger") == 100.0
    assert health.ok and health.since is None
    assert health.failed("ledger", "disk full", 300.0) == StorageHealth.RETRY_INITIAL


def test_catch_up_counts_a_decided_unwritten_ledger_as_had_only_when_the_writer_can_write_it(tmp_path: Path) -> None:
    kp = Keypair.random()
    with LedgerStore.open_data_dir(tmp_path) as store:
        append_next(store, [b"one"])
        core = NodeCore(kp, network_id("pending"), SCPQuorumSet(1, (kp.public_key,)), store, CoreSettings())
        tip = store.tip()
        entry, tx_set = make_ledger(tip.slot + 1, tip.hash, [b"two"])
        core.writer.externalized[entry.slot] = entry.value.to_xdr()
        # Its tx set unknown: catch-up must ask for this very slot (a served entry brings the set).
        assert core.writer.pending_tip() == tip
        core.sets.remember(tx_set)
        # Known: the writer can write it (its write may be failing): ask from the slot after it, and
        # check the answers against the chain that includes it, so they are seen to follow.
        pending = core.writer.pending_tip()
        assert pending.slot == tip.slot + 1
        assert pending.hash == ledger_hash(tip.hash, entry)
