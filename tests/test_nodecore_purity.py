"""The node core stays sans-I/O: importing it loads no event loop, socket, database or thread, and
the import-linter contract that forbids them (run by test_code_quality) cannot quietly be weakened."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Modules only I/O needs. (``time``, ``os`` and ``pathlib`` are loaded by the standard library and
# PyNaCl themselves, so the contract, not this import check, keeps the core from using them.)
IO_MODULES = ("asyncio", "socket", "selectors", "sqlite3", "threading", "subprocess", "random", "structlog", "aiohttp")


def test_importing_the_node_core_loads_no_io_module() -> None:
    probe = (
        "import sys, scpd.nodecore.core, scpd.nodecore.events, scpd.nodecore.actions\n"
        f"print(','.join(m for m in {IO_MODULES!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout.strip() == ""


def test_the_layer_contract_forbids_io_in_the_node_core() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    [pure] = [c for c in contracts if "scpd.nodecore" in c.get("source_modules", ())]
    assert pure["type"] == "forbidden"
    assert {"asyncio", "socket", "sqlite3", "time", "random", "os", "pathlib", "structlog"} <= set(
        pure["forbidden_modules"]
    )
    [layers] = [c for c in contracts if c["type"] == "layers"]
    order = layers["layers"]
    assert order.index("scpd.node") < order.index("scpd.nodecore") < order.index("scpd.scp")
