"""The transactions simulated nodes submit, and the values Byzantine nodes forge.

Values are the real ones (``scpd.nodecore.values``): a ``ConsensusValue``
naming a ``TxSet`` by hash, judged by the node core's rules. To make tx sets
differ between nodes, so that a peer's value can only be judged after its tx
set was fetched, every honest node submits :data:`TXS_PER_SLOT` synthetic
transactions of its own when it starts and after each ledger it writes. A
transaction names its node and a per-node sequence number, so no two nodes
ever submit the same one and a restarted node's new ones are new.

Byzantine nodes forge with :func:`forged_tx_set` (a well-formed set that no
honest node proposed) and :data:`JUNK_VALUE` (bytes that are no value at all).
"""

from __future__ import annotations

from scpd.nodecore.values import TxSet

__all__ = ["JUNK_VALUE", "TXS_PER_SLOT", "forged_tx_set", "synthetic_transactions"]

TXS_PER_SLOT = 2
JUNK_VALUE = b"not a consensus value"


def synthetic_transactions(origin: str, first: int, count: int = TXS_PER_SLOT) -> tuple[bytes, ...]:
    """The transactions number ``first`` .. ``first + count - 1`` of node ``origin``."""
    return tuple(f"sim-tx node={origin} n={n}".encode() for n in range(first, first + count))


def forged_tx_set(previous_ledger_hash: bytes, node: int, slot: int) -> TxSet:
    """A canonical set on the right ledger whose transactions nobody submitted."""
    return TxSet.canonical(previous_ledger_hash, (f"forged-tx node={node} slot={slot}".encode(),))
