"""``GET /events`` (server-sent events) and the live status page at ``GET /``.

The stream sends what the ``NodeWatch`` publishes (see ``events.py``):
``ledger``, ``member``, ``sync``, plus ``dropped`` when this reader was too
slow and lost events. A comment line every ``KEEPALIVE_SECONDS`` keeps
proxies from closing an idle stream. A reader whose socket takes longer
than ``WRITE_TIMEOUT_SECONDS`` to accept a write is disconnected: its
handler is the only thing that waits for it, and the hub has already
dropped its oldest events rather than buffer more.

The status page is three static files shipped in the package
(``scpd/operator/static``): plain HTML, CSS and JavaScript that read the
JSON endpoints once and then follow ``/events``; no build step.
"""

from __future__ import annotations

import asyncio
import json
from importlib import resources

from aiohttp import web

from scpd.operator.events import EventHub, Subscription
from scpd.operator.http_api import CONTEXT_KEY, NodeContext

__all__ = ["add_routes"]

KEEPALIVE_SECONDS = 15.0
WRITE_TIMEOUT_SECONDS = 30.0
STATIC_FILES = {
    "index.html": "text/html",
    "status.js": "text/javascript",
    "status.css": "text/css",
}


async def events(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT_KEY]
    hub = ctx.watch.hub
    sub = hub.subscribe()
    if sub is None:
        return web.json_response({"error": f"at most {hub.max_clients} event readers"}, status=503)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    _count_clients(ctx, hub)
    try:
        await response.prepare(request)
        await _write(response, b"retry: 2000\n\n")
        await _follow(response, sub)
    except (ConnectionError, TimeoutError):
        pass  # the reader went away or stopped reading: nothing more to send it
    finally:
        hub.unsubscribe(sub)
        _count_clients(ctx, hub)
    return response


async def _follow(response: web.StreamResponse, sub: Subscription) -> None:
    while not sub.closed:
        try:
            async with asyncio.timeout(KEEPALIVE_SECONDS):
                await sub.wake.wait()
        except TimeoutError:
            await _write(response, b": keep-alive\n\n")
            continue
        batch = sub.take()
        if sub.unreported_drops:
            data = json.dumps({"dropped": sub.unreported_drops, "total": sub.dropped})
            sub.unreported_drops = 0
            await _write(response, f"event: dropped\ndata: {data}\n\n".encode())
        if batch:
            await _write(response, b"".join(event.encode() for event in batch))


async def _write(response: web.StreamResponse, data: bytes) -> None:
    async with asyncio.timeout(WRITE_TIMEOUT_SECONDS):
        await response.write(data)


def _count_clients(ctx: NodeContext, hub: EventHub) -> None:
    if ctx.metrics is not None:
        ctx.metrics.events_clients.set(hub.clients)


def _static(name: str) -> web.Response:
    body = resources.files("scpd.operator").joinpath("static", name).read_bytes()
    return web.Response(body=body, content_type=STATIC_FILES[name], charset="utf-8")


async def index(request: web.Request) -> web.Response:
    return _static("index.html")


async def static_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        raise web.HTTPNotFound()
    return _static(name)


def add_routes(app: web.Application, ctx: NodeContext) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static_file)
    app.router.add_get("/events", events)

    async def close_streams(app: web.Application) -> None:
        ctx.watch.hub.close()

    app.on_shutdown.append(close_streams)
