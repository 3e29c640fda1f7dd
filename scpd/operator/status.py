"""The node's health as operators see it: joining, synced or stuck, and each quorum member's state.

The node's state is one of:

* ``synced``: a ledger was written recently (within ``stale_after`` seconds)
  and the members we agree with satisfy our quorum set;
* ``stuck``: this process has written ledgers, but not recently (or it lost
  its quorum);
* ``joining``: this process has not written a ledger yet.

Quorum health classifies each validator of the local quorum set, looking at
the last closed slot ``L`` and the slot being decided ``C = L + 1``:

* ``disagree``: its statement for ``L`` confirms or externalizes another value;
* ``agree``: it speaks about ``C`` (or later), or it committed our value for ``L``,
  and we heard from it recently;
* ``delayed``: heard from recently, but still behind (no commit for ``L``);
* ``missing``: not heard from within ``stale_after`` seconds (or never);
* ``equivocating``: it signed two statements for one slot that cannot both be
  honest (scpd.nodecore.equivocation); this overrides every other state.

"Heard from" means its statements advanced (the core took a newer one), or
it spoke to us over a direct authenticated connection: a copy of an old
statement, re-flooded by others after the node died, keeps nobody alive.

The local node itself always agrees.

Cheap (no I/O): the admin API calls it per request, the watcher once a
second, and Prometheus (``scpd_quorum_members``) at every scrape.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from scpd.base.quorum import all_validators, closest_v_blocking, is_quorum_slice, is_v_blocking
from scpd.base.types import NodeID, SCPConfirm, SCPEnvelope, SCPExternalize
from scpd.node.herder import Herder
from scpd.operator.config_node import NodeConfig
from scpd.scp.scp import SCP

__all__ = [
    "MemberState",
    "NodeStatus",
    "QuorumMember",
    "member_states",
    "node_status",
    "quorum_members",
    "stale_after",
    "state_counts",
]


class MemberState(Enum):
    AGREE = "agree"
    DELAYED = "delayed"
    MISSING = "missing"
    DISAGREE = "disagree"
    EQUIVOCATING = "equivocating"


@dataclass(frozen=True, slots=True)
class QuorumMember:
    """One validator of the local quorum set, as the node sees it now."""

    node_id: NodeID
    state: MemberState
    latest: SCPEnvelope | None
    heard_seconds_ago: float | None


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
    members = member_states(config, herder, now)
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


def member_states(config: NodeConfig, herder: Herder, now: float | None = None) -> list[QuorumMember]:
    """Every validator of the running node's quorum set, classified now."""
    return quorum_members(
        herder.scp,
        herder.node_id,
        herder.tip.slot,
        herder.heard_at,
        time.time() if now is None else now,
        stale_after(config.timers.slot_interval),
        herder.equivocations.nodes,
    )


def state_counts(members: Iterable[QuorumMember]) -> dict[str, int]:
    """How many members are in each state, every state present (0 when none)."""
    counts = {s.value: 0 for s in MemberState}
    for m in members:
        counts[m.state.value] += 1
    return counts


def stale_after(slot_interval: float) -> float:
    """Silence after which a quorum member counts as missing.

    A live validator speaks at least once per slot, and a stuck one re-floods
    its statements every couple of seconds, so three slots (at least 10 s)
    of silence means it is gone or cut off from us.
    """
    return max(3.0 * slot_interval, 10.0)


def quorum_members(
    scp: SCP,
    local: NodeID,
    last_slot: int,
    heard_at: Mapping[NodeID, float],
    now: float,
    stale_after: float,
    equivocating: Collection[NodeID] = frozenset(),
) -> list[QuorumMember]:
    """Classify every validator of the local quorum set (see the module docstring)."""
    decided = scp.get_externalized_value(last_slot)
    # Nodes whose CONFIRM / EXTERNALIZE for the last slot carries the decided value.
    committed = {env.statement.node_id for env in scp.get_externalizing_state(last_slot)}
    out = []
    for node in sorted(all_validators(scp.quorum_set), key=str):
        latest = scp.get_latest_message(node)
        heard = heard_at.get(node)
        ago = None if heard is None else max(0.0, now - heard)
        if node == local:
            state = MemberState.AGREE
        elif node in equivocating:
            state = MemberState.EQUIVOCATING
        elif latest is not None and _disagrees(latest, last_slot, decided):
            state = MemberState.DISAGREE
        elif latest is None or ago is None or ago > stale_after:
            state = MemberState.MISSING
        elif latest.statement.slot_index > last_slot or node in committed:
            state = MemberState.AGREE
        else:
            state = MemberState.DELAYED
        out.append(QuorumMember(node, state, latest, ago))
    return out


def _disagrees(latest: SCPEnvelope, last_slot: int, decided: bytes | None) -> bool:
    """True when the node confirmed or externalized another value than ours for the last slot."""
    if decided is None or latest.statement.slot_index != last_slot:
        return False
    p = latest.statement.pledges
    if isinstance(p, SCPConfirm):
        return p.ballot.value != decided
    if isinstance(p, SCPExternalize):
        return p.commit.value != decided
    return False
