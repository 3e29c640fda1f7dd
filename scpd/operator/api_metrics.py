"""``GET /metrics``: the node's Prometheus metrics, in the text exposition format.

Served on the admin server, or, when ``[metrics] port`` is set, on a listener
of its own (``start_metrics_http``) so that Prometheus can reach the metrics
without reaching the admin API. The registry is the node's own (``Metrics``),
never prometheus_client's global one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from scpd.node.metrics import Metrics
from scpd.operator.http_api import NodeContext

__all__ = ["add_routes", "metrics_app", "start_metrics_http"]


def _handler(metrics: Metrics) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def serve(request: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return serve


def add_routes(app: web.Application, ctx: NodeContext) -> None:
    """On the admin server, unless metrics are off or have a listener of their own."""
    cfg = ctx.config
    if ctx.metrics is not None and cfg.metrics_enabled and cfg.metrics_listen is None:
        app.router.add_get("/metrics", _handler(ctx.metrics))


def metrics_app(metrics: Metrics) -> web.Application:
    app = web.Application()
    app.router.add_get("/metrics", _handler(metrics))
    return app


async def start_metrics_http(metrics: Metrics, host: str, port: int) -> web.AppRunner:
    """Serve only /metrics on ``host:port``; the caller cleans up the returned runner."""
    runner = web.AppRunner(metrics_app(metrics), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
