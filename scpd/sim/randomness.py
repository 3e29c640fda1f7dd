"""Seeded random streams, one per concern.

Each concern (network faults, Byzantine choices, scenario generation, node
keys) draws from its own ``random.Random`` derived from the run's seed and
the concern's name. Adding a draw in one concern therefore never shifts the
numbers another concern sees, and the global ``random`` module is never used.
"""

from __future__ import annotations

import hashlib
import random

__all__ = ["derive_bytes", "derive_rng"]


def derive_bytes(seed: int, concern: str, size: int = 32) -> bytes:
    """``size`` bytes (at most 32) fixed by ``seed`` and ``concern``."""
    return hashlib.sha256(f"scpd-sim/{seed}/{concern}".encode()).digest()[:size]


def derive_rng(seed: int, concern: str) -> random.Random:
    """A private ``random.Random`` for one concern of one seeded run."""
    return random.Random(int.from_bytes(derive_bytes(seed, concern), "big"))
