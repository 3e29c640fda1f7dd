"""``/healthz`` (the process is up and its event loop answers) and ``/readyz`` (it should get work).

``/readyz`` answers 200 only when the node is synced with its quorum (see
``status.node_status``) and its writes reach the disk. While ledger or
own-envelope writes fail (disk full, I/O error: the node retries them by
itself) it answers 503 with a ``storage`` object saying why and for how long,
so an orchestrator stops sending work, and an operator sees the cause, without
the node being restarted: it resumes on its own when the disk lets it.
``/healthz`` stays 200 meanwhile, since a restart would not free any space.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from scpd.operator.http_api import CONTEXT_KEY, NodeContext
from scpd.operator.status import node_status


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT_KEY]
    status = node_status(ctx.config, ctx.herder)
    storage = ctx.herder.storage
    body: dict[str, Any] = {"ready": status.state == "synced" and storage.ok, "state": status.state}
    if not storage.ok:
        since = storage.since
        body["storage"] = {
            "error": storage.problem,
            "failing_seconds": None if since is None else round(max(0.0, time.time() - since), 3),
        }
    return web.json_response(body, status=200 if body["ready"] else 503)


def add_routes(app: web.Application, ctx: NodeContext) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
