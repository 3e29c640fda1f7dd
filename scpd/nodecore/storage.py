"""Whether the node's writes reach the disk: the bookkeeping behind storage retries and health.

Pure: the caller passes the time and does the waiting (the node core arms a
retry timer for the delay it returns).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StorageHealth"]


@dataclass(slots=True)
class _Trouble:
    error: str
    since: float
    in_a_row: int


class StorageHealth:
    """Whether the node's writes reach the disk, and when to retry one that did not.

    A failed ledger or own-envelope write (:class:`StorageError`: disk full, I/O
    error) is not given up: the writer keeps it and retries after a growing
    pause (``RETRY_INITIAL`` doubling up to ``RETRY_MAX`` seconds, so a node
    resumes within a few seconds of space coming back), and meanwhile the node
    reports the trouble (``/readyz``, ``scpd_storage_failing``). Each kind of
    write is tracked apart: a small write that still fits says nothing about
    a ledger that does not. Pure bookkeeping: the caller passes the time and
    does the waiting.
    """

    RETRY_INITIAL = 0.25
    RETRY_MAX = 5.0

    def __init__(self) -> None:
        self._failing: dict[str, _Trouble] = {}

    def failed(self, kind: str, error: str, now: float) -> float:
        """Record a failed write of ``kind``; returns the seconds to wait before retrying it."""
        trouble = self._failing.get(kind)
        if trouble is None:
            trouble = self._failing[kind] = _Trouble(error, now, 0)
        trouble.error = error
        trouble.in_a_row += 1
        return float(min(self.RETRY_MAX, self.RETRY_INITIAL * 2 ** min(trouble.in_a_row - 1, 32)))

    def succeeded(self, kind: str) -> float | None:
        """Record a write of ``kind`` that went through; returns when its trouble began (None: there was none)."""
        trouble = self._failing.pop(kind, None)
        return None if trouble is None else trouble.since

    @property
    def ok(self) -> bool:
        return not self._failing

    @property
    def problem(self) -> str | None:
        """The failure that began first, as ``kind: error``, or None while every write goes through."""
        if not self._failing:
            return None
        kind, trouble = min(self._failing.items(), key=lambda kv: kv[1].since)
        return f"{kind}: {trouble.error}"

    @property
    def since(self) -> float | None:
        return min((t.since for t in self._failing.values()), default=None)
