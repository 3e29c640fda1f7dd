"""The admin API of real ``scpd run`` processes: /info, /quorum, /scp, /peers, /readyz."""

from __future__ import annotations

import json
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from netutil import Network, wait_for

import scpd


def get(port: int, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def http_port(config: Path) -> int:
    return int(tomllib.loads(config.read_text())["http"]["port"])


def public_key(config: Path) -> str:
    return str(tomllib.loads(config.read_text())["node"]["public_key"])


def test_a_node_is_joining_then_synced_then_stuck_when_its_quorum_goes(tmp_path: Path) -> None:
    net = Network(tmp_path, 4)
    n1, n2, n3, n4 = net.nodes
    port = http_port(n1.config)
    try:
        n1.start()  # alone: it cannot close a ledger
        wait_for(lambda: _answers(port), 30, "node1's admin server")
        status, info = get(port, "/info")
        assert status == 200
        assert info["node"] == public_key(n1.config)
        assert info["name"] == "node1"
        assert info["version"] == scpd.__version__
        assert info["network"] == "scpd localnet"
        assert info["state"] == "joining"
        assert info["ledger"]["slot"] == 0
        assert info["quorum"]["threshold"] == 3 and info["quorum"]["validators"] == 4
        assert info["quorum"]["missing"] == 3 and info["quorum"]["agree"] == 1
        assert info["quorum"]["v_blocked"] is True and info["quorum"]["has_quorum"] is False
        assert get(port, "/readyz") == (503, {"ready": False, "state": "joining"})

        for other in (n2, n3, n4):
            other.start()
        net.wait_slot(3)
        wait_for(lambda: get(port, "/readyz")[0] == 200, 30, "node1 ready")
        # node1 started alone, so its dials back off; it reconnects to all three within the backoff cap.
        wait_for(lambda: get(port, "/info")[1]["peers"]["connected"] == 3, 30, "node1 connected to all three peers")
        # A member counts as agreeing once its latest statement is on our slot; wait out one that is a step
        # behind, and judge the very answer that showed it (a fresh one may catch a member mid-step).
        infos: list[dict[str, Any]] = []

        def all_agree() -> bool:
            infos.append(get(port, "/info")[1])
            return bool(infos[-1]["quorum"]["agree"] == 4)

        wait_for(all_agree, 30, "all four members agreeing")
        info = infos[-1]
        assert info["state"] == "synced"
        assert info["ledger"]["slot"] >= 3 and info["current_slot"] == info["ledger"]["slot"] + 1
        assert info["peers"]["connected"] == 3
        assert info["quorum"]["v_blocked"] is False

        answers: list[tuple[int, dict[str, Any]]] = []

        def settled() -> bool:
            # Members move through slots independently: wait for an answer where all agree and are known.
            answers.append(get(port, "/quorum"))
            body = answers[-1][1]
            states = {m["state"] for m in body["quorum_set"]["validators"]}
            return states == {"agree"} and body["transitive"]["nodes_with_known_quorum_sets"] == 3

        wait_for(settled, 30, "node1 to hear every member agree and know every quorum set")
        status, quorum = answers[-1]
        assert status == 200 and quorum["state"] == "synced"
        transitive = quorum["transitive"]  # the analysis of every quorum set node1 has seen
        assert transitive["intersection"] is True and transitive["disjoint_quorums"] is None
        assert transitive["in_quorum"] is True and transitive["single_nodes_that_halt_us"] == []
        assert transitive["problems"] == []
        members = quorum["quorum_set"]["validators"]
        assert [m["name"] for m in members] == ["node1", "node2", "node3", "node4"]
        assert {m["state"] for m in members} == {"agree"}
        for m in members:
            assert m["latest"]["slot"] >= quorum["last_closed_slot"]
            assert m["latest"]["type"] in ("NOMINATE", "PREPARE", "CONFIRM", "EXTERNALIZE")

        status, peers = get(port, "/peers")
        assert status == 200 and peers["connected"] == 3
        assert sorted(p["name"] for p in peers["peers"]) == ["node2", "node3", "node4"]
        assert all(p["messages_received"] > 0 and p["bytes_sent"] > 0 for p in peers["peers"])

        # Two of four gone: no quorum, the node stops closing ledgers and says so.
        n3.kill()
        n4.kill()
        wait_for(lambda: get(port, "/info")[1]["state"] == "stuck", 60, "node1 stuck", interval=0.5)
        assert get(port, "/readyz") == (503, {"ready": False, "state": "stuck"})

        def both_missing() -> bool:
            # A member turns "missing" once silent for longer than the staleness bound.
            answers.append(get(port, "/quorum"))
            states = {m["name"]: m["state"] for m in answers[-1][1]["quorum_set"]["validators"]}
            return states["node3"] == states["node4"] == "missing"

        wait_for(both_missing, 60, "node3 and node4 reported missing", interval=0.5)
        status, quorum = answers[-1]
        assert quorum["state"] == "stuck" and quorum["summary"]["v_blocked"] is True
    finally:
        net.__exit__(None, None, None)


def test_scp_snapshots_and_bad_parameters(tmp_path: Path) -> None:
    with Network(tmp_path, 4) as net:
        n1 = net.nodes[0]
        port = http_port(n1.config)
        net.wait_slot(3, [n1])
        status, body = get(port, "/scp?slot=3&limit=2")
        assert status == 200
        assert [s["slot"] for s in body["slots"]] == [3, 2]
        assert body["slots"][0]["ballot"]["phase"] == "EXTERNALIZE"
        assert body["slots"][0]["externalized"] is not None
        status, body = get(port, "/scp")
        assert status == 200 and len(body["slots"]) == 1
        assert body["slots"][0]["slot"] == max(body["known_slots"])
        for bad in ("slot=x", "limit=0", "limit=21", "slot=-1"):
            status, body = get(port, f"/scp?{bad}")
            assert status == 400, bad
            assert "error" in body


def _answers(port: int) -> bool:
    try:
        get(port, "/healthz")
    except OSError:
        return False
    return True
