"""The admin API: what an operator (or an orchestrator) asks a running node.

``GET /info`` (who, which network, state, latest ledger, peers, quorum
summary), ``GET /quorum`` (each member of the local quorum set and what we
hear from it), ``GET /scp?slot=N&limit=K`` (the consensus core's snapshots),
and ``GET /peers`` (``GET /readyz`` is in ``api_health``). Every answer is JSON; all of them only
read the node's state on the event loop and are cheap (no I/O), except
``/quorum``'s transitive analysis of every quorum set the node has seen,
which runs in a worker thread and is cached until those sets change.

The node's state is one of:

* ``synced``: a ledger was written recently (within ``stale_after`` seconds)
  and the members we agree with satisfy our quorum set;
* ``stuck``: this process has written ledgers, but not recently (or it lost
  its quorum);
* ``joining``: this process has not written a ledger yet.

``/readyz`` answers 200 only when synced (and its writes reach the disk), so a
load balancer or orchestrator sends work only to a node that is following its quorum.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from scpd import __version__
from scpd.analysis.local import check_local_quorum
from scpd.base.quorum import all_validators, is_quorum_slice, is_v_blocking, quorum_set_hash
from scpd.base.types import NodeID, SCPExternalize, SCPQuorumSet
from scpd.node.metrics import MemberState, QuorumMember, quorum_members, stale_after, statement_summary
from scpd.operator.http_api import CONTEXT_KEY, NodeContext

__all__ = ["MAX_SCP_LIMIT", "NodeStatus", "add_routes", "node_status"]

MAX_SCP_LIMIT = 20


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """The node's health as the admin API reports it."""

    state: str  # joining / synced / stuck
    members: list[QuorumMember]
    has_quorum: bool  # the agreeing members (and us) satisfy our quorum set
    v_blocked: bool  # the missing and disagreeing members block every slice of ours
    ledger_age: float | None  # seconds since this process last wrote a ledger


def node_status(ctx: NodeContext, now: float | None = None) -> NodeStatus:
    herder = ctx.herder
    now = time.time() if now is None else now
    stale = stale_after(ctx.config.timers.slot_interval)
    members = quorum_members(
        herder.scp, herder.node_id, herder.tip.slot, herder.heard_at, now, stale, herder.equivocations.nodes
    )
    qset = herder.scp.quorum_set
    agree = {m.node_id for m in members if m.state is MemberState.AGREE}
    absent = {m.node_id for m in members if m.state in (MemberState.MISSING, MemberState.DISAGREE)}
    has_quorum = is_quorum_slice(qset, agree)
    age = None if herder.last_ledger_at is None else max(0.0, now - herder.last_ledger_at)
    if age is not None and age <= stale and has_quorum:
        state = "synced"
    elif age is not None:
        state = "stuck"
    else:
        state = "joining"
    return NodeStatus(state, members, has_quorum, is_v_blocking(qset, absent), age)


def _summary(status: NodeStatus, qset: SCPQuorumSet, qset_hash: bytes) -> dict[str, Any]:
    counts = {s.value: 0 for s in MemberState}
    for m in status.members:
        counts[m.state.value] += 1
    return {
        "hash": qset_hash.hex(),
        "threshold": qset.threshold,
        "validators": len(status.members),
        **counts,
        "has_quorum": status.has_quorum,
        "v_blocked": status.v_blocked,
    }


