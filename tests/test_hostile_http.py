"""The HTTP API never answers 5xx, whatever the path, parameters or body (a running node, fuzzed).

Every route the app registers (read from ``build_app``, so routes added later
are fuzzed too) gets hypothesis-made path segments (any Unicode: "²", "①",
huge numbers, percent signs), query strings and bodies, against one real
``scpd`` process over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from netutil import Network, wait_for

from scpd.operator.config import load_config
from scpd.operator.http_api import NodeContext, build_app

pytestmark = pytest.mark.timeout(180)

_PLACEHOLDER = re.compile(r"\{[^}]+\}")


def _status(url: str, method: str, body: bytes | None) -> int:
    req = urllib.request.Request(url, data=body, method=method)
    req.add_header("Content-Type", "application/octet-stream")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            if resp.headers.get_content_type() != "text/event-stream":  # GET /events never ends
                resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _routes(config: Path) -> list[tuple[str, str]]:
    """(method, path template) of every route, from the app the daemon builds."""
    ctx: Any = NodeContext(config=load_config(config), herder=None, overlay=None, store=None, watch=None)  # type: ignore[arg-type]
    app = build_app(ctx)
    out = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        template = info.get("formatter") or info.get("path")
        if template and route.method in ("GET", "POST"):
            out.append((route.method, str(template)))
    return sorted(set(out))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    with Network(tmp_path_factory.mktemp("fuzz"), 1) as net:
        n = net.nodes[0]
        wait_for(lambda: n.last_slot >= 1, 60, "the node's first ledger")
        yield n.http_url, _routes(n.config)


segments = st.one_of(
    st.text(min_size=1, max_size=30),
    st.sampled_from(["²", "①", "٣", "latest", "0", "-1", "18446744073709551616", "9" * 40, "%", "..", " 1"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)
queries = st.dictionaries(
    st.sampled_from(["bodies", "encoding", "limit", "slot", "from", "n", "format", "x"]),
    st.one_of(st.text(max_size=12), st.integers(-(2**70), 2**70).map(str)),
    max_size=3,
)


def test_the_route_list_covers_the_ledger_routes(node: tuple[str, list[tuple[str, str]]]) -> None:
    _, routes = node
    assert ("GET", "/ledger/{slot}") in routes and ("POST", "/tx") in routes


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_route_answers_5xx(node: tuple[str, list[tuple[str, str]]], data: st.DataObject) -> None:
    base, routes = node
    method, template = data.draw(st.sampled_from(routes))
    path = _PLACEHOLDER.sub(lambda _: urllib.parse.quote(data.draw(segments), safe=""), template)
    query = urllib.parse.urlencode(data.draw(queries))
    body = data.draw(st.binary(max_size=200)) if method == "POST" else None
    status = _status(f"{base}{path}?{query}" if query else f"{base}{path}", method, body)
    assert status < 500, f"{method} {path}?{query} answered {status}"


@pytest.mark.parametrize("slot", ["²", "①", "٣", "18446744073709551616", "99999999999999999999"])
def test_odd_slots_are_a_400_not_a_500(node: tuple[str, list[tuple[str, str]]], slot: str) -> None:
    base, _ = node
    assert _status(f"{base}/ledger/{urllib.parse.quote(slot)}", "GET", None) == 400
