"""Quorum-set shapes for simulated networks, and the faults each tolerates.

A :class:`Topology` is a list of nodes (index, Ed25519 key, quorum set) plus
two promises the property tests rely on: ``byzantine_tolerance``, the number
of nodes that may be Byzantine (or crashed) while every remaining honest node
stays intertwined with every other and the honest nodes together form a
quorum (they are intact), and ``byzantine_candidates``, the nodes among which
those may be chosen. The promise is worked out per shape below from quorum
intersection sizes, and checked by brute force on small instances in
``tests/test_sim_topology.py``.

Keys come from the run's seed, so leader selection differs between seeds
while a seed always rebuilds the same network.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from scpd.base.keys import Keypair
from scpd.base.types import NodeID, SCPQuorumSet
from scpd.errors import UsageError
from scpd.sim.randomness import derive_bytes

__all__ = [
    "TOPOLOGIES",
    "Topology",
    "asymmetric",
    "bft_threshold",
    "build",
    "cycle",
    "node_keys",
    "symmetric",
    "tiered",
]

TOPOLOGIES = ("symmetric", "tiered", "cycle", "asymmetric")


@dataclass(frozen=True)
class Topology:
    name: str
    keys: tuple[Keypair, ...]
    qsets: tuple[SCPQuorumSet, ...]
    byzantine_tolerance: int
    byzantine_candidates: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.keys)

    @property
    def node_ids(self) -> tuple[NodeID, ...]:
        return tuple(k.public_key for k in self.keys)


def bft_threshold(n: int) -> int:
    """The classic BFT quorum size for n nodes: n - floor((n - 1) / 3)."""
    return n - (n - 1) // 3


def node_keys(seed: int, n: int) -> tuple[Keypair, ...]:
    return tuple(Keypair(derive_bytes(seed, f"node-key/{i}")) for i in range(n))


def symmetric(n: int, seed: int, threshold: int | None = None) -> Topology:
    """Every node trusts the same k-of-n set of all nodes.

    Two quorums share at least 2k - n nodes, so safety survives 2k - n - 1
    Byzantine nodes; liveness survives n - k.
    """
    if not 1 <= n <= 1000:
        raise UsageError("symmetric topology: need 1 <= nodes <= 1000")
    k = bft_threshold(n) if threshold is None else threshold
    if not 1 <= k <= n:
        raise UsageError(f"symmetric topology: threshold {k} not in 1..{n}")
    keys = node_keys(seed, n)
    qset = SCPQuorumSet(k, tuple(kp.public_key for kp in keys))
    tolerance = max(0, min(2 * k - n - 1, n - k))
    return Topology("symmetric", keys, (qset,) * n, tolerance, tuple(range(n)))


def tiered(n: int, seed: int, per_org: int = 3, inner_threshold: int = 2, top_threshold: int | None = None) -> Topology:
    """Organisations of ``per_org`` nodes; each node trusts t-of-orgs of (i-of-org).

    ``n`` must be a multiple of ``per_org``; the default top threshold is the
    BFT threshold over the organisations (5 of 7 for 21 nodes). Two quorums
    share at least 2T - orgs organisations and 2i - per_org nodes in each, so
    safety survives (2T - orgs)(2i - per_org) - 1 Byzantine nodes; taking an
    organisation down costs per_org - i + 1 nodes and orgs - T + 1 of them must
    go to block liveness.
    """
    if per_org < 1 or n % per_org or n < per_org:
        raise UsageError(f"tiered topology: nodes ({n}) must be a positive multiple of {per_org}")
    orgs = n // per_org
    top = bft_threshold(orgs) if top_threshold is None else top_threshold
    if not (1 <= inner_threshold <= per_org and 1 <= top <= orgs):
        raise UsageError("tiered topology: thresholds out of range")
    keys = node_keys(seed, n)
    inner = tuple(
        SCPQuorumSet(inner_threshold, tuple(keys[o * per_org + j].public_key for j in range(per_org)))
        for o in range(orgs)
    )
    qset = SCPQuorumSet(top, (), inner)
    safety = max(0, 2 * top - orgs) * max(0, 2 * inner_threshold - per_org) - 1
    liveness = (orgs - top + 1) * (per_org - inner_threshold + 1) - 1
    return Topology("tiered", keys, (qset,) * n, max(0, min(safety, liveness)), tuple(range(n)))


def cycle(n: int, seed: int) -> Topology:
    """Node i trusts {i, i+1 mod n}, both required: the only quorum is everyone.

    Safety is trivial (one quorum), liveness needs every node, so no fault is
    tolerated; it exercises long chains of transitive trust.
    """
    if n < 2:
        raise UsageError("cycle topology: need at least 2 nodes")
    keys = node_keys(seed, n)
    qsets = tuple(SCPQuorumSet(2, (keys[i].public_key, keys[(i + 1) % n].public_key)) for i in range(n))
    return Topology("cycle", keys, qsets, 0, ())


def asymmetric(n: int, seed: int) -> Topology:
    """A core with uneven thresholds, and leaves each trusting a random part of it.

    The core is the first c = max(4, ceil(n / 2)) nodes (all n when n < 8).
    Core node i requires t_i of the core, t_i drawn from {k, k + 1} with k the
    BFT threshold of c (capped at c - 1, so one faulty core node never stalls
    the core, unless k itself is c). A leaf requires itself and s-of-S for a
    random subset S of the core, s the BFT threshold of |S|. Every quorum thus
    holds at least k core nodes, and two quorums share 2k - c core nodes.
    Byzantine nodes are chosen in the core; the tolerance also keeps every
    core node's and every leaf's slices satisfiable by honest nodes alone.
    """
    if n < 4:
        raise UsageError("asymmetric topology: need at least 4 nodes")
    rng = random.Random(int.from_bytes(derive_bytes(seed, "topology/asymmetric"), "big"))
    keys = node_keys(seed, n)
    ids = [kp.public_key for kp in keys]
    c = n if n < 8 else max(4, (n + 1) // 2)
    k = bft_threshold(c)
    core = tuple(ids[:c])
    core_thresholds = [max(k, min(c - 1, k + rng.randrange(2))) for _ in range(c)]
    qsets: list[SCPQuorumSet] = [SCPQuorumSet(t, core) for t in core_thresholds]
    liveness = c - max(core_thresholds)
    for i in range(c, n):
        size = rng.randint(min(4, c), c)
        subset = tuple(sorted(rng.sample(range(c), size)))
        s = bft_threshold(size)
        qsets.append(SCPQuorumSet(2, (ids[i],), (SCPQuorumSet(s, tuple(ids[j] for j in subset)),)))
        liveness = min(liveness, size - s)
    tolerance = max(0, min(2 * k - c - 1, liveness))
    return Topology("asymmetric", keys, tuple(qsets), tolerance, tuple(range(c)))


def build(name: str, n: int, seed: int, threshold: int | None = None) -> Topology:
    """Build a topology by name (one of ``TOPOLOGIES``); ``threshold`` is for symmetric only."""
    if threshold is not None and name != "symmetric":
        raise UsageError("a threshold can only be given for the symmetric topology")
    if name == "symmetric":
        return symmetric(n, seed, threshold)
    if name == "tiered":
        return tiered(n, seed)
    if name == "cycle":
        return cycle(n, seed)
    if name == "asymmetric":
        return asymmetric(n, seed)
    raise UsageError(f"unknown topology {name!r}; expected one of {', '.join(TOPOLOGIES)}")
