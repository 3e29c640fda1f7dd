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
    return request(port, "GET", path)


def post(port: int, path: str, body: object, content_type: str = "application/json") -> tuple[int, Any]:
    return request(port, "POST", path, json.dumps(body).encode(), content_type)


def request(port: int, method: str, path: str, data: bytes | None = None, content_type: str = "") -> tuple[int, Any]:
    """The status and the JSON body of any answer (an error answer must be JSON too)."""
    headers = {"Content-Type": content_type} if content_type else {}
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data, headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.headers.get_content_type() == "application/json"
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        assert exc.headers.get_content_type() == "application/json", (exc.code, path)
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
            # Members move through slots independently: wait for an answer where all agree and are known,
            # each with a statement for a slot we have not closed. A member's statements for a slot we
            # wrote before they arrived never reach the consensus core (they are kept as late proofs),
            # so on a loaded machine its latest statement can trail for a slot or two (seen once in 80).
            answers.append(get(port, "/quorum"))
            body = answers[-1][1]
            members = body["quorum_set"]["validators"]
            current = all(m["latest"] is not None and m["latest"]["slot"] >= body["last_closed_slot"] for m in members)
            states = {m["state"] for m in members}
            return current and states == {"agree"} and body["transitive"]["nodes_with_known_quorum_sets"] == 3

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

        summary = quorum["summary"]
        # 3 of 4 with node1 never failing: two more of the three others block it (stellar-core's fail_at).
        assert summary["fail_at"] == 2 and len(summary["fail_with"]) == 2
        assert set(summary["fail_with"]) <= {"node2", "node3", "node4"}

        status, peers = get(port, "/peers")
        assert status == 200 and peers["connected"] == 3
        authenticated = peers["authenticated"]["inbound"] + peers["authenticated"]["outbound"]
        assert sorted(p["name"] for p in authenticated) == ["node2", "node3", "node4"]
        assert all(p["direction"] == "inbound" for p in peers["authenticated"]["inbound"])
        assert all(p["direction"] == "outbound" for p in peers["authenticated"]["outbound"])
        assert all(p["messages_received"] > 0 and p["bytes_sent"] > 0 for p in authenticated)
        assert peers["pending"] == {"inbound": 0, "outbound": []}

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
        assert quorum["summary"]["fail_at"] == 0 and quorum["summary"]["fail_with"] == []
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


def test_operator_actions_ban_unban_drop_and_log_levels(tmp_path: Path) -> None:
    with Network(tmp_path, 4) as net:
        n1 = net.nodes[0]
        port = http_port(n1.config)
        net.wait_slot(2, [n1])
        wait_for(lambda: get(port, "/peers")[1]["connected"] == 3, 30, "node1 connected to all three peers")
        node4 = public_key(net.nodes[3].config)

        # Ban by configured name: the peer is dropped at once and cannot come back while banned.
        status, body = post(port, "/ban", {"node": "node4", "seconds": 600})
        assert status == 200 and body == {"banned": node4, "seconds": 600, "dropped": True}
        status, listed = get(port, "/bans")
        nodes = [b for b in listed["bans"] if "node" in b]
        assert [(b["node"], b["name"]) for b in nodes] == [(node4, "node4")]
        assert 590 < nodes[0]["seconds_left"] <= 600
        wait_for(lambda: get(port, "/peers")[1]["connected"] == 2, 30, "node4 dropped")
        status, body = post(port, "/unban", {"node": node4})
        assert (status, body) == (200, {"unbanned": node4, "was_banned": True})
        assert [b for b in get(port, "/bans")[1]["bans"] if "node" in b] == []
        wait_for(lambda: get(port, "/peers")[1]["connected"] == 3, 60, "node4 back once unbanned")

        # Log levels per logger, visible in the node's log right away: debug for the overlay only.
        status, body = post(port, "/ll", {"level": "debug", "logger": "scpd.node.overlay"})
        assert status == 200 and body["levels"] == {"": "info", "scpd.node.overlay": "debug"}
        assert get(port, "/ll") == (200, {"levels": {"": "info", "scpd.node.overlay": "debug"}})

        # Drop without a ban: the connection goes (the peer logs it at debug), the peers find each other again.
        node3 = public_key(net.nodes[2].config)
        status, body = post(port, "/droppeer", {"node": "node3"})
        assert (status, body) == (200, {"dropped": node3, "banned": False})

        def closed_logged() -> bool:
            n1.poll_log()
            return any(r["event"] == "peer closed" and r.get("peer_name") == "node3" for r in n1.records)

        wait_for(closed_logged, 30, "node1's debug line about closing node3")
        debug = {r["logger"] for r in n1.records if r["level"] == "debug"}
        assert debug and all(name.startswith("scpd.node.overlay.") for name in debug), debug
        assert post(port, "/ll", {"level": None, "logger": "scpd.node.overlay"})[1]["levels"] == {"": "info"}
        wait_for(lambda: get(port, "/peers")[1]["connected"] == 3, 60, "node3 reconnected")
        status, body = post(port, "/droppeer", {"node": "GDOESNOTEXIST"})
        assert status == 400 and "error" in body

        # Refusals: JSON answers, never a traceback or a text page.
        assert post(port, "/ll", {"level": "loud"})[0] == 400
        assert post(port, "/ban", {"node": "node2", "seconds": -1})[0] == 400
        assert post(port, "/ban", ["node2"])[0] == 400
        assert post(port, "/unban", {"address": "nowhere"})[0] == 400
        status, body = request(port, "POST", "/ban", b"node=node2", "application/x-www-form-urlencoded")
        assert status == 415 and body["status"] == 415  # what a cross-site form could send
        assert request(port, "POST", "/ban", b"{", "application/json")[0] == 400
        status, body = get(port, "/no-such-page")
        assert status == 404 and body == {"error": "Not Found", "status": 404}
        assert get(port, "/ban")[0] == 405
        assert get(port, "/bans")[1]["bans"] == []
