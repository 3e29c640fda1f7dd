"""Logs of real nodes: JSON lines with event and node, no secrets, small INFO volume."""

from __future__ import annotations

import io
import json
import tomllib
from pathlib import Path

import pytest
import structlog
from netutil import Network

from scpd.errors import ScpdError
from scpd.operator.logs import configure, levels, set_level

# INFO lines that are not per-slot or peer changes, allowed once per process run.
_LIFECYCLE = {"node started", "overlay started", "node stopping", "node stopped", "in sync"}
# The periodic quorum line is INFO only while synced, and then at most once a minute (plus when sync begins).
_QUORUM_LINES_PER_SHORT_RUN = 2
_PEER_CHANGES = {"peer connected", "peer disconnected"}
# An address's first failed dial in a row is INFO (a peer still starting, or one just stopped; the next
# ones are warnings): at most two per peer in a short run.
_FIRST_DIAL_FAILURES_PER_SHORT_RUN = 2 * 3
# A node that starts last may find the others a slot or two ahead and fetch those ledgers (one line per
# request); in a short run of a started-together network that is a request or so, never one per slot.
_CATCH_UP_LINES_PER_SHORT_RUN = 3


def test_running_nodes_log_json_lines_with_node_ids_and_never_their_seed(tmp_path: Path) -> None:
    net = Network(tmp_path, 4)
    for node in net.nodes:  # the most talkative level, to look for secrets everywhere
        node.config.write_text(node.config.read_text().replace('level = "info"', 'level = "debug"'))
    seeds = {n.name: tomllib.loads(n.config.read_text())["node"]["seed"] for n in net.nodes}
    keys = {n.name: tomllib.loads(n.config.read_text())["node"]["public_key"] for n in net.nodes}
    names = {key: name for name, key in keys.items()}
    with net:
        net.wait_slot(4)
        assert [n.terminate() for n in net.nodes] == [0, 0, 0, 0]
    for node in net.nodes:
        raw = node.log.read_text()
        for seed in seeds.values():
            assert seed not in raw, f"{node.name}'s log holds a seed"
        node.poll_log()
        assert node.records, node.name
        for record in node.records:
            assert "text" not in record, f"{node.name}: not a JSON line: {record}"
            assert isinstance(record.get("event"), str) and record["event"], record
            assert record["node"] == keys[node.name], record
            assert record["node_name"] == node.name, record  # configured names join the keys they name
            if record["event"] == "peer connected":
                assert record["peer_name"] == names[record["peer"]], record
            assert record["level"] in ("debug", "info", "warning", "error"), record
            assert "timestamp" in record
        for record in node.records:
            if record["event"] == "ledger closed":
                assert isinstance(record["slot"], int)


def test_info_volume_is_about_one_line_per_slot_plus_peer_changes(tmp_path: Path) -> None:
    with Network(tmp_path, 4) as net:
        net.wait_slot(6)
        assert [n.terminate() for n in net.nodes] == [0, 0, 0, 0]
    for node in net.nodes:
        node.poll_log()
        info = [r for r in node.records if r.get("level") == "info"]
        slots = sum(1 for r in info if r["event"] == "ledger closed")
        peers = sum(1 for r in info if r["event"] in _PEER_CHANGES)
        quorum = sum(1 for r in info if r["event"] == "quorum")
        dials = sum(1 for r in info if r["event"] == "dial failed")
        catch_ups = sum(1 for r in info if r["event"] == "catching up")
        known = _PEER_CHANGES | _LIFECYCLE | {"ledger closed", "quorum", "dial failed", "catching up"}
        other = [r["event"] for r in info if r["event"] not in known]
        assert slots >= 6
        # The quorum log is fed by the node's watch: a node that synced said so, once.
        assert sum(1 for r in info if r["event"] == "in sync") == 1, f"{node.name}: no 'in sync' line"
        assert peers <= 2 * 3 + 2, f"{node.name}: {peers} peer lines for 3 peers"
        assert quorum <= _QUORUM_LINES_PER_SHORT_RUN, f"{node.name}: {quorum} INFO quorum lines in a short run"
        assert other == [], f"{node.name}: unexpected INFO lines {other}"
        assert dials <= _FIRST_DIAL_FAILURES_PER_SHORT_RUN, f"{node.name}: {dials} INFO dial failures"
        assert catch_ups <= _CATCH_UP_LINES_PER_SHORT_RUN, f"{node.name}: {catch_ups} catch-up requests"
        assert len(info) <= slots + peers + quorum + dials + catch_ups + len(_LIFECYCLE)


def test_console_format_on_request_and_json_otherwise() -> None:
    out = io.StringIO()
    try:
        configure("json", "info", node="GNODE")
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(out))
        structlog.get_logger("t").info("ledger closed", slot=3)
        structlog.get_logger("t").debug("hidden at info", slot=3)
        lines = out.getvalue().splitlines()
        assert len(lines) == 1
        record = json.loads(lines[0])
        assert record["event"] == "ledger closed" and record["node"] == "GNODE" and record["slot"] == 3

        out.truncate(0)
        out.seek(0)
        configure("console", "debug", node="GNODE")
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(out))
        structlog.get_logger("t").debug("peer closed", peer="GPEER")
        text = out.getvalue()
        assert "peer closed" in text and "node=GNODE" in text
        assert not text.lstrip().startswith("{")
    finally:
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()


def test_levels_change_per_logger_at_run_time_and_names_join_their_keys() -> None:
    out = io.StringIO()
    try:
        configure("json", "info", node="GNODE", names={"GNODE": "node1", "GPEER": "node2"}, stream=out)
        overlay = structlog.get_logger("scpd.node.overlay.peer")
        herder = structlog.get_logger("scpd.node.herder")
        overlay.debug("hidden")
        set_level("debug", "scpd.node.overlay")
        overlay.debug("peer closed", peer="GPEER", other="GUNKNOWN")
        herder.debug("still hidden")
        set_level("error", "scpd.node")  # a shorter prefix does not override the longer one
        herder.warning("hidden by scpd.node")
        overlay.debug("shown by scpd.node.overlay")
        assert levels() == {"": "info", "scpd.node": "error", "scpd.node.overlay": "debug"}
        set_level(None, "scpd.node.overlay")
        overlay.warning("hidden again")
        records = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [r["event"] for r in records] == ["peer closed", "shown by scpd.node.overlay"]
        first = records[0]
        assert first["logger"] == "scpd.node.overlay.peer"
        assert first["node_name"] == "node1" and first["peer_name"] == "node2"
        assert "other_name" not in first
        with pytest.raises(ScpdError):
            set_level("loud", "scpd")
        with pytest.raises(ScpdError):
            set_level(None)
    finally:
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
