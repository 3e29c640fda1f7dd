"""A simulated node's disk: what survives its crashes, in dictionaries.

:class:`SimStore` keeps what the daemon's SQLite store keeps (the chain of
ledgers with their tx sets and proofs, the node's own latest envelopes with
the tx sets they name, learned quorum sets, acknowledged transactions) and
answers the node core's read-only questions (``scpd.nodecore.observer.
LedgerView``). A write either happens whole or raises :class:`DiskFailure`,
which the shell reports to the core as a failed write that may be retried; a
ledger that does not link to the tip is refused like the daemon's store
refuses it (:class:`ChainRefused`), which the core must never ask for.

Nothing here judges consensus: the node core decides what to write and when.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from scpd.base.quorum import quorum_set_hash
from scpd.base.types import SCPEnvelope, SCPExternalize, SCPNomination, SCPQuorumSet
from scpd.nodecore.values import (
    GENESIS_CLOSE_TIME,
    GENESIS_HASH,
    ChainTip,
    LedgerEntry,
    LedgerRecord,
    TxSet,
    ledger_hash,
    tx_id,
)

__all__ = ["ChainRefused", "DiskFailure", "SimStore"]


class DiskFailure(Exception):
    """The simulated disk failed this write (full, I/O error): the same write may succeed later."""


class ChainRefused(Exception):
    """The store refused a ledger that does not link to its tip."""


@dataclass
class SimStore:
    """A node's durable state; ``failing`` is set by the scenario while its disk fails."""

    ledgers: dict[int, LedgerRecord] = field(default_factory=dict)
    proofs: dict[int, dict[bytes, SCPEnvelope]] = field(default_factory=dict)
    own: dict[tuple[int, bool], SCPEnvelope] = field(default_factory=dict)
    tx_sets: dict[bytes, tuple[int, TxSet]] = field(default_factory=dict)
    quorum_sets: dict[bytes, SCPQuorumSet] = field(default_factory=dict)
    pending_txs: dict[bytes, bytes] = field(default_factory=dict)
    included: set[bytes] = field(default_factory=set)
    ledger_tx_sets: dict[bytes, TxSet] = field(default_factory=dict)
    failing: bool = False

    # -- LedgerView (what the node core reads) ----------------------------------

    def tip(self) -> ChainTip:
        last = self.latest()
        if last is None:
            return ChainTip(0, GENESIS_HASH, GENESIS_CLOSE_TIME)
        return ChainTip(last.entry.slot, last.hash, last.entry.close_time)

    def latest(self) -> LedgerRecord | None:
        return self.ledgers[len(self.ledgers)] if self.ledgers else None

    def get_tx_set(self, tx_set_hash: bytes) -> TxSet | None:
        saved = self.tx_sets.get(tx_set_hash)
        return saved[1] if saved is not None else self.ledger_tx_sets.get(tx_set_hash)

    def is_included(self, tx: bytes) -> bool:
        return tx in self.included

    def included_among(self, tx_ids: Iterable[bytes]) -> set[bytes]:
        return {i for i in tx_ids if i in self.included}

    def load_own_envelopes(self, from_slot: int = 0) -> list[SCPEnvelope]:
        """By slot, nomination first (as the daemon's store)."""
        keys = sorted((slot, not nomination) for slot, nomination in self.own if slot >= from_slot)
        return [self.own[(slot, not ballot)] for slot, ballot in keys]

    def load_pending_txs(self) -> list[bytes]:
        return [tx for i, tx in self.pending_txs.items() if i not in self.included]

    def load_quorum_sets(self) -> dict[bytes, SCPQuorumSet]:
        return dict(self.quorum_sets)

    def proofs_of(self, slot: int) -> list[SCPEnvelope]:
        return [self.proofs[slot][n] for n in sorted(self.proofs.get(slot, {}))]

    # -- writes (what the shell does for the core's actions) ---------------------

    def _check_disk(self) -> None:
        if self.failing:
            raise DiskFailure("simulated disk failure")

    def save_own_envelopes(self, items: Iterable[tuple[SCPEnvelope, Iterable[TxSet]]]) -> None:
        """Replace the latest envelope of each kind per slot, with the tx sets to keep beside it."""
        self._check_disk()
        for envelope, tx_sets in items:
            slot = envelope.statement.slot_index
            self.own[(slot, isinstance(envelope.statement.pledges, SCPNomination))] = envelope
            for tx_set in tx_sets:
                self.tx_sets.setdefault(tx_set.hash(), (slot, tx_set))

    def append_ledger(self, entry: LedgerEntry, tx_set: TxSet, proofs: Iterable[SCPEnvelope]) -> LedgerRecord:
        tip = self.tip()
        if entry.slot != tip.slot + 1 or tx_set.previous_ledger_hash != tip.hash:
            raise ChainRefused(f"slot {entry.slot} does not follow ledger {tip.slot}")
        if tx_set.hash() != entry.tx_set_hash:
            raise ChainRefused(f"slot {entry.slot}: the tx set given is not the one the value names")
        self._check_disk()
        record = LedgerRecord(entry, tx_set, tip.hash, ledger_hash(tip.hash, entry))
        self.ledgers[entry.slot] = record
        self.ledger_tx_sets.setdefault(entry.tx_set_hash, tx_set)
        self.included.update(tx_set.tx_ids)
        for i in tx_set.tx_ids:
            self.pending_txs.pop(i, None)
        self.add_proofs(entry.slot, proofs)
        return record

    def add_proofs(self, slot: int, envelopes: Iterable[SCPEnvelope]) -> None:
        """Keep EXTERNALIZE envelopes of the stored value, one per node (best effort, never fails)."""
        record = self.ledgers.get(slot)
        if record is None:
            return
        value = record.entry.value.to_xdr()
        kept = self.proofs.setdefault(slot, {})
        for env in envelopes:
            pledges = env.statement.pledges
            if (
                isinstance(pledges, SCPExternalize)
                and pledges.commit.value == value
                and env.statement.slot_index == slot
            ):
                kept.setdefault(env.statement.node_id.ed25519, env)

    def save_pending_txs(self, txs: Iterable[bytes]) -> None:
        for tx in txs:
            self.pending_txs.setdefault(tx_id(tx), tx)

    def save_quorum_set(self, qset: SCPQuorumSet) -> None:
        self.quorum_sets.setdefault(quorum_set_hash(qset), qset)

    def prune_own_envelopes(self, below_slot: int) -> None:
        for key in [k for k in self.own if k[0] < below_slot]:
            del self.own[key]
        for h in [h for h, (slot, _) in self.tx_sets.items() if slot < below_slot]:
            del self.tx_sets[h]
