"""The transaction and ledger HTTP API, and ``scpd submit``, against a real one-validator node."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from netutil import REPO, Network, wait_for


def _call(url: str, data: bytes | None = None, content_type: str = "application/octet-stream") -> tuple[int, Any]:
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _up(url: str) -> bool:
    try:
        return _call(f"{url}/healthz")[0] == 200
    except OSError:
        return False


def test_submit_query_include_and_limits(tmp_path: Path) -> None:
    extra = "[ledger]\nmax_tx_size = 300\nmax_queue_txs = 3\nmax_tx_set_size = 1024\nmax_tx_count = 2\n"
    with Network(tmp_path, 1, slot_interval=0.5, extra_config=extra) as net:
        node = net.nodes[0]
        url = node.http_url
        wait_for(lambda: _up(url), 30, "the HTTP API")
        txs = [bytes([i]) * 250 for i in range(1, 4)]
        answers = [_call(f"{url}/tx", tx) for tx in txs]
        assert [a[1]["status"] for a in answers] == ["queued"] * 3, answers
        assert [a[0] for a in answers] == [202] * 3
        assert [a[1]["id"] for a in answers] == [hashlib.sha256(tx).hexdigest() for tx in txs]
        # The same transaction again: already known (queued or included by now).
        status, again = _call(f"{url}/tx", base64.b64encode(txs[0]), "application/base64")
        assert (status, again["status"], again["id"]) == (200, "already-known", answers[0][1]["id"])
        status, big = _call(f"{url}/tx", b"x" * 301)
        assert (status, big["status"], big["reason"]) == (413, "error", "too-large")
        status, bad = _call(f"{url}/tx?encoding=base64", b"not base64!")
        assert (status, bad["reason"]) == (400, "bad-base64")

        # Every acknowledged transaction ends up in a ledger, exactly once.
        def included(tx: bytes) -> bool:
            return _call(f"{url}/tx/{hashlib.sha256(tx).hexdigest()}")[1]["status"] == "included"

        wait_for(lambda: all(included(tx) for tx in txs), 30, "inclusion of the three transactions")
        slots = {_call(f"{url}/tx/{hashlib.sha256(tx).hexdigest()}")[1]["slot"] for tx in txs}
        found: list[str] = []
        for slot in slots:
            status, ledger = _call(f"{url}/ledger/{slot}")
            assert status == 200 and ledger["slot"] == slot
            assert ledger["proofs"], "a ledger carries its EXTERNALIZE proofs"
            found += [t["id"] for t in ledger["transactions"]]
        assert sorted(found) == sorted(hashlib.sha256(tx).hexdigest() for tx in txs)

        status, latest = _call(f"{url}/ledger/latest")
        assert status == 200 and latest["slot"] >= max(slots)
        assert _call(f"{url}/ledger/99999999")[0] == 404
        assert _call(f"{url}/ledger/abc")[0] == 400
        assert _call(f"{url}/tx/{'00' * 32}") == (404, {"id": "00" * 32, "status": "unknown"})
        assert _call(f"{url}/tx/xyz")[0] == 400

        # Queue full: more than 3 waiting at once is refused with 503 and a reason.
        batch = b"\n".join(base64.b64encode(bytes([9, i]) * 125) for i in range(12))
        status, many = _call(f"{url}/txs", batch, "text/plain")
        assert status == 200
        outcomes = [r["status"] for r in many["results"]]
        assert outcomes.count("queued") <= 3 and "refused" in outcomes
        assert {r["reason"] for r in many["results"] if r["status"] == "refused"} == {"queue-full"}
        queued = [bytes([9, i]) * 125 for i, r in enumerate(many["results"]) if r["status"] == "queued"]
        wait_for(lambda: all(included(tx) for tx in queued), 30, "inclusion of the queued batch")

        # scpd submit: file and stdin.
        tx_file = tmp_path / "tx.bin"
        tx_file.write_bytes(b"\x05" * 100)
        out = subprocess.run(
            [sys.executable, "-m", "scpd", "submit", "--node", url, str(tx_file)],
            capture_output=True,
            cwd=REPO,
            timeout=30,
        )
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["id"] == hashlib.sha256(b"\x05" * 100).hexdigest()
        out = subprocess.run(
            [sys.executable, "-m", "scpd", "submit", "--node", url, "-"],
            input=b"y" * 400,
            capture_output=True,
            cwd=REPO,
            timeout=30,
        )
        assert out.returncode == 1 and json.loads(out.stdout)["reason"] == "too-large"
        out = subprocess.run(
            [sys.executable, "-m", "scpd", "submit", "--node", "http://127.0.0.1:1", str(tx_file)],
            capture_output=True,
            cwd=REPO,
            timeout=30,
        )
        assert out.returncode == 2 and out.stderr.decode().startswith("scpd: error: ")
        assert not net.errors()
