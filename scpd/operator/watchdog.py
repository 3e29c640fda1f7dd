"""The loop watchdog: a blocked event loop is reported, and a stop request is always obeyed.

Theory of operation
-------------------
Everything the node does runs on one event loop (rule 5 of docs/architecture.md), so one
callback that spins or blocks silences the whole node: no consensus, no
``/healthz``, no reaction to SIGTERM. The watchdog lives outside the loop:

* The loop **beats**: a callback every ``BEAT`` seconds records when it ran
  and how late it ran (``scpd_event_loop_lag_seconds``).
* A **thread** checks the beat every ``BEAT`` seconds. When the loop has not
  beaten for ``BLOCKED_AFTER`` seconds it logs one ``event loop blocked``
  line (error) carrying the loop thread's current stack
  (``sys._current_frames``): the place to look. It counts the episode in
  ``scpd_event_loop_blocked_total`` and logs ``event loop unblocked`` (with how
  long) once the loop beats again.
* SIGTERM and SIGINT are caught with a plain Python signal handler, not the
  loop's: the interpreter runs such a handler in the main thread between
  bytecodes, even while a loop callback spins, whereas the loop's own
  signal handling waits for the loop. The handler only sets a flag; the
  thread then asks the loop to stop (``call_soon_threadsafe``), which a
  healthy loop does gracefully in a few seconds. If the process is still
  alive ``STOP_DEADLINE`` seconds after the signal while its loop is blocked
  (or ``STOP_DEADLINE_RUNNING`` seconds after it, however busy the loop: a
  stop merely slowed by an overloaded machine is left to finish), the thread
  logs ``stop deadline passed`` with the loop's stack and ends the process
  (``os._exit(1)``). Nothing durable is lost by that: every write is one
  SQLite transaction, and own envelopes are on disk before they are sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from types import FrameType
from typing import Any

import structlog

from scpd.node.metrics import Metrics

__all__ = ["BEAT", "BLOCKED_AFTER", "STOP_DEADLINE", "STOP_DEADLINE_RUNNING", "LoopWatchdog"]

log = structlog.get_logger("scpd.watchdog")

BEAT = 0.1
# A slot's work is milliseconds; two seconds without a beat is a loop that is not doing its job (one
# second can be a mere scheduling gap on an overloaded machine).
BLOCKED_AFTER = 2.0
# A blocked loop never stops by itself: end the process within the 10 s an operator may expect.
STOP_DEADLINE = 8.0
# A loop that still runs is stopping, maybe slowly: wait longer, within the unit's 30 s stop budget.
STOP_DEADLINE_RUNNING = 25.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class LoopWatchdog:
    """Watch the running loop from a thread; create on the loop's thread, then :meth:`start`."""

    def __init__(
        self,
        metrics: Metrics,
        on_stop: Callable[[], None],
        *,
        blocked_after: float = BLOCKED_AFTER,
        stop_deadline: float = STOP_DEADLINE,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._metrics = metrics
        self._on_stop = on_stop
        self._blocked_after = blocked_after
        self._stop_deadline = stop_deadline
        self._last_beat = time.monotonic()
        self._beat_handle: Any = None
        self._signalled = threading.Event()
        self._closed = threading.Event()
        self._previous: dict[int, Any] = {}
        self._thread = threading.Thread(target=self._watch, name="scpd-watchdog", daemon=True)

    def start(self) -> None:
        self._beat(time.monotonic())
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        self._thread.start()

    def close(self) -> None:
        """Stop watching and give the signals back to their previous handlers."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        if self._beat_handle is not None:
            self._beat_handle.cancel()
        self._closed.set()
        if self._thread.is_alive():
            self._thread.join(2 * BEAT + 1.0)

    # -- on the loop ------------------------------------------------------------

    def _beat(self, expected: float) -> None:
        now = time.monotonic()
        self._metrics.event_loop_lag.observe(max(0.0, now - expected))
        self._last_beat = now
        self._beat_handle = self._loop.call_later(BEAT, self._beat, now + BEAT)

    # -- in the main thread, between bytecodes ------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signalled.set()

    # -- in the watchdog thread ---------------------------------------------------

    def _watch(self) -> None:
        blocked_since: float | None = None
        signalled_at: float | None = None
        while not self._closed.wait(BEAT):
            now = time.monotonic()
            if signalled_at is None and self._signalled.is_set():
                signalled_at = now
                self._ask_loop_to_stop()
            silent = now - self._last_beat
            if blocked_since is None and silent > self._blocked_after:
                blocked_since = self._last_beat
                self._metrics.event_loop_blocked.inc()
                log.error("event loop blocked", seconds=round(silent, 3), stack=self._loop_stack())
            elif blocked_since is not None and silent <= self._blocked_after:
                log.warning("event loop unblocked", blocked_seconds=round(self._last_beat - blocked_since, 3))
                blocked_since = None
            if signalled_at is not None and self._past_deadline(now - signalled_at, blocked_since is not None):
                log.error(
                    "stop deadline passed; exiting now",
                    seconds=round(now - signalled_at, 3),
                    stack=self._loop_stack(),
                )
                os._exit(1)

    def _past_deadline(self, waited: float, blocked: bool) -> bool:
        """A blocked loop gets ``STOP_DEADLINE`` seconds to stop; a running one ``STOP_DEADLINE_RUNNING``."""
        return waited >= (self._stop_deadline if blocked else STOP_DEADLINE_RUNNING)

    def _ask_loop_to_stop(self) -> None:
        # A closed loop raises RuntimeError: the process is on its way out already.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._on_stop)

    def _loop_stack(self) -> str:
        frame = sys._current_frames().get(self._loop_thread)
        return "" if frame is None else "".join(traceback.format_stack(frame))
