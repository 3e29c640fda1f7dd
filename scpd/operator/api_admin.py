"""The admin API: what an operator (or an orchestrator) asks a running node.

Reading: ``GET /info`` (who, which network, state, latest ledger, peers,
quorum summary), ``GET /quorum`` (each member of the local quorum set, what we
hear from it, how many more failures block us and which: ``fail_at`` /
``fail_with``), ``GET /scp?slot=N&limit=K`` (the consensus core's snapshots),
``GET /peers`` (authenticated and pending, inbound and outbound),
``GET /bans`` and ``GET /ll`` (log levels).

Acting, at stellar-core parity: ``POST /ll`` (log level per logger),
``POST /ban``, ``POST /unban``, ``POST /droppeer``. These take a JSON object
body and refuse any other content type (415): a browser page from another
origin cannot send one without a CORS preflight, which this server never
grants, so a web page cannot drive the admin API through an operator's
browser.

Every answer is JSON; all of them only read the node's state on the event
loop and are cheap (no I/O), except ``/quorum``'s transitive analysis, which
the ``NodeWatch`` computes in a worker thread and caches until the quorum
sets it covers change. The node states are described in ``status.py``;
``/healthz`` and ``/readyz`` are in ``api_health``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from aiohttp import web

from scpd import __version__
from scpd.base.types import NodeID, SCPConfirm, SCPEnvelope, SCPNomination, SCPPrepare, SCPQuorumSet
from scpd.errors import ScpdError
from scpd.node.overlay.peer import Peer
from scpd.nodecore.messages import PeerAddress
from scpd.operator import logs
from scpd.operator.http_api import CONTEXT_KEY, NodeContext
from scpd.operator.status import NodeStatus, node_status, state_counts

__all__ = ["MAX_SCP_LIMIT", "add_routes"]

log = structlog.get_logger(__name__)

MAX_SCP_LIMIT = 20


def _summary(ctx: NodeContext, status: NodeStatus) -> dict[str, Any]:
    qset = ctx.herder.scp.quorum_set
    fail_with = status.fail_with
    return {
        "hash": ctx.herder.scp.quorum_set_hash.hex(),
        "threshold": qset.threshold,
        "validators": len(status.members),
        **state_counts(status.members),
        "has_quorum": status.has_quorum,
        "v_blocked": status.v_blocked,
        "fail_at": None if fail_with is None else len(fail_with),
        "fail_with": None if fail_with is None else sorted(_node_json(ctx, n) for n in fail_with),
    }


def _node_json(ctx: NodeContext, node: NodeID) -> str:
    """A node as operators name it: its configured name, else its strkey."""
    return ctx.config.name_of(node) or str(node)


async def info(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    cfg, herder, overlay = ctx.config, ctx.herder, ctx.overlay
    status = node_status(cfg, herder)
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
            "quorum": _summary(ctx, status),
        }
    )


async def quorum(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    herder = ctx.herder
    status = node_status(ctx.config, herder)
    by_node = {m.node_id: m for m in status.members}
    value_str = herder.value_to_str

    def member(node: NodeID) -> dict[str, Any]:
        m = by_node[node]
        return {
            "node": str(node),
            "name": ctx.config.name_of(node),
            "state": m.state.value,
            "heard_seconds_ago": None if m.heard_seconds_ago is None else round(m.heard_seconds_ago, 3),
            "latest": None if m.latest is None else _statement_summary(m.latest, value_str),
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
            "summary": _summary(ctx, status),
            "quorum_set": level(herder.scp.quorum_set),
            "transitive": await ctx.watch.transitive(),
            # Proof of each equivocation seen (both signed envelopes, base64 XDR), newest last.
            "equivocations": [e.to_json() for e in herder.equivocations.evidence],
        }
    )


async def scp(request: web.Request) -> web.Response:
    herder = _ctx(request).herder
    known = herder.scp.known_slots()
    try:
        slot = _int_param(request.query, "slot", known[-1] if known else herder.current_slot, 0, 2**64 - 1)
        limit = _int_param(request.query, "limit", 1, 1, MAX_SCP_LIMIT)
    except ValueError as exc:
        return web.json_response({"error": str(exc), "status": 400}, status=400)
    slots = [s for s in reversed(known) if s <= slot][:limit]
    snapshots = [snap for s in slots if (snap := herder.scp.snapshot(s)) is not None]
    return web.json_response({"node": str(herder.node_id), "known_slots": known, "slots": snapshots})


def _peer_json(ctx: NodeContext, p: Peer) -> dict[str, Any]:
    return {
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


async def peers(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    connected = sorted(ctx.overlay.peers, key=lambda p: str(p.node_id))
    inbound_pending, dialing = ctx.overlay.pending_handshakes()
    return web.json_response(
        {
            "connected": len(connected),
            "authenticated": {
                "inbound": [_peer_json(ctx, p) for p in connected if not p.outbound],
                "outbound": [_peer_json(ctx, p) for p in connected if p.outbound],
            },
            "pending": {"inbound": inbound_pending, "outbound": [str(a) for a in dialing]},
        }
    )


async def bans(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    out = []
    for key, left in sorted(ctx.overlay.bans(), key=lambda item: str(item[0])):
        if isinstance(key, PeerAddress):
            out.append({"address": str(key), "seconds_left": round(left, 1)})
        else:
            out.append({"node": str(key), "name": ctx.config.name_of(key), "seconds_left": round(left, 1)})
    return web.json_response({"bans": out})


async def ban(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    body = await _json_body(request)
    node = _node_param(ctx, body)
    seconds = body.get("seconds", ctx.config.overlay.ban_duration)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds <= 10 * 365 * 86400:
        raise _BadRequest("seconds must be a positive number of seconds (at most ten years)")
    peer = ctx.overlay.peer(node)
    # The node id only, as stellar-core does: its address may be shared (one host, many validators).
    ctx.overlay.ban(node, None, float(seconds))
    log.info("operator banned node", peer=str(node), seconds=seconds, connected=peer is not None)
    return web.json_response({"banned": str(node), "seconds": seconds, "dropped": peer is not None})


async def unban(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    body = await _json_body(request)
    key = _address_param(body["address"]) if "address" in body else _node_param(ctx, body)
    was = ctx.overlay.is_banned(key)
    ctx.overlay.unban(key)
    log.info("operator unbanned", key=str(key), was_banned=was)
    return web.json_response({"unbanned": str(key), "was_banned": was})


async def droppeer(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    body = await _json_body(request)
    node = _node_param(ctx, body)
    also_ban = body.get("ban", False)
    if not isinstance(also_ban, bool):
        raise _BadRequest("ban must be true or false")
    peer = ctx.overlay.peer(node)
    if peer is None:
        return web.json_response({"error": f"not connected to {node}", "node": str(node)}, status=404)
    if also_ban:
        ctx.overlay.ban(node)
    else:
        peer.close("dropped by the operator")
    log.info("operator dropped peer", peer=str(node), banned=also_ban)
    return web.json_response({"dropped": str(node), "banned": also_ban})


async def log_levels(request: web.Request) -> web.Response:
    return web.json_response({"levels": logs.levels()})


async def set_log_level(request: web.Request) -> web.Response:
    body = await _json_body(request)
    level, logger = body.get("level"), body.get("logger", "")
    if not isinstance(logger, str) or (level is not None and not isinstance(level, str)):
        raise _BadRequest("level must be a level name or null, logger a logger name")
    try:
        logs.set_level(level, logger)
    except ScpdError as exc:
        raise _BadRequest(str(exc)) from None
    log.warning("log level changed", logger=logger or "(default)", level=level)
    return web.json_response({"levels": logs.levels()})


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


class _BadRequest(ScpdError):
    """An admin request the node refuses; answered 400 with its message."""


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(reason="send a JSON object with Content-Type: application/json")
    try:
        body = await request.json()
    except ValueError:
        raise _BadRequest("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _BadRequest("the body must be a JSON object")
    return body


def _node_param(ctx: NodeContext, body: Mapping[str, Any]) -> NodeID:
    """``node``: a strkey, or the ``[[validators]] name`` of a configured validator."""
    text = body.get("node")
    if not isinstance(text, str):
        raise _BadRequest("node must be a G... public key or a configured validator name")
    for v in ctx.config.validators:
        if ctx.config.name_of(v.node_id) == text:
            return v.node_id
    try:
        return NodeID.from_strkey(text)
    except (ScpdError, ValueError):
        raise _BadRequest(f"node {text!r} is neither a public key nor a configured validator name") from None


def _address_param(text: object) -> PeerAddress:
    if isinstance(text, str):
        host, _, port = text.rpartition(":")
        try:
            return PeerAddress(host, int(port))
        except (ScpdError, ValueError):
            pass
    raise _BadRequest("address must be host:port")


@web.middleware
async def _bad_requests(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except _BadRequest as exc:
        log.info("admin request refused", path=request.path, reason=str(exc))
        return web.json_response({"error": str(exc), "status": 400}, status=400)


_ROUTES: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
    "/info": info,
    "/quorum": quorum,
    "/scp": scp,
    "/peers": peers,
    "/bans": bans,
    "/ll": log_levels,
}

_ACTIONS: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
    "/ll": set_log_level,
    "/ban": ban,
    "/unban": unban,
    "/droppeer": droppeer,
}


def add_routes(app: web.Application, ctx: NodeContext) -> None:
    app.middlewares.append(_bad_requests)
    for path, handler in _ROUTES.items():
        app.router.add_get(path, handler)
    for path, handler in _ACTIONS.items():
        app.router.add_post(path, handler)


def _statement_summary(env: SCPEnvelope, value_str: Callable[[bytes], str]) -> dict[str, object]:
    """A short JSON-able description of a statement, for the admin API."""
    st = env.statement
    p = st.pledges
    out: dict[str, object] = {"slot": st.slot_index, "type": st.type.name}
    if isinstance(p, SCPNomination):
        out["votes"] = [value_str(v) for v in p.votes]
        out["accepted"] = [value_str(v) for v in p.accepted]
    elif isinstance(p, SCPPrepare):
        out["ballot"] = [p.ballot.counter, value_str(p.ballot.value)]
        out["prepared"] = None if p.prepared is None else [p.prepared.counter, value_str(p.prepared.value)]
        out["n_c"], out["n_h"] = p.n_c, p.n_h
    elif isinstance(p, SCPConfirm):
        out["ballot"] = [p.ballot.counter, value_str(p.ballot.value)]
        out["n_prepared"], out["n_commit"], out["n_h"] = p.n_prepared, p.n_commit, p.n_h
    else:
        out["commit"] = [p.commit.counter, value_str(p.commit.value)]
        out["n_h"] = p.n_h
    return out
