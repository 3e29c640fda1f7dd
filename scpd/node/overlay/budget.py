"""Byte budgets for answering requests: what a peer may make us send.

A request (GET_TX_SET, GET_SCP_QUORUMSET, GET_SCP_STATE, GET_LEDGERS) costs
the asker a few dozen bytes and may cost us megabytes, so answers are paid
from a budget in bytes, per peer and in total (stellar-core's flow control
grants byte capacity for the same reason). A ``ByteBudget`` is a token bucket
with two ways to earn:

* time: ``rate`` bytes per second, up to ``burst`` (the peers we trust, the
  validators of our quorum set and the configured peers, need tx sets of a
  megabyte every slot);
* traffic: ``ratio`` bytes for each byte the peer sent us, up to ``burst``,
  so a stranger (rate 0) can never make us send more than ``ratio`` times
  what it sent: amplification below 2 with the default ratio.

An answer is refused, not sent in part, when it does not fit what is left;
the asker times out and asks someone else. Pure: the clock is injected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Allowance", "BudgetSettings", "ByteBudget"]


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    """One kind of peer's answer budget: ``rate`` bytes/s and ``ratio`` x bytes received, up to ``burst``."""

    rate: float
    burst: float
    ratio: float = 0.0


class ByteBudget:
    __slots__ = ("_clock", "_last", "_tokens", "settings")

    def __init__(self, settings: BudgetSettings, clock: Callable[[], float], *, full: bool = True) -> None:
        self.settings = settings
        self._clock = clock
        self._last = clock()
        self._tokens = settings.burst if full and settings.rate > 0 else 0.0

    def available(self) -> float:
        """Bytes that may be spent now (negative while an earlier overdraft is paid back)."""
        now = self._clock()
        s = self.settings
        if now > self._last:
            self._tokens = min(s.burst, self._tokens + (now - self._last) * s.rate)
            self._last = now
        return self._tokens

    def earn(self, received: int) -> None:
        """The peer sent us ``received`` bytes."""
        s = self.settings
        if s.ratio:
            self.available()
            self._tokens = min(s.burst, self._tokens + received * s.ratio)

    def spend(self, sent: int) -> None:
        self.available()
        self._tokens -= sent


class Allowance:
    """What one request's answers to ``owner`` may still take: checked and charged message by message."""

    __slots__ = ("budgets", "left", "open", "owner", "refused", "spent")

    def __init__(self, owner: object, budgets: tuple[ByteBudget, ...]) -> None:
        self.owner = owner
        self.budgets = budgets
        self.left = min(b.available() for b in budgets)
        self.open = True
        self.spent = 0
        self.refused = 0

    def take(self, size: int) -> bool:
        """Charge ``size`` bytes if they fit; False (and nothing charged) if not."""
        if size > self.left:
            self.refused += 1
            return False
        self.left -= size
        self.spent += size
        for budget in self.budgets:
            budget.spend(size)
        return True

    def close(self) -> None:
        """The request is answered: anything sent later (a task it spawned) is not an answer to it."""
        self.open = False
