"""Transactions in, ledgers out: ``POST /tx``, ``POST /txs``, ``GET /tx/{id}``, ``GET /ledger/...``.

``POST /tx`` takes one opaque transaction: the raw bytes as the body
(``application/octet-stream`` or anything else), or base64 text when the
content type is ``application/base64`` or the query has ``encoding=base64``.
``POST /txs`` takes many at once, one base64 transaction per line, and
answers a list in the same order (what the benchmark and bulk clients use;
one request per transaction costs more than the consensus it feeds).

Every answer names the transaction by its id (SHA-256, hex) and says what
became of it: ``queued`` (202), ``already-known`` (200), or ``refused`` with
a machine-readable ``reason`` and a 4xx/5xx status: ``empty`` (400),
``too-large`` (413), ``queue-full`` (503). Accepted transactions are flooded
to the peers and nominated from the next slot on; nothing accepted is dropped
(see scpd.nodecore.txqueue).

Ledger reads may touch megabytes (a full tx set), so they run in a worker
thread; the store's reads use their own connection and never wait for a
ledger commit in progress.
"""

from __future__ import annotations

import asyncio
import base64
import binascii

from aiohttp import web

from scpd.errors import LedgerError
from scpd.node.ledger import LedgerStore
from scpd.nodecore.txqueue import AddResult, Outcome, Refusal
from scpd.nodecore.values import LedgerRecord
from scpd.operator.http_api import CONTEXT_KEY, NodeContext

__all__ = ["BASE64_CONTENT_TYPE", "MAX_BATCH_BODY", "MAX_BATCH_TXS", "add_routes"]

BASE64_CONTENT_TYPE = "application/base64"
MAX_BATCH_TXS = 10_000
MAX_BATCH_BODY = 32 << 20
MAX_SLOT = 2**63 - 1  # the store's integer range (SQLite)

_REFUSAL_STATUS = {Refusal.EMPTY: 400, Refusal.TOO_LARGE: 413, Refusal.QUEUE_FULL: 503}


def _error(status: int, reason: str, detail: str) -> web.Response:
    return web.json_response({"status": "error", "reason": reason, "detail": detail}, status=status)


def _result_json(result: AddResult) -> dict[str, object]:
    out: dict[str, object] = {"id": result.tx_id.hex(), "status": result.outcome.value}
    if result.refusal is not None:
        out["reason"] = result.refusal.value
        out["detail"] = result.detail
    return out


def _status_of(result: AddResult) -> int:
    if result.outcome is Outcome.QUEUED:
        return 202
    if result.outcome is Outcome.ALREADY_KNOWN:
        return 200
    assert result.refusal is not None
    return _REFUSAL_STATUS[result.refusal]


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """The body, or None when it is longer than ``limit`` (read no further than that)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(1 << 16):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def post_tx(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT_KEY]
    max_tx = ctx.config.ledger.max_tx_size
    as_base64 = request.content_type == BASE64_CONTENT_TYPE or request.query.get("encoding") == "base64"
    body = await _read_limited(request, (max_tx * 4 // 3 + 8) if as_base64 else max_tx)
    if body is None:
        return _error(413, Refusal.TOO_LARGE.value, f"more than the limit of {max_tx} bytes per transaction")
    if as_base64:
        try:
            body = base64.b64decode(body.strip(), validate=True)
        except (binascii.Error, ValueError):
            return _error(400, "bad-base64", "the body is not valid base64")
    try:
        [result] = await ctx.herder.accept_transactions([body])
    except LedgerError as exc:
        return _error(503, "storage", f"the transaction could not be stored: {exc}")
    return web.json_response(_result_json(result), status=_status_of(result))


async def post_txs(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT_KEY]
    body = await _read_limited(request, MAX_BATCH_BODY)
    if body is None:
        return _error(413, "too-large", f"a batch body is at most {MAX_BATCH_BODY} bytes")
    lines = [line for line in body.split(b"\n") if line.strip()]
    if len(lines) > MAX_BATCH_TXS:
        return _error(413, "too-many", f"at most {MAX_BATCH_TXS} transactions per batch")
    try:
        txs = [base64.b64decode(line.strip(), validate=True) for line in lines]
    except (binascii.Error, ValueError):
        return _error(400, "bad-base64", "a line is not valid base64")
    try:
        results = [_result_json(r) for r in await ctx.herder.accept_transactions(txs)]
    except LedgerError as exc:
        return _error(503, "storage", f"the transactions could not be stored: {exc}")
    return web.json_response({"results": results})


async def get_tx(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT_KEY]
    text = request.match_info["id"]
    try:
        tx_id = bytes.fromhex(text)
    except ValueError:
        tx_id = b""
    if len(tx_id) != 32:
        return _error(400, "bad-id", "a transaction id is 64 hex digits")
    slot = ctx.store.get_tx(tx_id)
    if slot is not None:
        return web.json_response({"id": text.lower(), "status": "included", "slot": slot})
    if tx_id in ctx.herder.txqueue:
        return web.json_response({"id": text.lower(), "status": "queued"})
    return web.json_response({"id": text.lower(), "status": "unknown"}, status=404)


def _describe(store: LedgerStore, record: LedgerRecord | None, bodies: bool) -> dict[str, object] | None:
    if record is None:
        return None
    return record.describe(store.proofs(record.slot), bodies=bodies)


async def get_ledger(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT_KEY]
    store = ctx.store
    which = request.match_info["slot"]
    bodies = request.query.get("bodies") in ("1", "true", "yes")
    if which == "latest":
        found = await asyncio.to_thread(lambda: _describe(store, store.latest(), bodies))
    else:
        # isascii first: str.isdigit also holds for "²" and "①", which int() refuses.
        slot = int(which) if which.isascii() and which.isdigit() and len(which) <= 20 else -1
        if not 0 <= slot <= MAX_SLOT:
            return _error(400, "bad-slot", f"a slot is an integer in 0..{MAX_SLOT} or 'latest'")
        found = await asyncio.to_thread(lambda: _describe(store, store.get(slot), bodies))
    if found is None:
        return _error(404, "no-ledger", f"no ledger {which} here (the chain ends at slot {ctx.herder.tip.slot})")
    return web.json_response(found)


def add_routes(app: web.Application, ctx: NodeContext) -> None:
    app.router.add_post("/tx", post_tx)
    app.router.add_post("/txs", post_txs)
    app.router.add_get("/tx/{id}", get_tx)
    app.router.add_get("/ledger/{slot}", get_ledger)
