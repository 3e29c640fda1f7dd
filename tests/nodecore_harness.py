"""A node core on a table: a dictionary-backed ledger view, an observer that records, signed statements.

The node core is driven directly, the way stellar-core's SCP tests drive a slot: feed these
events, expect exactly these actions. No loop, no sockets, no sleeps; time is whatever the
test says it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from scpd.base.keys import Keypair, network_id, sign_statement
from scpd.base.quorum import quorum_set_hash
from scpd.base.types import (
    NodeID,
    SCPBallot,
    SCPEnvelope,
    SCPExternalize,
    SCPNomination,
    SCPQuorumSet,
    SCPStatement,
)
from scpd.nodecore import events as ev
from scpd.nodecore.actions import Action, Send
from scpd.nodecore.catchup import CatchupEntry, GetLedgers
from scpd.nodecore.core import NodeCore
from scpd.nodecore.equivocation import Equivocation
from scpd.nodecore.messages import ScpMessage
from scpd.nodecore.observer import Observer
from scpd.nodecore.settings import CoreSettings
from scpd.nodecore.txqueue import Refusal
from scpd.nodecore.values import ChainTip, ConsensusValue, LedgerEntry, TxSet, ledger_hash

NET = network_id("nodecore tests")
T0 = 1_700_000_000.0
# Fixed keys, so leader selection (and so what the local node says first) is the same every run.
SEEDS = (1, 2, 3)


@dataclass
class Record:
    value: ConsensusValue


@dataclass
class DictView:
    """The ledger store as the core reads it, over dictionaries."""

    chain: list[tuple[ChainTip, ConsensusValue]] = field(default_factory=list)
    tx_sets: dict[bytes, TxSet] = field(default_factory=dict)
    own: list[SCPEnvelope] = field(default_factory=list)

    def tip(self) -> ChainTip:
        return self.chain[-1][0] if self.chain else ChainTip(0, bytes(32), 0)

    def latest(self) -> Record | None:
        return Record(self.chain[-1][1]) if self.chain else None

    def get_tx_set(self, tx_set_hash: bytes) -> TxSet | None:
        return self.tx_sets.get(tx_set_hash)

    def is_included(self, tx_id: bytes) -> bool:
        return False

    def included_among(self, tx_ids: Iterable[bytes]) -> set[bytes]:
        return set()

    def load_own_envelopes(self, from_slot: int = 0) -> list[SCPEnvelope]:
        return [e for e in self.own if e.statement.slot_index >= from_slot]

    def load_pending_txs(self) -> list[bytes]:
        return []

    def load_quorum_sets(self) -> dict[bytes, SCPQuorumSet]:
        return {}


class Facts(Observer):
    """Records the facts the core reports, as (name, detail) pairs."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    def names(self) -> list[str]:
        return [name for name, _ in self.seen]

    def envelope_rejected(self, reason: str) -> None:
        self.seen.append(("rejected", reason))

    def bad_signature(self, peer: NodeID, node: NodeID, slot: int) -> None:
        self.seen.append(("bad_signature", slot))

    def signature_verified(self, ok: bool) -> None:
        self.seen.append(("verified", ok))

    def signature_remembered(self) -> None:
        self.seen.append(("remembered", None))

    def equivocation_found(self, found: Equivocation) -> None:
        self.seen.append(("equivocation", found.slot))

    def pending_changed(self, count: int, size: int) -> None:
        self.seen.append(("pending", count))

    def storage_failed(self, kind: str, error: str, retry_in: float) -> None:
        self.seen.append(("storage_failed", kind))

    def storage_recovered(self, kind: str, failing_for: float, all_ok: bool) -> None:
        self.seen.append(("storage_recovered", kind))

    def ledger_closed(
        self, slot: int, seconds: float | None, tx_count: int, snapshot: Mapping[str, object] | None
    ) -> None:
        self.seen.append(("ledger_closed", (slot, seconds)))

    def transactions_received(self, source: str, received: int, queued: int, refused: Mapping[Refusal, int]) -> None:
        self.seen.append(("transactions", (source, received, queued)))


