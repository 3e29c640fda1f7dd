"""Byzantine nodes: each kind is an honest node with one behaviour bent.

They sign with their real keys, so every envelope they send passes the
signature check: what is tested is the protocol's resistance, not the
signature layer's. Kinds (the names the CLI and scenarios use):

``silent``
    Never sends anything, ignores everything.
``equivocate``
    Two personas with one key: each runs the protocol with its own value
    (variants 1 and 2), always adding that value to its NOMINATE votes even
    when not a leader; one persona speaks to half the peers, the other to the
    rest. Peers thus receive contradictory statements from the same node.
``unnominated``
    Nominates honestly but rewrites every ballot statement to a value of the
    right format that no node ever voted to nominate, and now and then sends
    a PREPARE with a value of the wrong format.
``replay``
    Runs honestly and also re-sends, byte for byte, old envelopes it has
    received (from anyone, any earlier slot or older statement) to random
    peers.
``high-counter``
    Runs honestly but raises the counter of every ballot it sends far above
    anyone else's.
"""

from __future__ import annotations

import random
from dataclasses import replace

from scpd.base.keys import Keypair, sign_statement
from scpd.base.types import (
    SCPBallot,
    SCPConfirm,
    SCPEnvelope,
    SCPExternalize,
    SCPNomination,
    SCPPrepare,
    SCPQuorumSet,
    SCPStatement,
)
from scpd.errors import UsageError
from scpd.sim import values
from scpd.sim.node import SimNode, World

__all__ = ["BYZANTINE_KINDS", "make_byzantine"]

UINT32_MAX = (1 << 32) - 1
COUNTER_JUMP = 1000
REPLAY_LOG_SIZE = 256


class ByzantineNode(SimNode):
    honest = False
    kind = "byzantine"

    def __init__(
        self, world: World, index: int, keypair: Keypair, qset: SCPQuorumSet, rng: random.Random, variant: int = 0
    ) -> None:
        super().__init__(world, index, keypair, qset, variant)
        self.rng = rng

    def resign(self, statement: SCPStatement) -> SCPEnvelope:
        return sign_statement(self.keypair, self.world.net_id, statement)


class SilentNode(ByzantineNode):
    kind = "silent"

    def start(self) -> None:
        self.up = False

    def receive(self, src: int, payload: bytes) -> None:
        return


class _Persona(ByzantineNode):
    """One face of an equivocating node: votes for its own value, whoever leads."""

    def send_own(self, envelope: SCPEnvelope) -> None:
        st = envelope.statement
        if isinstance(st.pledges, SCPNomination):
            mine = self.value_for(st.slot_index)
            if mine not in st.pledges.votes:
                votes = tuple(sorted({*st.pledges.votes, mine}))
                envelope = self.resign(replace(st, pledges=replace(st.pledges, votes=votes)))
        self.send_to(envelope, self.targets)


class EquivocatingNode(_Persona):
    """Persona A (this object, variant 1) and persona B (variant 2), same key."""

    kind = "equivocate"

    def __init__(self, world: World, index: int, keypair: Keypair, qset: SCPQuorumSet, rng: random.Random) -> None:
        super().__init__(world, index, keypair, qset, rng, variant=1)
        peers = self.targets
        self.other = _Persona(world, index, keypair, qset, rng, variant=2)
        self.targets = peers[0::2]
        self.other.targets = peers[1::2]

    def start(self) -> None:
        super().start()
        self.other.start()

    def crash(self) -> None:
        super().crash()
        self.other.crash()

    def receive(self, src: int, payload: bytes) -> None:
        super().receive(src, payload)
        self.other.receive(src, payload)


class UnnominatedValueNode(ByzantineNode):
    kind = "unnominated"

    def send_own(self, envelope: SCPEnvelope) -> None:
        st = envelope.statement
        forged = values.encode_value(st.slot_index, self.index, values.FORGED_VARIANT)
        pledges = st.pledges
        if isinstance(pledges, SCPPrepare):
            prepared = None if pledges.prepared is None else SCPBallot(pledges.prepared.counter, forged)
            pledges = replace(pledges, ballot=SCPBallot(pledges.ballot.counter, forged), prepared=prepared)
            pledges = replace(pledges, prepared_prime=None)
        elif isinstance(pledges, SCPConfirm):
            pledges = replace(pledges, ballot=SCPBallot(pledges.ballot.counter, forged))
        elif isinstance(pledges, SCPExternalize):
            pledges = replace(pledges, commit=SCPBallot(pledges.commit.counter, forged))
        else:
            self.send_to(envelope, self.targets)
            return
        self.send_to(self.resign(replace(st, pledges=pledges)), self.targets)
        if self.rng.random() < 0.2:
            bad = SCPPrepare(self.scp_qset_hash(), SCPBallot(1, values.invalid_value(st.slot_index)))
            self.send_to(self.resign(replace(st, pledges=bad)), self.targets)

    def scp_qset_hash(self) -> bytes:
        assert self.scp is not None
        return self.scp.quorum_set_hash


class ReplayNode(ByzantineNode):
    kind = "replay"

    def __init__(self, world: World, index: int, keypair: Keypair, qset: SCPQuorumSet, rng: random.Random) -> None:
        super().__init__(world, index, keypair, qset, rng)
        self.log: list[bytes] = []

    def receive(self, src: int, payload: bytes) -> None:
        if len(self.log) < REPLAY_LOG_SIZE:
            self.log.append(payload)
        else:
            self.log[self.rng.randrange(REPLAY_LOG_SIZE)] = payload
        super().receive(src, payload)
        if self.up and self.rng.random() < 0.05:
            self.replay()

    def _rebroadcast(self) -> None:
        self.replay()
        super()._rebroadcast()

    def replay(self) -> None:
        if not self.log:
            return
        payload = self.log[self.rng.randrange(len(self.log))]
        targets = sorted(self.rng.sample(self.targets, max(1, len(self.targets) // 2)))
        self.world.send(self.index, targets, payload)


class HighCounterNode(ByzantineNode):
    kind = "high-counter"

    def send_own(self, envelope: SCPEnvelope) -> None:
        st = envelope.statement
        pledges = st.pledges
        if isinstance(pledges, SCPPrepare | SCPConfirm):
            high = SCPBallot(min(UINT32_MAX, pledges.ballot.counter + COUNTER_JUMP), pledges.ballot.value)
            envelope = self.resign(replace(st, pledges=replace(pledges, ballot=high)))
        self.send_to(envelope, self.targets)


BYZANTINE_KINDS: dict[str, type[ByzantineNode]] = {
    cls.kind: cls for cls in (SilentNode, EquivocatingNode, UnnominatedValueNode, ReplayNode, HighCounterNode)
}


def make_byzantine(
    kind: str, world: World, index: int, keypair: Keypair, qset: SCPQuorumSet, rng: random.Random
) -> ByzantineNode:
    cls = BYZANTINE_KINDS.get(kind)
    if cls is None:
        raise UsageError(f"unknown Byzantine kind {kind!r}; expected one of {', '.join(BYZANTINE_KINDS)}")
    return cls(world, index, keypair, qset, rng)
