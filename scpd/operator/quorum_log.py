"""The periodic quorum line and the ``lost sync`` / ``back in sync`` lines.

Operators diagnose a stalled validator from its logs first (stellar-core's
periodic quorum line and its "lost sync" line are how they do it there), so
the node says how its quorum is doing without being asked:

* ``quorum``: the node's state (``synced`` / ``stuck`` / ``joining``, see
  ``status.node_status``), its last ledger, how many members of its quorum
  set agree / are delayed / missing / disagree (who, for the last two), and
  ``fail_at``: how many more of the members still with us (agreeing or
  delayed) must fail before the failed ones block every slice of ours
  (``fail_with``: one smallest such set; ``fail_at`` is 0 when they already
  do, null when no failure can block us). Every ``slot_interval`` while the
  node is not synced, every ``SYNCED_INTERVAL`` while it is; at warning level
  while ``stuck`` (it had ledgers and lost them), at info otherwise (a
  ``joining`` node has never reached its quorum: the line says who is
  missing, and ``dial failed`` says why). A node that just started is
  expected to be joining: its lines begin once it has been joining for
  ``stale_after`` (three slots, at least 10 s), unless it syncs first.
* ``lost sync`` (warning) when a synced node stops being synced, ``back in
  sync`` (info) when it is synced again; ``in sync`` the first time.

:class:`QuorumLog` decides what to say from the status and the time it is
given (no clock, no I/O), so tests feed it states; on the running node,
:func:`quorum_logger` is fed the status the watch works out every second
(``watch.NodeWatch``: one status a second serves the events and these lines).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

from scpd.base.types import NodeID
from scpd.node.herder import Herder
from scpd.operator.config_node import NodeConfig
from scpd.operator.status import MemberState, NodeStatus, stale_after, state_counts

__all__ = ["SYNCED_INTERVAL", "LogLine", "QuorumLog", "quorum_logger"]

log = structlog.get_logger("scpd.quorum")

SYNCED_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class LogLine:
    level: str  # "info" or "warning"
    event: str
    fields: dict[str, object]


class QuorumLog:
    """What to log about the quorum at each check (see the module docstring)."""

    def __init__(self, label: Callable[[NodeID], str], slot_interval: float, joining_grace: float) -> None:
        self._label = label
        self._slot_interval = slot_interval
        self._joining_grace = joining_grace
        self._first_check: float | None = None
        self._state: str | None = None
        self._ever_synced = False
        self._last_line = float("-inf")

    def lines(self, status: NodeStatus, ledger: int, now: float) -> list[LogLine]:
        out: list[LogLine] = []
        if self._first_check is None:
            self._first_check = now
        synced = status.state == "synced"
        was_synced = self._state == "synced"
        if synced and not was_synced:
            out.append(LogLine("info", "back in sync" if self._ever_synced else "in sync", {"ledger": ledger}))
            self._ever_synced = True
        elif was_synced and not synced:
            out.append(LogLine("warning", "lost sync", {"ledger": ledger, "state": status.state}))
        changed = status.state != self._state
        self._state = status.state
        if status.state == "joining" and now - self._first_check < self._joining_grace:
            return out  # just started: joining is expected, not news
        interval = SYNCED_INTERVAL if synced else self._slot_interval
        if changed or now - self._last_line >= interval:
            self._last_line = now
            level = "warning" if status.state == "stuck" else "info"
            out.append(LogLine(level, "quorum", self._summary(status, ledger)))
        return out

    def _summary(self, status: NodeStatus, ledger: int) -> dict[str, object]:
        by_state: dict[MemberState, list[NodeID]] = {s: [] for s in MemberState}
        for m in status.members:
            by_state[m.state].append(m.node_id)
        fail_with = status.fail_with
        return {
            "state": status.state,
            "ledger": ledger,
            **state_counts(status.members),
            "fail_at": None if fail_with is None else len(fail_with),
            "fail_with": None if fail_with is None else sorted(self._label(n) for n in fail_with),
            "missing_nodes": sorted(self._label(n) for n in by_state[MemberState.MISSING]),
            "disagree_nodes": sorted(self._label(n) for n in by_state[MemberState.DISAGREE]),
        }


def quorum_logger(config: NodeConfig, herder: Herder) -> Callable[[NodeStatus, float], None]:
    """What the running node does with each status the watch works out: log what :class:`QuorumLog` says."""
    slot_interval = config.timers.slot_interval
    quorum_log = QuorumLog(
        lambda n: config.name_of(n) or str(n), slot_interval, joining_grace=stale_after(slot_interval)
    )

    def on_status(status: NodeStatus, now: float) -> None:
        for line in quorum_log.lines(status, herder.tip.slot, now):
            getattr(log, line.level)(line.event, **line.fields)

    return on_status