@dataclass
class Net:
    """A local node ``core`` with two validator peers ``a`` and ``b`` (2 of the 3 make a quorum)."""

    core: NodeCore
    facts: Facts
    view: DictView
    local: Keypair
    a: Keypair
    b: Keypair
    qset: SCPQuorumSet

    @property
    def qhash(self) -> bytes:
        return quorum_set_hash(self.qset)

    def tx_set(self, *txs: bytes, on: bytes | None = None) -> TxSet:
        return TxSet.canonical(self.core.tip.hash if on is None else on, txs)

    def value(self, tx_set: TxSet, close_time: int = int(T0)) -> bytes:
        return ConsensusValue(close_time, tx_set.hash()).to_xdr()

    def nominate(self, kp: Keypair, slot: int, *votes: bytes, qset_hash: bytes | None = None) -> SCPEnvelope:
        pledges = SCPNomination(qset_hash or self.qhash, tuple(sorted(votes)), ())
        return sign_statement(kp, NET, SCPStatement(kp.public_key, slot, pledges))

    def externalize(self, kp: Keypair, slot: int, value: bytes) -> SCPEnvelope:
        pledges = SCPExternalize(SCPBallot(1, value), 1, self.qhash)
        return sign_statement(kp, NET, SCPStatement(kp.public_key, slot, pledges))

    def handle(self, event: ev.Event) -> list[Action]:
        return self.core.handle(event).actions


def make_net(settings: CoreSettings | None = None, *, solo: bool = False, connect: bool = True) -> Net:
    """The local node and peers a, b, connected; with ``solo`` the local node is its own quorum."""
    local, a, b = (Keypair(bytes([seed]) * 32) for seed in SEEDS)
    qset = (
        SCPQuorumSet(1, (local.public_key,))
        if solo
        else SCPQuorumSet(2, (local.public_key, a.public_key, b.public_key))
    )
    view = DictView()
    facts = Facts()
    core = NodeCore(local, NET, qset, view, settings or CoreSettings(), observer=facts)
    net = Net(core, facts, view, local, a, b, qset)
    if connect:
        net.handle(ev.PeerConnected(a.public_key, T0))
        net.handle(ev.PeerConnected(b.public_key, T0))
    return net


def entry_hash(tip: ChainTip, slot: int, value: bytes) -> bytes:
    return ledger_hash(tip.hash, LedgerEntry(slot, ConsensusValue.from_xdr(value)))


def started() -> Net:
    """Peers a and b connected, the local node started at T0."""
    net = make_net()
    net.handle(ev.Started(T0))
    return net


def receive(net: Net, sender: Keypair, envelope: SCPEnvelope, now: float) -> list[object]:
    return list(net.handle(ev.MessageReceived(sender.public_key, ScpMessage(envelope), now)))


def chain_of(net: Net, count: int) -> list[CatchupEntry]:
    """``count`` ledgers after ours, each proven by a and b (a v-blocking set of our quorum set)."""
    entries = []
    tip = net.core.tip
    for slot in range(tip.slot + 1, tip.slot + 1 + count):
        tx_set = TxSet.canonical(tip.hash, [f"tx {slot}".encode()])
        value = ConsensusValue(int(T0) + slot, tx_set.hash())
        raw = value.to_xdr()
        proofs = (net.externalize(net.a, slot, raw), net.externalize(net.b, slot, raw))
        entries.append(CatchupEntry(slot, value, tx_set, proofs))
        tip = ChainTip(slot, ledger_hash(tip.hash, LedgerEntry(slot, value)), value.close_time)
    return entries


def ask_for_ledgers(net: Net, now: float) -> Send:
    """a and b say they are at slot 5: we are behind, and ask one of them for ledgers."""
    value = net.value(net.tx_set(b"ahead"))
    sent = receive(net, net.a, net.nominate(net.a, 5, value), now)
    sent += receive(net, net.b, net.nominate(net.b, 5, value), now)
    [request] = [a for a in sent if isinstance(a, Send) and isinstance(a.message, GetLedgers)]
    return request
