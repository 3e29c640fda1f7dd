"""Logs of real nodes: JSON lines with event and node, no secrets, small INFO volume."""

from __future__ import annotations

import io
import json
import tomllib
from pathlib import Path

import structlog
from netutil import Network

from scpd.operator.logs import configure

# INFO lines that are not per-slot or peer changes, allowed once per process run.
_LIFECYCLE = {"node started", "overlay started", "node stopping", "node stopped"}
_PEER_CHANGES = {"peer connected", "peer disconnected"}
# The node's health lines (scpd.operator.quorum_log) at its first sync, and the first failed dial of
# each of 3 peers still starting or already stopped (scpd.node.overlay): at most this many per run.
_HEALTH = {"in sync": 1, "quorum": 1, "dial failed": 2 * 3}


def test_running_nodes_log_json_lines_with_node_ids_and_never_their_seed(tmp_path: Path) -> None:
    net = Network(tmp_path, 4)
    for node in net.nodes:  # the most talkative level, to look for secrets everywhere
        node.config.write_text(node.config.read_text().replace('level = "info"', 'level = "debug"'))
    seeds = {n.name: tomllib.loads(n.config.read_text())["node"]["seed"] for n in net.nodes}
    keys = {n.name: tomllib.loads(n.config.read_text())["node"]["public_key"] for n in net.nodes}
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
        health = [r["event"] for r in info if r["event"] in _HEALTH]
        known = _PEER_CHANGES | _LIFECYCLE | _HEALTH.keys() | {"ledger closed"}
        other = [r["event"] for r in info if r["event"] not in known]
        assert slots >= 6
        assert peers <= 2 * 3 + 2, f"{node.name}: {peers} peer lines for 3 peers"
        assert other == [], f"{node.name}: unexpected INFO lines {other}"
        assert all(health.count(e) <= n for e, n in _HEALTH.items()), f"{node.name}: {health}"
        assert len(info) <= slots + peers + len(_LIFECYCLE) + len(health)


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