async def info(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    cfg, herder, overlay = ctx.config, ctx.herder, ctx.overlay
    status = node_status(ctx)
    tip = herder.tip
    peers = overlay.peers
    return web.json_response(
        {
            "node": str(herder.node_id),
            "name": cfg.name_of(herder.node_id),
            "version": __version__,
            "network": cfg.network_passphrase,
            "network_id": cfg.network_id.hex(),
            "validator": herder.is_validator,
            "state": status.state,
            "ledger": {
                "slot": tip.slot,
                "hash": tip.hash.hex(),
                "close_time": tip.close_time,
                "age_seconds": None if status.ledger_age is None else round(status.ledger_age, 3),
            },
            "current_slot": herder.current_slot,
            "peers": {
                "connected": len(peers),
                "inbound": sum(1 for p in peers if not p.outbound),
                "outbound": sum(1 for p in peers if p.outbound),
            },
            "quorum": _summary(status, herder.scp.quorum_set, herder.scp.quorum_set_hash),
        }
    )


async def quorum(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    herder = ctx.herder
    status = node_status(ctx)
    by_node = {m.node_id: m for m in status.members}
    value_str = herder.value_to_str

    def member(node: NodeID) -> dict[str, Any]:
        m = by_node[node]
        return {
            "node": str(node),
            "name": ctx.config.name_of(node),
            "state": m.state.value,
            "heard_seconds_ago": None if m.heard_seconds_ago is None else round(m.heard_seconds_ago, 3),
            "latest": None if m.latest is None else statement_summary(m.latest, value_str),
        }

    def level(q: SCPQuorumSet) -> dict[str, Any]:
        return {
            "threshold": q.threshold,
            "validators": [member(v) for v in q.validators],
            "inner_sets": [level(inner) for inner in q.inner_sets],
        }

    return web.json_response(
        {
            "node": str(herder.node_id),
            "last_closed_slot": herder.tip.slot,
            "current_slot": herder.current_slot,
            "state": status.state,
            "summary": _summary(status, herder.scp.quorum_set, herder.scp.quorum_set_hash),
            "quorum_set": level(herder.scp.quorum_set),
            "transitive": await _transitive_analysis(request.app, ctx),
            # Proof of each equivocation seen (both signed envelopes, base64 XDR), newest last.
            "equivocations": [e.to_json() for e in herder.equivocations.evidence],
        }
    )


def seen_quorum_sets(ctx: NodeContext) -> dict[NodeID, SCPQuorumSet]:
    """The quorum set each node reachable from ours last declared, as far as we have heard."""
    herder = ctx.herder
    seen: dict[NodeID, SCPQuorumSet] = {}
    frontier = list(all_validators(herder.scp.quorum_set))
    while frontier:
        node = frontier.pop()
        if node in seen or node == herder.node_id:
            continue
        envelope = herder.scp.get_latest_message(node)
        if envelope is None:
            continue
        pledges = envelope.statement.pledges
        qset_hash = pledges.commit_quorum_set_hash if isinstance(pledges, SCPExternalize) else pledges.quorum_set_hash
        qset = herder.get_quorum_set(qset_hash)
        if qset is not None:
            seen[node] = qset
            frontier.extend(all_validators(qset))
    return seen


async def _transitive_analysis(app: web.Application, ctx: NodeContext) -> dict[str, Any]:
    """The quorum analysis over every quorum set seen, recomputed (off the loop) only when they change."""
    known = seen_quorum_sets(ctx)
    key = tuple(sorted((n.ed25519, quorum_set_hash(q)) for n, q in known.items()))
    cache = app[_ANALYSIS_CACHE]
    if cache.get("key") != key:
        herder = ctx.herder
        report = await asyncio.to_thread(check_local_quorum, herder.node_id, herder.scp.quorum_set, known)
        label = ctx.config.label
        cache["key"] = key
        cache["result"] = {
            "nodes_with_known_quorum_sets": len(known),
            "intersection": report.intersection,
            "disjoint_quorums": None
            if report.evidence is None
            else [sorted(str(n) for n in q) for q in report.evidence],
            "in_quorum": report.in_quorum,
            "single_nodes_that_halt_us": [str(n) for n in report.blocking_nodes],
            "quorum_sets_unknown": [str(n) for n in report.unknown],
            "problems": report.problems(label),
            "computed_at": round(time.time(), 3),
        }
    result: dict[str, Any] = cache["result"]
    return result


async def scp(request: web.Request) -> web.Response:
    herder = _ctx(request).herder
    known = herder.scp.known_slots()
    try:
        slot = _int_param(request.query, "slot", known[-1] if known else herder.current_slot, 0, 2**64 - 1)
        limit = _int_param(request.query, "limit", 1, 1, MAX_SCP_LIMIT)
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    slots = [s for s in reversed(known) if s <= slot][:limit]
    snapshots = [snap for s in slots if (snap := herder.scp.snapshot(s)) is not None]
    return web.json_response({"node": str(herder.node_id), "known_slots": known, "slots": snapshots})


async def peers(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    out = [
        {
            "node": str(p.node_id),
            "name": ctx.config.name_of(p.node_id),
            "direction": "outbound" if p.outbound else "inbound",
            "address": None if p.address is None else str(p.address),
            "protocol_version": p.hello.version,
            "messages_received": p.messages_received,
            "messages_sent": p.messages_sent,
            "bytes_received": p.bytes_received,
            "bytes_sent": p.bytes_sent,
            "send_queue": p.queued,
            "misbehaviour_points": p.misbehaviour,
        }
        for p in sorted(ctx.overlay.peers, key=lambda p: str(p.node_id))
    ]
    return web.json_response({"connected": len(out), "peers": out})


def _ctx(request: web.Request) -> NodeContext:
    return request.app[CONTEXT_KEY]


def _int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    try:
        value = int(text, 10)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {text!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {value}")
    return value


_ROUTES: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
    "/info": info,
    "/quorum": quorum,
    "/scp": scp,
    "/peers": peers,
}


_ANALYSIS_CACHE: web.AppKey[dict[str, Any]] = web.AppKey("scpd.quorum_analysis", dict)


def add_routes(app: web.Application, ctx: NodeContext) -> None:
    app[_ANALYSIS_CACHE] = {}
    for path, handler in _ROUTES.items():
        app.router.add_get(path, handler)
