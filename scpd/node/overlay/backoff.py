"""Exponential backoff with jitter for redialing peers.

After ``n`` consecutive failures the next attempt waits
``min(maximum, initial * factor**n)`` scaled by a jitter in [1 - jitter, 1],
so a network of nodes restarting together does not redial in lockstep. The
random source is injectable so tests can make the delays exact.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass(slots=True)
class Backoff:
    initial: float = 0.5
    maximum: float = 60.0
    factor: float = 2.0
    jitter: float = 0.5
    rand: Callable[[], float] = field(default=random.random)

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.maximum < self.initial or self.factor < 1 or not 0 <= self.jitter <= 1:
            raise ValueError("backoff needs 0 < initial <= maximum, factor >= 1 and 0 <= jitter <= 1")

    def delay(self, failures: int) -> float:
        """Seconds to wait before the next attempt after ``failures`` failures in a row."""
        if failures <= 0:
            return 0.0
        exponent = min(failures - 1, 64)
        base = min(self.maximum, self.initial * self.factor**exponent)
        return base * (1.0 - self.jitter * self.rand())
