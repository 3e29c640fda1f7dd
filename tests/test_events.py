"""The event hub behind GET /events (bounded per reader, never waiting for one) and the page it feeds."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from netutil import REPO

from scpd.operator.api_events import STATIC_FILES
from scpd.operator.events import EventHub


def test_a_slow_reader_loses_its_oldest_events_and_is_told_how_many() -> None:
    drops: list[int] = []
    hub = EventHub(queue_size=3, on_drop=drops.append)
    slow, fast = hub.subscribe(), hub.subscribe()
    assert slow is not None and fast is not None
    for slot in range(1, 6):
        hub.publish("ledger", {"slot": slot})
        if slot % 2:
            fast.take()
    assert [e.data["slot"] for e in slow.take()] == [3, 4, 5]
    assert slow.dropped == 2 and slow.unreported_drops == 2
    assert fast.dropped == 0
    assert drops == [1, 1]  # one reader dropped one event, twice
    assert not slow.wake.is_set()


def test_new_readers_get_the_recent_ledgers_then_live_events() -> None:
    hub = EventHub(history=2)
    for slot in range(1, 4):
        hub.publish("ledger", {"slot": slot})
    hub.publish("sync", {"state": "synced", "previous": "joining"})
    sub = hub.subscribe()
    assert sub is not None
    assert [(e.kind, e.data.get("slot")) for e in sub.take()] == [("ledger", 2), ("ledger", 3)]
    event = hub.publish("member", {"node": "G...", "state": "missing"})
    (got,) = sub.take()
    assert got == event
    text = got.encode().decode()
    assert text.startswith(f"id: {got.id}\nevent: member\ndata: ") and text.endswith("\n\n")
    assert json.loads(text.split("data: ", 1)[1]) == {"node": "G...", "state": "missing"}


def test_readers_are_bounded_and_closed_on_shutdown() -> None:
    hub = EventHub(max_clients=2)
    a, b = hub.subscribe(), hub.subscribe()
    assert a is not None and b is not None
    assert hub.subscribe() is None
    hub.unsubscribe(a)
    assert hub.clients == 1
    hub.close()
    assert b.closed and b.wake.is_set()


def test_the_wheel_ships_the_status_page(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("scpd-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in STATIC_FILES:
        assert f"scpd/operator/static/{name}" in names
