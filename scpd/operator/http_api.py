"""The node's HTTP server (aiohttp): admin API, transactions, ledger, metrics.

Theory of operation: the daemon builds one ``NodeContext`` (the running
herder, overlay, store and configuration) and calls ``start_http`` with it.
Routes live in one module per concern, each exposing ``add_routes(app, ctx)``
and listed in ``ROUTE_MODULES``; handlers read the context and answer JSON,
and the ``json_errors`` middleware makes every error answer JSON as well
(a 404 for an unknown path, a 405, a body too large, an unexpected failure).
They run on the node's event loop, so anything slow (a long ledger query, a
quorum analysis) goes to a worker thread with ``asyncio.to_thread``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from scpd.node.herder import Herder
from scpd.node.ledger import LedgerStore
from scpd.node.metrics import Metrics
from scpd.node.overlay.overlay import Overlay
from scpd.operator.config_node import NodeConfig
from scpd.operator.watch import NodeWatch

__all__ = ["CONTEXT_KEY", "ROUTE_MODULES", "NodeContext", "build_app", "start_http"]

# Modules under scpd.operator, each with add_routes(app, ctx).
ROUTE_MODULES: list[str] = ["api_health", "api_admin", "api_metrics", "api_ledger", "api_events"]


@dataclass(frozen=True, slots=True)
class NodeContext:
    """What the HTTP handlers may look at and act on."""

    config: NodeConfig
    herder: Herder
    overlay: Overlay
    store: LedgerStore
    watch: NodeWatch
    metrics: Metrics | None = None


log = structlog.get_logger(__name__)

CONTEXT_KEY: web.AppKey[NodeContext] = web.AppKey("scpd.context", NodeContext)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every non-2xx answer is JSON too: ``{"error": ..., "status": ...}``, whatever raised it."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
        return web.json_response({"error": exc.reason, "status": exc.status}, status=exc.status, headers=headers)
    except Exception as exc:
        log.error("http handler failed", path=request.path, error=repr(exc))
        return web.json_response({"error": "internal error", "status": 500}, status=500)


def build_app(ctx: NodeContext) -> web.Application:
    app = web.Application(client_max_size=ctx.config.ledger.max_tx_size * 2 + 4096, middlewares=[json_errors])
    app[CONTEXT_KEY] = ctx
    for name in ROUTE_MODULES:
        importlib.import_module(f"scpd.operator.{name}").add_routes(app, ctx)
    return app


async def start_http(ctx: NodeContext, host: str, port: int) -> web.AppRunner:
    """Serve the API on ``host:port``; the caller cleans up the returned runner."""
    runner = web.AppRunner(build_app(ctx), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner
