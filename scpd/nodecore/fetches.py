"""Fetching what the consensus core needs before it may judge: quorum sets and tx sets.

A current-slot envelope that names a quorum set or tx sets we lack waits
while they are fetched, one after the other, from the peer that sent it
(else from its signer, when connected); then, if its slot is still current,
it goes to the consensus core (which thus only ever judges values it can
judge, docs/consensus.md). The wait list is bounded
(``max_waiting_envelopes``) and holds each envelope once, so copies of it
from other peers cost nothing. An answer that does not come, or is not what
was asked, drops the envelope: its sender may send it again.

A decided slot whose tx set we lack (decided through others' EXTERNALIZE
statements) needs that set before its ledger can be written: it is asked of
every connected peer in turn until one answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from scpd.base.types import NodeID, SCPEnvelope, SCPQuorumSet
from scpd.nodecore.actions import FetchQuorumSet, FetchTxSet, SaveQuorumSet

if TYPE_CHECKING:
    from scpd.nodecore.core import NodeCore

__all__ = ["Fetches"]


@dataclass(slots=True)
class _Wait:
    """A current-slot envelope waiting for what it names, fetched from ``peer``."""

    origin: NodeID
    peer: NodeID
    envelope: SCPEnvelope
    qset: bytes | None
    tx_sets: list[bytes]


@dataclass(slots=True)
class _LedgerFetch:
    """A decided value's tx set, asked of each peer of ``peers`` in turn."""

    tx_set_hash: bytes
    peers: list[NodeID] = field(default_factory=list)


class Fetches:
    def __init__(self, core: NodeCore) -> None:
        self._core = core
        self._next_id = 1
        self._waits: dict[int, _Wait] = {}
        # The envelopes waiting, so a copy does not wait twice.
        self._waiting: set[SCPEnvelope] = set()
        self._ledger_fetches: dict[int, _LedgerFetch] = {}
        self._ledger_hashes: set[bytes] = set()

    def wait_for(self, origin: NodeID, envelope: SCPEnvelope, qset: bytes | None, tx_sets: list[bytes]) -> None:
        """Fetch what ``envelope`` names and lacks, then hand it to the consensus core."""
        core = self._core
        if envelope in self._waiting:
            return  # this very envelope already waits: a copy costs nothing more
        if len(self._waiting) >= core.settings.max_waiting_envelopes:
            core.observer.envelope_rejected("too_many_waiting")
            return
        signer = envelope.statement.node_id
        peer = origin if core.is_connected(origin) else signer if core.is_connected(signer) else None
        if peer is None:
            core.observer.envelope_rejected("fetch_failed")
            return
        self._waiting.add(envelope)
        self._next(_Wait(origin, peer, envelope, qset, list(tx_sets)))

    def _next(self, wait: _Wait) -> None:
        """Ask for the next thing ``wait`` lacks, or judge its envelope when nothing is lacking."""
        core = self._core
        timeout = core.settings.fetch_timeout
        if wait.qset is not None and not core.sets.has_quorum_set(wait.qset):
            fetch_id = self._new_id()
            self._waits[fetch_id] = wait
            core.emit(FetchQuorumSet(fetch_id, wait.peer, wait.qset, timeout))
            return
        while wait.tx_sets:
            h = wait.tx_sets[0]
            if core.sets.find_tx_set(h) is not None:
                wait.tx_sets.pop(0)
                continue
            fetch_id = self._new_id()
            self._waits[fetch_id] = wait
            core.emit(FetchTxSet(fetch_id, wait.peer, h, timeout, ask_if_pending=False))
            return
        self._done(wait)

    def _done(self, wait: _Wait) -> None:
        core = self._core
        self._waiting.discard(wait.envelope)
        statement = wait.envelope.statement
        if not core.running or statement.slot_index != core.current_slot:
            return  # decided meanwhile: the consensus core never sees an old slot again
        missing_qset, missing_tx_sets = core.sets.missing(statement)
        if missing_qset is not None or missing_tx_sets:
            core.observer.envelope_rejected("fetch_failed")
            return
        core.intake.judged_late(wait.origin, wait.envelope, core.intake.to_consensus(wait.envelope))

    def _give_up(self, wait: _Wait) -> None:
        self._waiting.discard(wait.envelope)
        self._core.observer.envelope_rejected("fetch_failed")

    def quorum_set_answered(self, fetch_id: int, qset: SCPQuorumSet) -> None:
        wait = self._waits.pop(fetch_id, None)
        if wait is None:
            return
        if self._core.sets.learn_quorum_set(qset):
            # Only saves asking the network again after a restart.
            self._core.emit(SaveQuorumSet(qset))
        wait.qset = None
        self._next(wait)

    def tx_set_answered(self, fetch_id: int, payload: bytes) -> None:
        ledger = self._ledger_fetches.pop(fetch_id, None)
        if ledger is not None:
            self._ledger_answered(ledger, payload)
            return
        wait = self._waits.pop(fetch_id, None)
        if wait is None:
            return
        if not wait.tx_sets or not self._core.sets.learn_payload(wait.tx_sets[0], payload):
            self._give_up(wait)
            return
        wait.tx_sets.pop(0)
        self._next(wait)

    def failed(self, fetch_id: int) -> None:
        ledger = self._ledger_fetches.pop(fetch_id, None)
        if ledger is not None:
            self._ask_next_peer(ledger)
            return
        wait = self._waits.pop(fetch_id, None)
        if wait is not None:
            self._give_up(wait)

    # -- tx sets of decided ledgers ------------------------------------------------------

    def for_ledger(self, tx_set_hash: bytes) -> None:
        """A decided value whose tx set we lack: ask every peer in turn until one answers."""
        if tx_set_hash in self._ledger_hashes:
            return
        self._ledger_hashes.add(tx_set_hash)
        self._ask_next_peer(_LedgerFetch(tx_set_hash, list(self._core.peers)))

    def _ask_next_peer(self, fetch: _LedgerFetch) -> None:
        if not fetch.peers:
            self._ledger_hashes.discard(fetch.tx_set_hash)
            return
        fetch_id = self._new_id()
        self._ledger_fetches[fetch_id] = fetch
        peer = fetch.peers.pop(0)
        self._core.emit(FetchTxSet(fetch_id, peer, fetch.tx_set_hash, self._core.settings.fetch_timeout))

    def _ledger_answered(self, fetch: _LedgerFetch, payload: bytes) -> None:
        if self._core.sets.learn_payload(fetch.tx_set_hash, payload):
            self._ledger_hashes.discard(fetch.tx_set_hash)
            self._core.writer.write_next()
        else:
            self._ask_next_peer(fetch)

    def _new_id(self) -> int:
        fetch_id = self._next_id
        self._next_id += 1
        return fetch_id
