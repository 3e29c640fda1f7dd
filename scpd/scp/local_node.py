"""The local node: identity, validator flag and quorum set (with its hash).

Kept apart from ``SCP`` so slots and phases can read the local node's
settings without holding the facade.
"""

from __future__ import annotations

from scpd.base import quorum
from scpd.base.types import NodeID, SCPQuorumSet

__all__ = ["LocalNode"]


class LocalNode:
    """Who we are in consensus; the quorum set may be replaced at run time."""

    __slots__ = (
        "is_validator",
        "neighbor_bounds",
        "node_id",
        "quorum_set",
        "quorum_set_hash",
        "singleton_quorum_set",
    )

    def __init__(self, node_id: NodeID, is_validator: bool, quorum_set: SCPQuorumSet) -> None:
        self.node_id = node_id
        self.is_validator = is_validator
        self.singleton_quorum_set = quorum.singleton_quorum_set(node_id)
        self.quorum_set = quorum_set
        self.quorum_set_hash = quorum.quorum_set_hash(quorum_set)
        # Leader-selection weights of the quorum set's nodes, filled in by
        # the nomination protocol on first use (they depend on the set only).
        self.neighbor_bounds: list[tuple[NodeID, int]] | None = None
