"""The quorum sets and tx sets a node holds, and what a statement names of them.

Quorum sets are few and small: all of them stay (and the store keeps those
learned from the network). Tx sets are megabytes under load: the candidates
of the slot just written are dropped, and the rest is bounded; the store
still holds the decided one (a ledger) and every set our own envelopes
named (saved with them, each once) for peers that ask late and for our own
restart, and ``find_tx_set`` looks there too.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from scpd.base.quorum import quorum_set_hash
from scpd.base.types import (
    SCPConfirm,
    SCPEnvelope,
    SCPExternalize,
    SCPNomination,
    SCPPrepare,
    SCPQuorumSet,
    SCPStatement,
)
from scpd.errors import XdrError
from scpd.nodecore.values import TxSet, check_tx_set, decode_value

if TYPE_CHECKING:
    from scpd.nodecore.core import NodeCore

__all__ = ["KnownSets", "qset_hash_of", "values_of"]


class KnownSets:
    def __init__(self, core: NodeCore, quorum_set: SCPQuorumSet) -> None:
        self._core = core
        self._qsets: dict[bytes, SCPQuorumSet] = core.view.load_quorum_sets()
        self._qsets[quorum_set_hash(quorum_set)] = quorum_set
        self._tx_sets: OrderedDict[bytes, TxSet] = OrderedDict()
        # Hashes of the tx sets in memory that the store holds too (loaded from it, or saved with
        # our envelopes): an own envelope naming one need not write it again.
        self._stored: set[bytes] = set()
        # Tx set checks against the current tip (tx set hash -> problem or None): a set is judged
        # once per ledger, however many statements name it. Cleared when the tip moves.
        self._verdicts: dict[bytes, str | None] = {}

    # -- quorum sets -------------------------------------------------------------

    def quorum_set(self, qset_hash: bytes) -> SCPQuorumSet | None:
        return self._qsets.get(qset_hash)

    def has_quorum_set(self, qset_hash: bytes) -> bool:
        return qset_hash in self._qsets

    def learn_quorum_set(self, qset: SCPQuorumSet) -> bool:
        """Keep ``qset``; True if it is new (the caller has it saved)."""
        h = quorum_set_hash(qset)
        if h in self._qsets:
            return False
        self._qsets[h] = qset
        return True

    # -- tx sets ---------------------------------------------------------------------

    def find_tx_set(self, tx_set_hash: bytes) -> TxSet | None:
        found = self._tx_sets.get(tx_set_hash)
        if found is None:
            found = self._core.view.get_tx_set(tx_set_hash)
            if found is not None:
                self._tx_sets[tx_set_hash] = found
                self._stored.add(tx_set_hash)
        return found

    def remember(self, tx_set: TxSet) -> None:
        self._tx_sets[tx_set.hash()] = tx_set

    def learn_payload(self, tx_set_hash: bytes, payload: bytes) -> bool:
        """Keep the tx set a peer sent for ``tx_set_hash``; False if it is not that set."""
        if tx_set_hash in self._tx_sets:
            return True
        try:
            tx_set = TxSet.from_xdr_hashed(payload)
        except XdrError:
            return False
        if tx_set.hash() != tx_set_hash:
            return False
        self.remember(tx_set)
        return True

    def remember_sets_of(self, envelope: SCPEnvelope) -> None:
        """The stored tx sets an own restored envelope names (ours were saved with it)."""
        for h in tx_set_hashes_of(envelope.statement):
            tx_set = self._core.view.get_tx_set(h)
            if tx_set is not None:
                self.remember(tx_set)
                self._stored.add(h)

    def own_sets_of(self, envelope: SCPEnvelope) -> tuple[TxSet, ...]:
        """The tx sets to store with an own envelope: every set it names that the store lacks.

        After a restart our restored statements must be judged again, and a statement naming a
        set we no longer hold is only "maybe valid": the slot's ballot would stop, for good on
        a topology that needs every node (stellar-core keeps every set its persisted statements
        name for this reason). Each set is written once, with the first envelope naming it.
        """
        return tuple(
            s
            for h in tx_set_hashes_of(envelope.statement)
            if h not in self._stored and (s := self._tx_sets.get(h)) is not None
        )

    def stored(self, tx_sets: Iterable[TxSet]) -> None:
        """``tx_sets`` were written with our envelopes."""
        self._stored.update(s.hash() for s in tx_sets if s.hash() in self._tx_sets)

    def missing(self, statement: SCPStatement) -> tuple[bytes | None, list[bytes]]:
        """The quorum set (hash) and tx sets (hashes) ``statement`` names that we do not have."""
        qset_hash = qset_hash_of(statement)
        missing_qset = None if qset_hash in self._qsets else qset_hash
        return missing_qset, [h for h in tx_set_hashes_of(statement) if self.find_tx_set(h) is None]

    def check_tx_set(self, tx_set: TxSet) -> str | None:
        """check_tx_set against the tip, remembered per set until the tip moves (it is the costly part)."""
        h = tx_set.hash()
        if h in self._verdicts:
            return self._verdicts[h]
        core = self._core
        problem = check_tx_set(tx_set, core.tip.hash, core.settings.tx_set_limits, included_among=self._included_among)
        self._verdicts[h] = problem
        return problem

    def _included_among(self, tx_ids: Sequence[bytes]) -> set[bytes]:
        """Which of ``tx_ids`` a ledger already holds, asking the store only about ids not queued.

        A queued transaction is in no ledger up to the tip (the queue refuses included ones and
        drops each as soon as a written ledger carries it), and under load nearly every
        transaction of a candidate set is queued here too.
        """
        queue = self._core.txqueue
        return self._core.view.included_among([i for i in tx_ids if i not in queue])

    def tip_moved(self, decided_on: bytes) -> None:
        """Drop the candidate sets of the slot just written (built on ``decided_on``), and bound the rest."""
        self._verdicts.clear()
        for h in [h for h, s in self._tx_sets.items() if s.previous_ledger_hash == decided_on]:
            del self._tx_sets[h]
            self._stored.discard(h)
        limit = 4 * self._core.settings.keep_slots + 64
        while len(self._tx_sets) > limit:
            h, _ = self._tx_sets.popitem(last=False)
            self._stored.discard(h)


def values_of(statement: SCPStatement) -> list[bytes]:
    p = statement.pledges
    if isinstance(p, SCPNomination):
        return [*p.votes, *p.accepted]
    if isinstance(p, SCPPrepare):
        return [b.value for b in (p.ballot, p.prepared, p.prepared_prime) if b is not None]
    if isinstance(p, SCPConfirm):
        return [p.ballot.value]
    return [p.commit.value]


def qset_hash_of(statement: SCPStatement) -> bytes:
    p = statement.pledges
    if isinstance(p, SCPExternalize):
        return p.commit_quorum_set_hash
    return p.quorum_set_hash


def tx_set_hashes_of(statement: SCPStatement) -> list[bytes]:
    hashes: list[bytes] = []
    for raw in values_of(statement):
        try:
            hashes.append(decode_value(raw).tx_set_hash)
        except XdrError:
            continue  # the consensus core's validation rejects the statement
    return list(dict.fromkeys(hashes))
