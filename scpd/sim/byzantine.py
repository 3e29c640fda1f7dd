"""Byzantine nodes: each kind is a node whose shell bends one behaviour.

A Byzantine node runs the same node core as an honest one (so it takes part
and its statements are well-formed) and misbehaves in its shell, where an
attacker who controls a machine would: what it sends, and what it answers.
It signs with its real key unless the kind is about forged signatures or
strange keys. What is tested is that the honest nodes' cores hold: safety,
validity and liveness within the topology's tolerance, and the intake's
defences of the hostile-peer issue. Kinds (the names the CLI and scenarios
use):

``silent``
    Never sends anything, ignores everything.
``equivocate``
    Two personas with one key, each running its own node core; each adds a
    value of its own (a tx set only it proposes, which it serves) to every
    NOMINATE it sends, and one persona speaks to half the peers, the other to
    the rest and the first. Peers thus receive contradictory statements from
    the same node, and one peer receives both.
``unnominated``
    Nominates honestly but rewrites every ballot statement to a well-formed
    value whose tx set no node nominated (it serves that set), and now and
    then sends a PREPARE whose value is not a value at all.
``replay``
    Runs honestly and also re-sends, byte for byte, old messages it has
    received (from anyone, any earlier slot or older statement) to random
    peers.
``high-counter``
    Runs honestly but raises the counter of every ballot it sends far above
    anyone else's.
``untrusted-flood``
    Runs honestly, and floods statements signed by throw-away keys that are
    in nobody's quorum set: PREPAREs and EXTERNALIZE "proofs" for the current
    slot, the next ones and slot 2^63.
``bad-signature``
    Runs honestly, but half of its peers get each of its envelopes with a
    broken signature, and it forwards other nodes' statements altered under
    their original signatures.
``far-future``
    Runs honestly, and with each ballot statement it also signs (with its
    real key, which every honest node trusts) PREPAREs for slots ahead of the
    current one, up to slot 2^63, for values it serves.
``junk-tx-sets``
    Runs honestly, but answers every GET_TX_SET with bytes that are not the
    set asked for, and sends tx sets nobody asked for to every peer.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

from scpd.base.keys import Keypair, sign_statement
from scpd.base.quorum import quorum_set_hash
from scpd.base.types import (
    NodeID,
    SCPBallot,
    SCPConfirm,
    SCPEnvelope,
    SCPExternalize,
    SCPNomination,
    SCPPrepare,
    SCPQuorumSet,
    SCPStatement,
)
from scpd.base.xdr import XdrError
from scpd.errors import UsageError
from scpd.nodecore.messages import GetTxSet, MessageType, OverlayMessage, ScpMessage, TxSetMessage
from scpd.nodecore.values import ConsensusValue, TxSet
from scpd.sim import values
from scpd.sim.node import SimNode, World

__all__ = ["BYZANTINE_KINDS", "COUNTER_JUMP", "make_byzantine"]

UINT32_MAX = (1 << 32) - 1
COUNTER_JUMP = 1000
REPLAY_LOG_SIZE = 256
FAR_SLOT = 1 << 63
STRANGER_KEYS = 4
FLOOD_PERIOD = 0.25
JUNK_PERIOD = 0.5
JUNK_TX_SET_SIZE = 16 << 10
_GET_TX_SET = int(MessageType.GET_TX_SET).to_bytes(4, "big")
_SCP_MESSAGE = int(MessageType.SCP_MESSAGE).to_bytes(4, "big")


class ByzantineNode(SimNode):
    honest = False
    kind = "byzantine"

    def __init__(
        self, world: World, index: int, keypair: Keypair, qset: SCPQuorumSet, rng: random.Random, persona: str = ""
    ) -> None:
        super().__init__(world, index, keypair, qset, persona)
        self.rng = rng
        # Tx sets this node made up and serves itself (its core never saw them).
        self.forged: dict[bytes, TxSet] = {}

    def resign(self, statement: SCPStatement) -> SCPEnvelope:
        return sign_statement(self.keypair, self.world.net_id, statement)

    def receive(self, src: int, payload: bytes) -> None:
        if self.up and self.forged and payload[:4] == _GET_TX_SET:
            request = self.decoded(payload)
            if isinstance(request, GetTxSet) and request.item_hash in self.forged:
                self.send_message([src], TxSetMessage(request.item_hash, self.forged[request.item_hash].to_xdr()))
                return
        super().receive(src, payload)

    def decoded(self, payload: bytes) -> OverlayMessage | None:
        try:
            return self.world.codec.decode(payload)
        except XdrError:
            return None

    def every(self, period: float, work: Callable[[], None]) -> None:
        """Run ``work`` every ``period`` seconds while this boot lasts."""
        boot = self._boot

        def tick() -> None:
            if self._boot == boot:
                work()
                self.world.clock.call_later(period, tick)

        self.world.clock.call_later(period, tick)

    def made_up_value(self, slot: int, label: str) -> bytes:
        """A valid-looking value for ``slot`` on our tip, with a tx set only we have (and serve)."""
        tip = self.store.tip()
        tx_set = TxSet.canonical(tip.hash, (f"{label} node={self.index}{self.persona} slot={slot}".encode(),))
        self.forged[tx_set.hash()] = tx_set
        close_time = max(int(self.world.clock.now), tip.close_time)
        return ConsensusValue(close_time, tx_set.hash()).to_xdr()


class SilentNode(ByzantineNode):
    kind = "silent"

    def start(self) -> None:
        self.up = False

    def receive(self, src: int, payload: bytes) -> None:
        return


class _Persona(ByzantineNode):
    """One face of an equivocating node: votes for a value of its own, whoever leads."""

    def __init__(
        self, world: World, index: int, keypair: Keypair, qset: SCPQuorumSet, rng: random.Random, persona: str
    ) -> None:
        super().__init__(world, index, keypair, qset, rng, persona)
        self._own_values: dict[int, bytes] = {}

    def send_own(self, envelope: SCPEnvelope) -> None:
        st = envelope.statement
        if isinstance(st.pledges, SCPNomination) and st.slot_index == self.store.tip().slot + 1:
            mine = self._own_values.get(st.slot_index)
            if mine is None:
                mine = self._own_values[st.slot_index] = self.made_up_value(st.slot_index, "persona")
            if mine not in st.pledges.votes:
                votes = tuple(sorted({*st.pledges.votes, mine}))
                envelope = self.resign(replace(st, pledges=replace(st.pledges, votes=votes)))
        self.send_message(self.targets, ScpMessage(envelope))


class EquivocatingNode(_Persona):
    """Persona ``a`` (this object) and persona ``b``, one key; each speaks to half the peers."""

    kind = "equivocate"

    def __init__(self, world: World, index: int, keypair: Keypair, qset: SCPQuorumSet, rng: random.Random) -> None:
        super().__init__(world, index, keypair, qset, rng, "a")
        peers = self.targets
        self.other = _Persona(world, index, keypair, qset, rng, "b")
        # The first peer hears both personas, so some honest node holds the evidence.
        self.targets = peers[0::2]
        self.other.targets = peers[:1] + peers[1::2]

    def start(self) -> None:
        super().start()
        self.other.start()

    def crash(self) -> None:
        super().crash()
        self.other.crash()

    def connected(self, peer: NodeID, index: int) -> None:
        super().connected(peer, index)
        self.other.connected(peer, index)

    def receive(self, src: int, payload: bytes) -> None:
        super().receive(src, payload)
        self.other.receive(src, payload)


class UnnominatedValueNode(ByzantineNode):
    kind = "unnominated"

    def send_own(self, envelope: SCPEnvelope) -> None:
        st = envelope.statement
        pledges = st.pledges
        if isinstance(pledges, SCPNomination):
            self.send_message(self.targets, ScpMessage(envelope))
            return
        forged = self.made_up_value(st.slot_index, "unnominated")
        if isinstance(pledges, SCPPrepare):
            prepared = None if pledges.prepared is None else SCPBallot(pledges.prepared.counter, forged)
            pledges = replace(pledges, ballot=SCPBallot(pledges.ballot.counter, forged), prepared=prepared)
            pledges = replace(pledges, prepared_prime=None)
        elif isinstance(pledges, SCPConfirm):
            pledges = replace(pledges, ballot=SCPBallot(pledges.ballot.counter, forged))
        elif isinstance(pledges, SCPExternalize):
            pledges = replace(pledges, commit=SCPBallot(pledges.commit.counter, forged))
        self.send_message(self.targets, ScpMessage(self.resign(replace(st, pledges=pledges))))
        if self.rng.random() < 0.2:
            junk = SCPPrepare(quorum_set_hash(self.qset), SCPBallot(1, values.JUNK_VALUE))
            self.send_message(self.targets, ScpMessage(self.resign(replace(st, pledges=junk))))


class ReplayNode(ByzantineNode):
    kind = "replay"

    def __init__(self, world: World, index: int, keypair: Keypair, qset: SCPQuorumSet, rng: random.Random) -> None:
        super().__init__(world, index, keypair, qset, rng)
        self.log: list[bytes] = []

    def start(self) -> None:
        super().start()
        self.every(1.0, self.replay)

    def receive(self, src: int, payload: bytes) -> None:
        if len(self.log) < REPLAY_LOG_SIZE:
            self.log.append(payload)
        else:
            self.log[self.rng.randrange(REPLAY_LOG_SIZE)] = payload
        super().receive(src, payload)
        if self.up and self.rng.random() < 0.05:
            self.replay()

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
        self.send_message(self.targets, ScpMessage(envelope))


class UntrustedFloodNode(ByzantineNode):
    """Statements from keys in no quorum set: the intake must drop them before anything costs."""

    kind = "untrusted-flood"

    def __init__(self, world: World, index: int, keypair: Keypair, qset: SCPQuorumSet, rng: random.Random) -> None:
        super().__init__(world, index, keypair, qset, rng)
        self.strangers = [Keypair(rng.randbytes(32)) for _ in range(STRANGER_KEYS)]
        self.stranger_qset = SCPQuorumSet(1, tuple(k.public_key for k in self.strangers))

    def start(self) -> None:
        super().start()
        self.every(FLOOD_PERIOD, self.flood)

    def flood(self) -> None:
        current = self.store.tip().slot + 1
        qset_hash = quorum_set_hash(self.stranger_qset)
        for key in self.strangers:
            slot = self.rng.choice((current, current + 1, current + 2, FAR_SLOT))
            value = self.made_up_value(slot, "stranger")
            pledges: SCPPrepare | SCPExternalize
            if self.rng.random() < 0.5:
                pledges = SCPPrepare(qset_hash, SCPBallot(1, value))
            else:
                pledges = SCPExternalize(SCPBallot(1, value), 1, qset_hash)
            envelope = sign_statement(key, self.world.net_id, SCPStatement(key.public_key, slot, pledges))
            self.send_message(self.targets, ScpMessage(envelope))


class BadSignatureNode(ByzantineNode):
    kind = "bad-signature"

    def send_own(self, envelope: SCPEnvelope) -> None:
        broken = replace(envelope, signature=_flip(envelope.signature))
        good = [t for i, t in enumerate(self.targets) if i % 2]
        bad = [t for i, t in enumerate(self.targets) if not i % 2]
        self.send_message(good, ScpMessage(envelope))
        self.send_message(bad, ScpMessage(broken))

    def receive(self, src: int, payload: bytes) -> None:
        super().receive(src, payload)
        if self.up and payload[:4] == _SCP_MESSAGE and self.rng.random() < 0.2:
            message = self.decoded(payload)
            if isinstance(message, ScpMessage):
                self.send_message(self.targets, ScpMessage(_altered(message.envelope)))


class FarFutureNode(ByzantineNode):
    """A member of everyone's quorum set (within the tolerance) pushing statements for slots to come."""

    kind = "far-future"

    def __init__(self, world: World, index: int, keypair: Keypair, qset: SCPQuorumSet, rng: random.Random) -> None:
        super().__init__(world, index, keypair, qset, rng)
        self._pushed: set[int] = set()

    def send_own(self, envelope: SCPEnvelope) -> None:
        super().send_own(envelope)
        slot = envelope.statement.slot_index
        if isinstance(envelope.statement.pledges, SCPNomination) or slot in self._pushed:
            return
        self._pushed.add(slot)
        qset_hash = quorum_set_hash(self.qset)
        for ahead in (slot + 1, slot + 2, slot + 12, slot + 13, FAR_SLOT):
            value = self.made_up_value(ahead, "future")
            future = SCPStatement(self.node_id, ahead, SCPPrepare(qset_hash, SCPBallot(1, value)))
            self.send_message(self.targets, ScpMessage(self.resign(future)))


