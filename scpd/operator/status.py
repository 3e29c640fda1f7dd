"""The node's health as operators see it: joining, synced or stuck, and each quorum member's state.

The node's state is one of:

* ``synced``: a ledger was written recently (within ``stale_after`` seconds)
  and the members we agree with satisfy our quorum set;
* ``stuck``: this process has written ledgers, but not recently (or it lost
  its quorum);
* ``joining``: this process has not written a ledger yet.

Cheap (no I/O): the admin API calls it per request, the watcher once a second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from scpd.base.quorum import closest_v_blocking, is_quorum_slice, is_v_blocking
from scpd.base.types import NodeID
from scpd.node.herder import Herder
from scpd.node.metrics import MemberState, QuorumMember, quorum_members, stale_after
from scpd.operator.config_node import NodeConfig

__all__ = ["NodeStatus", "node_status"]


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """The node's health as the admin API reports it."""

    state: str  # joining / synced / stuck
    members: list[QuorumMember]
    has_quorum: bool  # the agreeing members (and us) satisfy our quorum set
    v_blocked: bool  # the missing and disagreeing members block every slice of ours
    ledger_age: float | None  # seconds since this process last wrote a ledger
    # The fewest members still up whose failure would block us (stellar-core's fail_with); None: none can.
    fail_with: frozenset[NodeID] | None


def node_status(config: NodeConfig, herder: Herder, now: float | None = None) -> NodeStatus:
    now = time.time() if now is None else now
    stale = stale_after(config.timers.slot_interval)
    members = quorum_members(
        herder.scp, herder.node_id, herder.tip.slot, herder.heard_at, now, stale, herder.equivocations.nodes
    )
    qset = herder.scp.quorum_set
    agree = {m.node_id for m in members if m.state is MemberState.AGREE}
    absent = {m.node_id for m in members if m.state in (MemberState.MISSING, MemberState.DISAGREE)}
    up = {m.node_id for m in members} - absent
    has_quorum = is_quorum_slice(qset, agree)
    age = None if herder.last_ledger_at is None else max(0.0, now - herder.last_ledger_at)
    if age is not None and age <= stale and has_quorum:
        state = "synced"
    elif age is not None:
        state = "stuck"
    else:
        state = "joining"
    fail_with = closest_v_blocking(qset, up, herder.node_id)
    return NodeStatus(state, members, has_quorum, is_v_blocking(qset, absent), age, fail_with)
