"""The daemon: one validator (or watcher) process, wired from its configuration.

``run_node`` locks the data directory (one node per directory, see
``scpd.node.datadir``), opens the ledger store and re-walks its latest ledgers
(an edited or damaged chain stops it there), builds the herder (consensus
driver) and the overlay (TCP peers), starts them, and waits for SIGTERM or
SIGINT. On a signal it stops the cadence and timers first, then the overlay
(flushing what is queued), then closes the store, so every write in progress
completes: a graceful stop loses nothing and exits 0 within a few seconds.
Signals reach it through the loop watchdog (``scpd.operator.watchdog``), which
also reports a blocked loop and ends the process if a stop cannot happen in time.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from aiohttp import web

from scpd.base.quorum import all_validators
from scpd.errors import LedgerError, ScpdError
from scpd.node.datadir import DataDirLock
from scpd.node.herder import ExternalizedSlot, Herder
from scpd.node.ledger import START_CHECK_LEDGERS, LedgerStore
from scpd.node.metrics import Metrics
from scpd.node.overlay.overlay import Overlay
from scpd.node.overlay.settings import OverlaySettings
from scpd.nodecore.messages import PeerAddress
from scpd.nodecore.settings import CoreSettings
from scpd.operator.api_metrics import start_metrics_http
from scpd.operator.config_addresses import PeerAddress as ConfigAddress
from scpd.operator.config_node import NodeConfig
from scpd.operator.events import EventHub
from scpd.operator.http_api import NodeContext, start_http
from scpd.operator.quorum_log import quorum_logger
from scpd.operator.status import member_states, state_counts
from scpd.operator.watch import NodeWatch
from scpd.operator.watchdog import LoopWatchdog

__all__ = ["herder_settings", "overlay_settings", "run_node"]

log = structlog.get_logger("scpd.daemon")

# With [ledger] record_envelopes: every received SCP envelope (scpd.node.envelope_log.EnvelopeLog).
RECEIVED_ENVELOPES_FILE = "received-envelopes.bin"


def herder_settings(cfg: NodeConfig) -> CoreSettings:
    """The node core's settings: the ``[timers]``, ``[ledger]`` and ``[intake]`` keys under their own names."""
    ledger = cfg.ledger.model_dump(exclude={"record_envelopes"})  # the shell's, not the core's
    return CoreSettings(
        **cfg.timers.model_dump(),
        **ledger,
        **cfg.intake.model_dump(),
        max_message_size=cfg.overlay.max_message_size,
    )


def _address(a: ConfigAddress) -> PeerAddress:
    return PeerAddress(a.host, a.port)


def overlay_settings(cfg: NodeConfig) -> OverlaySettings:
    """``[overlay]`` as written (its keys are the settings' names), plus what the rest of the file decides."""
    return OverlaySettings(
        **cfg.overlay.model_dump(exclude={"peers"}),
        peers=tuple(_address(a) for a in cfg.peers),
        network_passphrase=cfg.network_passphrase,
        preferred_nodes=frozenset(all_validators(cfg.quorum_set)),
    )


def _log_ledger(done: ExternalizedSlot) -> None:
    rec = done.record
    log.info(
        "ledger closed",
        slot=done.slot,
        value_hash=hashlib.sha256(rec.value.to_xdr()).hexdigest(),
        ledger_hash=rec.hash.hex(),
        txs=done.tx_count,
        close_time=rec.close_time,
        seconds=None if done.seconds_to_consensus is None else round(done.seconds_to_consensus, 4),
    )


def _on_externalized(done: ExternalizedSlot, watch: NodeWatch) -> None:
    _log_ledger(done)
    watch.ledger_closed(done)


_T = TypeVar("_T")


def _host_port(address: ConfigAddress) -> tuple[str, int]:
    return address.host, address.port


async def _listening(what: str, address: ConfigAddress, start: Awaitable[_T]) -> _T:
    """Await a listener's start, turning a bind failure into one clear error."""
    try:
        return await start
    except OSError as exc:
        raise ScpdError(f"cannot listen for {what} on {address.host}:{address.port}: {exc.strerror or exc}") from None


