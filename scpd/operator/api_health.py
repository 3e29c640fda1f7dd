"""``/healthz``: the process is up and its event loop answers."""

from __future__ import annotations

from aiohttp import web

from scpd.operator.http_api import NodeContext


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def add_routes(app: web.Application, ctx: NodeContext) -> None:
    app.router.add_get("/healthz", healthz)