class JunkTxSetNode(ByzantineNode):
    kind = "junk-tx-sets"

    def start(self) -> None:
        super().start()
        self.every(JUNK_PERIOD, self.push_junk)

    def receive(self, src: int, payload: bytes) -> None:
        if self.up and payload[:4] == _GET_TX_SET:
            request = self.decoded(payload)
            if isinstance(request, GetTxSet):
                self.send_message([src], TxSetMessage(request.item_hash, self.rng.randbytes(64)))
                return
        super().receive(src, payload)

    def push_junk(self) -> None:
        self.send_message(self.targets, TxSetMessage(self.rng.randbytes(32), self.rng.randbytes(JUNK_TX_SET_SIZE)))


def _flip(signature: bytes) -> bytes:
    return bytes([signature[0] ^ 1]) + signature[1:] if signature else b"\x01"


def _altered(envelope: SCPEnvelope) -> SCPEnvelope:
    """The statement changed, the signer's signature kept: a forgery the signature check must catch."""
    st = envelope.statement
    return replace(envelope, statement=replace(st, slot_index=st.slot_index + 1))


BYZANTINE_KINDS: dict[str, type[ByzantineNode]] = {
    cls.kind: cls
    for cls in (
        SilentNode,
        EquivocatingNode,
        UnnominatedValueNode,
        ReplayNode,
        HighCounterNode,
        UntrustedFloodNode,
        BadSignatureNode,
        FarFutureNode,
        JunkTxSetNode,
    )
}


def make_byzantine(
    kind: str, world: World, index: int, keypair: Keypair, qset: SCPQuorumSet, rng: random.Random
) -> ByzantineNode:
    cls = BYZANTINE_KINDS.get(kind)
    if cls is None:
        raise UsageError(f"unknown Byzantine kind {kind!r}; expected one of {', '.join(BYZANTINE_KINDS)}")
    return cls(world, index, keypair, qset, rng)
