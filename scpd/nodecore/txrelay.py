"""Which peers get a batch of new transactions: the NEIGHBORS hint for transaction flooding.

Theory of operation
-------------------
Every node sends each transaction new to it to all its peers but the one it
came from (``scpd.nodecore.txflood``). So when we hear a transaction from
peer O, every peer of O other than the one O heard it from gets it from O
itself, and a copy from us could only arrive as a duplicate. On a full mesh
that made each node receive each transaction N - 1 times
(docs/benchmarks.md); with this rule it receives it once.

We skip peer P for O's transactions only when both say so in their last
``NEIGHBORS``: O lists P and P lists O. P's word alone is P's own business
(as for SCP envelopes, docs/protocol.md §4); O's word alone would let a peer
that lies about its connections cut others off from transactions it relays
to us first. Transactions from our own API go to every peer.

Nothing here needs the hint to be fresh for consensus: a transaction a node
misses in the 0.1 s a NEIGHBORS change takes to arrive is still in the
queues of the node it was submitted to and of that node's peers, and any tx
set that carries it is fetched whole by hash. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from scpd.base.types import NodeID

__all__ = ["batch_recipients", "gets_from_origin"]


def gets_from_origin(peer: NodeID, origin: NodeID | None, neighbors: Mapping[NodeID, frozenset[NodeID]]) -> bool:
    """True when ``peer`` has, or hears first hand, the transactions ``origin`` sent us.

    ``origin`` None means our API: nobody else has those. ``neighbors`` maps
    each peer to the nodes it last said (NEIGHBORS) it is connected to.
    """
    if origin is None:
        return False
    if peer == origin:
        return True
    return peer in neighbors.get(origin, ()) and origin in neighbors.get(peer, ())


def batch_recipients(
    origins: Iterable[NodeID | None],
    peers: Iterable[NodeID],
    neighbors: Mapping[NodeID, frozenset[NodeID]],
) -> dict[NodeID, tuple[NodeID | None, ...]]:
    """For each peer, the origins whose gathered transactions it gets, in the order of ``origins``.

    Peers that get nothing are left out. Two peers with the same tuple can
    share one encoding of the batch.
    """
    order = tuple(origins)
    out: dict[NodeID, tuple[NodeID | None, ...]] = {}
    for peer in peers:
        wanted = tuple(o for o in order if not gets_from_origin(peer, o, neighbors))
        if wanted:
            out[peer] = wanted
    return out
