"""``scpd run`` (the daemon's own code) with one loop callback that spins, for tests/test_watchdog.py.

Usage: ``python blocking_node.py CONFIG SECONDS``. Half a second after the node
started, a callback on its event loop spins for SECONDS in pure Python, as a
runaway loop in the consensus core would: nothing else runs on the loop meanwhile.
The spin is injected through ``run_node``'s ``on_started`` hook, so the node
itself carries no test-only switch.
"""

from __future__ import annotations

import asyncio
import sys
import time

from scpd.cli.run_cmd import run_event_loop
from scpd.node.herder import Herder
from scpd.node.overlay.overlay import Overlay
from scpd.operator.config import load_config
from scpd.operator.daemon import run_node
from scpd.operator.logs import configure


def block_the_loop_for(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def main() -> int:
    config, seconds = sys.argv[1], float(sys.argv[2])
    cfg = load_config(config)
    configure(cfg.log.format, cfg.log.level, node=str(cfg.node_id))

    def on_started(herder: Herder, overlay: Overlay) -> None:
        asyncio.get_running_loop().call_later(0.5, block_the_loop_for, seconds)

    return run_event_loop(run_node(cfg, on_started=on_started))


if __name__ == "__main__":
    sys.exit(main())
