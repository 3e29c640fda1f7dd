"""The herder's store actions: each write of the node core, in a worker thread, its outcome fed back.

A ``StorageError`` (disk full, I/O error: nothing was stored, the same write
may succeed later) is reported as a retryable failure and the core retries;
any other ``LedgerError`` is a refusal. Best-effort writes (late proofs,
quorum sets, pruning, checkpoints) only log when they fail: nothing depends
on them but a later convenience.

Late proofs come one EXTERNALIZE at a time, several per slot, so they wait
``PROOF_BATCH_SECONDS`` and are written together: one transaction and one
worker-thread hop instead of one per envelope (and a stop writes what waits).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from scpd.base.types import SCPEnvelope
from scpd.errors import LedgerError
from scpd.node.ledger import LedgerStore
from scpd.node.ledger_db import StorageError
from scpd.nodecore import actions as act
from scpd.nodecore import events as ev
from scpd.nodecore.catchup import CatchupEntry
from scpd.nodecore.values import LedgerRecord

__all__ = ["StoreActions"]

log = structlog.get_logger("scpd.node.herder")

# How long late proofs wait to be written with the ones that follow them (they are not fsynced anyway).
PROOF_BATCH_SECONDS = 0.5


class StoreActions:
    def __init__(
        self,
        store: LedgerStore,
        feed: Callable[[ev.Event], None],
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._feed = feed
        self._clock = clock
        self._writes: set[asyncio.Task[None]] = set()
        self._checkpoint: asyncio.Task[None] | None = None
        self._proofs: dict[int, list[SCPEnvelope]] = {}  # late proofs waiting for the batch's write
        self._proofs_due: asyncio.TimerHandle | None = None
        # The record of the last ledger written, for the application's callback.
        self.last_written: LedgerRecord | None = None

    def _run(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def drain(self) -> None:
        """Write the late proofs waiting, and wait for the writes under way (one in a thread cannot be cancelled)."""
        if self._proofs_due is not None:
            self._proofs_due.cancel()
            self._write_proofs()
        await asyncio.gather(*self._writes, return_exceptions=True)

    def persist_own_envelopes(self, action: act.PersistOwnEnvelopes) -> None:
        async def persist() -> None:
            items = [(envelope, list(sets)) for envelope, sets in action.items]
            try:
                await asyncio.to_thread(self._store.save_own_envelopes, items)
            except LedgerError as exc:
                retry = isinstance(exc, StorageError)
                self._feed(ev.OwnEnvelopesNotPersisted(action.batch_id, str(exc), retry, self._clock()))
                return
            self._feed(ev.OwnEnvelopesPersisted(action.batch_id, self._clock()))

        self._run(persist())

    def write_ledger(self, action: act.WriteLedger) -> None:
        slot = action.entry.slot

        async def write() -> None:
            try:
                record = await asyncio.to_thread(self._store.append_ledger, action.entry, action.tx_set, action.proofs)
            except LedgerError as exc:
                retry = isinstance(exc, StorageError)
                self._feed(ev.LedgerNotWritten(slot, str(exc), retry, self._clock()))
                return
            self.last_written = record
            self._feed(ev.LedgerWritten(slot, record.hash, self._clock()))

        self._run(write())

    def add_proofs(self, action: act.AddProofs) -> None:
        self._proofs.setdefault(action.slot, []).extend(action.envelopes)
        if self._proofs_due is None:
            self._proofs_due = asyncio.get_running_loop().call_later(PROOF_BATCH_SECONDS, self._write_proofs)

    def _write_proofs(self) -> None:
        self._proofs_due = None
        batch, self._proofs = self._proofs, {}

        async def add() -> None:
            try:
                refused = await asyncio.to_thread(self._store.add_proofs_of, batch)
            except LedgerError as exc:
                refused = dict.fromkeys(batch, str(exc))
            for slot, error in refused.items():
                log.warning("EXTERNALIZE proofs not kept", slot=slot, error=error)

        self._run(add())

    def save_quorum_set(self, action: act.SaveQuorumSet) -> None:
        try:
            self._store.save_quorum_set(action.quorum_set)
        except StorageError as exc:
            # Only saves asking the network again after a restart; never the sender's fault.
            log.warning("quorum set not saved", error=str(exc))

    def prune_own_envelopes(self, action: act.PruneOwnEnvelopes) -> None:
        async def prune() -> None:
            try:
                await asyncio.to_thread(self._store.prune_own_envelopes, action.below_slot)
            except LedgerError as exc:
                log.warning("old own envelopes not pruned", below_slot=action.below_slot, error=str(exc))

        self._run(prune())

    def checkpoint(self, action: act.Checkpoint) -> None:
        """Off the write path (see LedgerStore.checkpoint); one at a time."""
        if self._checkpoint is not None and not self._checkpoint.done():
            return

        async def checkpoint() -> None:
            try:
                await asyncio.to_thread(self._store.checkpoint)
            except LedgerError as exc:
                log.warning("checkpoint failed", error=str(exc))

        self._checkpoint = asyncio.create_task(checkpoint(), name="herder-checkpoint")
        self._writes.add(self._checkpoint)
        self._checkpoint.add_done_callback(self._writes.discard)

    def read_entries(self, from_slot: int, count: int) -> tuple[int, list[CatchupEntry]]:
        """The ledgers a GET_LEDGERS asks for (in a worker thread): the store's tip and the entries."""
        store = self._store
        tip = store.tip().slot
        entries: list[CatchupEntry] = []
        for slot in range(from_slot, min(from_slot + count, tip + 1)):
            record = store.get(slot)
            if record is None:
                break
            entries.append(CatchupEntry(slot, record.value, record.tx_set, tuple(store.proofs(slot))))
        return tip, entries