async def run_node(cfg: NodeConfig, *, on_started: Callable[[Herder, Overlay], None] | None = None) -> int:
    """Run one node until SIGTERM/SIGINT; returns the process exit code."""
    with DataDirLock.acquire(cfg.data_dir):
        return await _run_locked(cfg, on_started)


def _open_checked(cfg: NodeConfig, metrics: Metrics) -> LedgerStore:
    """Open the ledger and re-walk its latest ledgers; an edited or damaged chain stops the node here."""
    store = LedgerStore.open_data_dir(cfg.data_dir, write_observer=metrics.observe_write)
    try:
        found = store.verify_chain(last=START_CHECK_LEDGERS)
    except BaseException:
        store.close()
        raise
    if found is not None:
        store.close()
        raise LedgerError(f"{store.path}: ledger broken at {found}; see `scpd ledger verify`")
    return store


async def _run_locked(cfg: NodeConfig, on_started: Callable[[Herder, Overlay], None] | None) -> int:
    metrics = Metrics()
    # The quick check reads the whole file and the chain walk hashes 128 ledgers: off the loop.
    store = await asyncio.to_thread(_open_checked, cfg, metrics)
    herder = Herder(
        cfg.keypair,
        cfg.network_id,
        cfg.quorum_set,
        store,
        herder_settings(cfg),
        is_validator=cfg.is_validator,
        on_externalized=lambda done: _on_externalized(done, watch),
        metrics=metrics,
        record_envelopes=cfg.data_dir / RECEIVED_ENVELOPES_FILE if cfg.ledger.record_envelopes else None,
    )
    watch = NodeWatch(cfg, herder, EventHub(on_drop=metrics.events_dropped.inc), metrics)
    watch.status_listeners.append(quorum_logger(cfg, herder))
    overlay = Overlay(cfg.keypair, overlay_settings(cfg), herder.handle_message, watcher=herder.peer_changed)
    herder.attach(overlay)
    metrics.watch(herder, overlay, lambda: state_counts(member_states(cfg, herder)))
    for address in cfg.known_addresses:
        overlay.add_address(_address(address))
    stop = asyncio.Event()
    # SIGTERM / SIGINT set `stop`, through a watchdog that a blocked loop cannot starve.
    watchdog = LoopWatchdog(metrics, stop.set)
    watchdog.start()
    http: web.AppRunner | None = None
    metrics_http: web.AppRunner | None = None
    watching: asyncio.Task[None] | None = None
    ctx = NodeContext(cfg, herder, overlay, store, watch, metrics)
    try:
        # Bind every listener before consensus starts: a port in use stops the node cleanly.
        await _listening("peer connections", cfg.listen, overlay.start())
        if cfg.http_listen is not None:
            http = await _listening("the admin API", cfg.http_listen, start_http(ctx, *_host_port(cfg.http_listen)))
        if cfg.metrics_enabled and cfg.metrics_listen is not None:
            metrics_http = await _listening(
                "metrics", cfg.metrics_listen, start_metrics_http(metrics, *_host_port(cfg.metrics_listen))
            )
        herder.start()
        watching = asyncio.create_task(watch.run(), name="operator-watch")  # cancelled below
        tip = herder.tip
        log.info(
            "node started",
            validator=cfg.is_validator,
            listen=f"{cfg.listen.host}:{overlay.listen_port}",
            ledger=tip.slot,
            peers=len(cfg.peers),
        )
        if on_started is not None:
            on_started(herder, overlay)
        await stop.wait()
        log.info("node stopping")
    finally:
        watchdog.close()
        if watching is not None:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
        if http is not None:
            await http.cleanup()
        if metrics_http is not None:
            await metrics_http.cleanup()
        await herder.stop()
        await overlay.stop()
        store.close()
    log.info("node stopped")
    return 0
