"""The durable ledger store: one SQLite file in the node's data directory.

Theory of operation
-------------------
Everything the node must not lose or contradict lives here:

* the hash-chained ledger (one row per externalized slot, see
  :mod:`scpd.nodecore.values` for the entry format and the genesis convention),
  with the EXTERNALIZE envelopes that proved each entry and an index from
  transaction id to the slot that first included it;
* the node's own latest envelopes for the slots in progress (one nomination
  and one ballot statement per slot) and the tx sets they reference, written
  *before* the envelope is sent, so a restarted node restores exactly what it
  said and never contradicts itself;
* the transactions it acknowledged that no ledger carries yet, and the quorum
  sets it knows.

Durability: the database runs in WAL mode and every write is one SQLite
transaction (``BEGIN IMMEDIATE`` .. ``COMMIT``), so a crash at any instant
leaves either the whole write or none of it. Ledger commits, own envelopes,
tx sets, acknowledged transactions and quorum sets are written with
``synchronous=FULL``: when the method returns, the data is on disk. Late
proofs use ``synchronous=NORMAL`` (still atomic; the last ones may be lost on
power failure, and are relearned).

Refusing bad state: :meth:`LedgerStore.open` refuses, with a
:class:`~scpd.errors.LedgerError` naming the file and the problem, anything
``scpd.node.ledger_schema`` finds wrong with the file (empty, truncated, not
SQLite, not scpd's, a newer schema, missing tables, damaged). The node then
stops instead of running on bad state. :meth:`LedgerStore.verify_chain` goes
further and recomputes every hash of the chain (``scpd.node.ledger_chain``; at
every start, of the latest ``START_CHECK_LEDGERS`` ledgers; all of them in
``scpd ledger verify``).

Failed writes: a write SQLite cannot complete (disk full, I/O error) raises
``scpd.node.ledger_db.StorageError`` and stores nothing, so it can be retried
as is; a write the chain refuses raises
:class:`~scpd.node.ledger_chain.ChainError`.
``scpd.nodecore.storage.StorageHealth`` is the node core's record of the first
kind while it retries.

The API is synchronous and thread-safe (``scpd.node.ledger_db``): writes go
through one connection behind a lock, reads through a second connection
behind another lock, so a long ledger commit running in a worker thread (WAL
lets readers proceed beside a writer) does not stall the event loop's cheap
reads such as :meth:`LedgerStore.is_included`. The daemon calls it directly
where it is cheap and from a worker thread for ledger commits. An optional
``write_observer(kind, seconds)`` callback sees the latency of every write,
for the metrics.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from scpd.base.quorum import quorum_set_hash
from scpd.base.types import SCPEnvelope, SCPNomination, SCPQuorumSet
from scpd.errors import LedgerError, XdrError
from scpd.node.ledger_chain import (
    SELECT_LEDGER,
    ChainBreak,
    ChainError,
    blob_column,
    check_proofs,
    int_column,
    walk_chain,
    walk_start,
)
from scpd.node.ledger_db import LedgerDatabase, WriteObserver
from scpd.node.ledger_schema import DB_FILENAME, INT64_MAX
from scpd.nodecore.values import (
    GENESIS_CLOSE_TIME,
    GENESIS_HASH,
    ChainTip,
    ConsensusValue,
    LedgerEntry,
    LedgerRecord,
    TxSet,
    ledger_hash,
    tx_id,
)

__all__ = ["START_CHECK_LEDGERS", "LedgerStore"]

# How many of the latest ledgers the node re-walks (hashes recomputed) at every start. The recent
# ledgers are the ones a crash, a bad disk or a hand edit most likely touched and the ones peers ask
# for when they catch up; a full ledger (1,000 transactions of 1 kB) re-walks in about 20 ms on a
# loaded 2-core machine, so 128 of them take a few seconds at most, however long the chain.
# `scpd ledger verify` walks the whole chain.
START_CHECK_LEDGERS = 128

_T = TypeVar("_T", ConsensusValue, TxSet, SCPEnvelope, SCPQuorumSet)

# Ids per "IN (...)" query: far below SQLite's variable limit, large enough to amortise the call.
_IN_CHUNK = 500
# Own-envelope kinds: a slot has at most one latest statement of each.
_KIND_NOMINATION = 0
_KIND_BALLOT = 1


class LedgerStore:
    """The node's SQLite database; create with :meth:`open` or :meth:`open_data_dir`."""

    def __init__(self, db: LedgerDatabase) -> None:
        self._db = db
        self.path = db.path

    # -- opening -----------------------------------------------------------

    @classmethod
    def open_data_dir(
        cls,
        data_dir: Path,
        *,
        create: bool = True,
        migrate: bool = True,
        write_observer: WriteObserver | None = None,
    ) -> LedgerStore:
        """Open ``data_dir/ledger.db``, creating the directory and file if allowed."""
        if create:
            try:
                data_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LedgerError(f"{data_dir}: cannot create the data directory: {exc.strerror}") from None
        elif not data_dir.is_dir():
            raise LedgerError(f"{data_dir}: no such data directory")
        return cls.open(data_dir / DB_FILENAME, create=create, migrate=migrate, write_observer=write_observer)

    @classmethod
    def open(
        cls, path: Path, *, create: bool = True, migrate: bool = True, write_observer: WriteObserver | None = None
    ) -> LedgerStore:
        """Open (or create) the database at ``path``, refusing anything unusable.

        An existing file is checked before use (``scpd.node.ledger_schema``); a
        missing file is created with the current schema only if ``create``.
        A zero-length file is refused rather than initialised: where a
        database is expected, an empty file means something truncated it. A
        new database is therefore built under a temporary name and renamed
        into place complete, so a crash during creation cannot leave one.
        Without ``migrate`` an older schema is refused instead of upgraded, so
        a reader (``scpd ledger``) never writes to a data directory whose lock
        it does not hold.
        """
        return cls(LedgerDatabase.open(path, create=create, migrate=migrate, write_observer=write_observer))

    def close(self) -> None:
        self._db.close()

    def checkpoint(self) -> None:
        """Copy the write-ahead log back into the file; the herder calls it off the loop after each ledger."""
        self._db.checkpoint()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- the chain ---------------------------------------------------------

    def tip(self) -> ChainTip:
        """The last ledger, or the genesis convention (0, zeros, 0) when there is none."""
        with self._db.read() as conn:
            row = conn.execute("SELECT slot, hash, close_time FROM ledgers ORDER BY slot DESC LIMIT 1").fetchone()
        if row is None:
            return ChainTip(0, GENESIS_HASH, GENESIS_CLOSE_TIME)
        return ChainTip(int(row[0]), bytes(row[1]), int(row[2]))

    def latest(self) -> LedgerRecord | None:
        with self._db.read() as conn:
            row = conn.execute(f"{SELECT_LEDGER} ORDER BY slot DESC LIMIT 1").fetchone()
        return None if row is None else self._record(row)

    def get(self, slot: int) -> LedgerRecord | None:
        if not 0 <= slot <= INT64_MAX:
            return None
        with self._db.read() as conn:
            row = conn.execute(f"{SELECT_LEDGER} WHERE slot = ?", (slot,)).fetchone()
        return None if row is None else self._record(row)

    def count(self) -> int:
        with self._db.read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM ledgers").fetchone()[0])

    def get_tx(self, tx_id: bytes) -> int | None:
        """The slot of the ledger that first included the transaction, or None."""
        with self._db.read() as conn:
            row = conn.execute("SELECT slot FROM txs WHERE tx_id = ?", (tx_id,)).fetchone()
        return None if row is None else int(row[0])

    def is_included(self, tx_id: bytes) -> bool:
        return self.get_tx(tx_id) is not None

    def included_among(self, tx_ids: Iterable[bytes]) -> set[bytes]:
        """Which of ``tx_ids`` some ledger already includes: one query per chunk, not per id.

        The herder asks this for every batch of submitted transactions and
        every tx set it validates (thousands of ids); a query per id costs
        more in Python overhead than the lookups themselves.
        """
        ids = list(dict.fromkeys(tx_ids))
        found: set[bytes] = set()
        with self._db.read() as conn:
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start : start + _IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(f"SELECT tx_id FROM txs WHERE tx_id IN ({marks})", chunk).fetchall()
                found.update(bytes(r[0]) for r in rows)
        return found

    def proofs(self, slot: int) -> list[SCPEnvelope]:
        """The EXTERNALIZE envelopes stored with ledger ``slot``."""
        with self._db.read() as conn:
            rows = conn.execute("SELECT envelope FROM proofs WHERE slot = ? ORDER BY node_id", (slot,)).fetchall()
        return [self._decode(SCPEnvelope, bytes(r[0]), f"proof of slot {slot}") for r in rows]

    def append_ledger(self, entry: LedgerEntry, tx_set: TxSet, proof_envelopes: Iterable[SCPEnvelope]) -> LedgerRecord:
        """Record an externalized slot atomically and durably; returns the stored record.

        Refuses (ChainError) anything that would not link: a slot other than
        the tip's successor, a tx set that is not the entry's or does not
        build on the tip, a proof that is not an EXTERNALIZE of this value for
        this slot. It does not judge the transactions: consensus decided them.
        A transaction carried again by a later ledger keeps its first slot.
        """
        if entry.slot > INT64_MAX or entry.close_time > INT64_MAX:
            raise ChainError(f"slot {entry.slot}: slot or close time beyond what the store can hold")
        if tx_set.hash() != entry.tx_set_hash:
            raise ChainError(f"slot {entry.slot}: the tx set given is not the one the value names")
        value_xdr = entry.value.to_xdr()
        proofs = check_proofs(entry.slot, value_xdr, proof_envelopes)
        with self._db.write("ledger") as conn:
            row = conn.execute("SELECT slot, hash FROM ledgers ORDER BY slot DESC LIMIT 1").fetchone()
            tip_slot, tip_hash = (0, GENESIS_HASH) if row is None else (int(row[0]), bytes(row[1]))
            if entry.slot != tip_slot + 1:
                raise ChainError(f"slot {entry.slot}: the chain ends at slot {tip_slot}, expected slot {tip_slot + 1}")
            if tx_set.previous_ledger_hash != tip_hash:
                raise ChainError(
                    f"slot {entry.slot}: the tx set builds on {tx_set.previous_ledger_hash.hex()}, "
                    f"but ledger {tip_slot} is {tip_hash.hex()}"
                )
            new_hash = ledger_hash(tip_hash, entry)
            conn.execute(
                "INSERT INTO ledgers (slot, value, close_time, tx_set, tx_set_hash, tx_count, previous_hash, hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.slot,
                    value_xdr,
                    entry.close_time,
                    tx_set.to_xdr(),
                    entry.tx_set_hash,
                    len(tx_set.txs),
                    tip_hash,
                    new_hash,
                ),
            )
            conn.executemany(
                "INSERT OR IGNORE INTO txs (tx_id, slot) VALUES (?, ?)", ((i, entry.slot) for i in tx_set.tx_ids)
            )
            if conn.execute("SELECT EXISTS (SELECT 1 FROM pending_txs)").fetchone()[0]:
                conn.executemany("DELETE FROM pending_txs WHERE tx_id = ?", ((i,) for i in tx_set.tx_ids))
            conn.executemany(
                "INSERT OR IGNORE INTO proofs (slot, node_id, envelope) VALUES (?, ?, ?)",
                ((entry.slot, node, env) for node, env in proofs),
            )
        return LedgerRecord(entry, tx_set, tip_hash, new_hash)

    # -- acknowledged transactions, until a ledger carries them ---------------

    def save_pending_txs(self, txs: Iterable[bytes]) -> None:
        """Durably remember transactions we acknowledged, before saying so.

        A crash then loses none of them: the node queues them again on start
        (``load_pending_txs``), and each disappears from here in the same
        transaction as the ledger that carries it.
        """
        rows = [(tx_id(tx), tx) for tx in txs]
        if rows:
            with self._db.write("pending_txs") as conn:
                conn.executemany("INSERT OR IGNORE INTO pending_txs (tx_id, tx) VALUES (?, ?)", rows)

    def load_pending_txs(self) -> list[bytes]:
        """The acknowledged transactions no ledger carries yet, in the order they came."""
        with self._db.write("pending_txs") as conn:
            # One saved just as its ledger was written would otherwise linger.
            conn.execute("DELETE FROM pending_txs WHERE tx_id IN (SELECT tx_id FROM txs)")
            rows = conn.execute("SELECT tx FROM pending_txs ORDER BY seq").fetchall()
        return [bytes(r[0]) for r in rows]

    def add_proofs(self, slot: int, envelopes: Iterable[SCPEnvelope]) -> int:
        """Add EXTERNALIZE envelopes that arrived after ledger ``slot`` was written; returns how many were new.

        A node that catches up needs proofs from a v-blocking set of its own
        quorum set, more than the few envelopes known at externalize time, so
        the herder keeps adding the ones that arrive later. Signatures are the
        caller's to check. Not fsynced: proofs can be relearned, and losing the
        last few on power failure costs nothing but a weaker answer.
        """
        envs = list(envelopes)
        if not envs or not 0 <= slot <= INT64_MAX:
            return 0
        with self._db.write("proofs", durable=False) as conn:
            return self._insert_proofs(conn, slot, envs)

    def add_proofs_of(self, batch: Mapping[int, Sequence[SCPEnvelope]]) -> dict[int, str]:
        """``add_proofs`` for several slots in one transaction; returns the slots refused and why.

        A slot refused (no such ledger, a proof of another value) costs only
        its own proofs: the others are kept.
        """
        refused: dict[int, str] = {}
        if not any(batch.values()):
            return refused
        with self._db.write("proofs", durable=False) as conn:
            for slot, envs in batch.items():
                try:
                    self._insert_proofs(conn, slot, envs)
                except ChainError as exc:
                    refused[slot] = str(exc)
        return refused

    @staticmethod
    def _insert_proofs(conn: sqlite3.Connection, slot: int, envs: Sequence[SCPEnvelope]) -> int:
        if not envs or not 0 <= slot <= INT64_MAX:
            return 0
        row = conn.execute("SELECT value FROM ledgers WHERE slot = ?", (slot,)).fetchone()
        if row is None:
            raise ChainError(f"slot {slot}: no such ledger to add proofs to")
        proofs = check_proofs(slot, bytes(row[0]), envs)
        cur = conn.executemany(
            "INSERT OR IGNORE INTO proofs (slot, node_id, envelope) VALUES (?, ?, ?)",
            ((slot, node, env) for node, env in proofs),
        )
        return int(cur.rowcount)

    def verify_chain(self, last: int | None = None) -> ChainBreak | None:
        """Re-walk the chain, recomputing every hash; the first break or None.

        Checks, for each slot: no gap, the previous hash links, the value and
        tx set decode strictly and agree with the stored columns, the tx set
        builds on the previous ledger, the stored hash is the recomputed one,
        close times never go backwards, the proofs are EXTERNALIZE statements
        of this value for this slot, and the tx index maps the set's
        transactions to this slot or an earlier one. With ``last``, only the
        latest ``last`` ledgers are walked (the start-up check), anchored on
        the stored hash of the ledger before them; otherwise every slot from 1.
        (Proof signatures need the network and quorum set: see ``scpd ledger verify``.)
        """
        with self._db.read() as conn:
            # One read transaction: a consistent snapshot even while the node appends.
            conn.execute("BEGIN")
            try:
                return walk_chain(conn, walk_start(conn, last))
            finally:
                conn.execute("COMMIT")

    def _record(self, row: tuple[object, ...]) -> LedgerRecord:
        slot = int_column(row[0])
        what = f"ledger {slot}"
        value = self._decode(ConsensusValue, blob_column(row[1]), what)
        tx_set = self._decode(TxSet, blob_column(row[3]), what)
        return LedgerRecord(LedgerEntry(slot, value), tx_set, blob_column(row[6]), blob_column(row[7]))

    def _decode(self, cls: type[_T], data: bytes, what: str) -> _T:
        try:
            return cls.from_xdr(data)
        except XdrError as exc:
            raise LedgerError(f"{self.path}: {what} is corrupt: {exc}") from None

    # -- own envelopes, for crash-safe restore -----------------------------

    def save_own_envelope(self, slot: int, envelope: SCPEnvelope, tx_sets: Iterable[TxSet] = ()) -> None:
        """Durably record the node's latest envelope of its kind for ``slot``.

        Call it *before* emitting the envelope: when it returns, the envelope
        (and the tx sets its values reference, in the same transaction) is on
        disk, so after any crash the node restores it instead of voting
        anew. It replaces the previous nomination or ballot envelope of the
        slot; the two kinds are kept apart because both are needed to restore.
        """
        if envelope.statement.slot_index != slot:
            raise LedgerError(f"own envelope for slot {envelope.statement.slot_index} saved under slot {slot}")
        self.save_own_envelopes([(envelope, tx_sets)])

    def save_own_envelopes(self, items: Iterable[tuple[SCPEnvelope, Iterable[TxSet]]]) -> None:
        """``save_own_envelope`` for several envelopes in one durable transaction (one fsync)."""
        rows = []
        sets: dict[bytes, tuple[int, TxSet]] = {}
        for envelope, tx_sets in items:
            slot = envelope.statement.slot_index
            if slot > INT64_MAX:
                raise LedgerError(f"slot {slot} is beyond what the store can hold")
            kind = _KIND_NOMINATION if isinstance(envelope.statement.pledges, SCPNomination) else _KIND_BALLOT
            rows.append((slot, kind, envelope.to_xdr()))
            for s in tx_sets:
                sets.setdefault(s.hash(), (slot, s))
        with self._db.write("own_envelope") as conn:
            conn.executemany("INSERT OR REPLACE INTO own_envelopes (slot, kind, envelope) VALUES (?, ?, ?)", rows)
            # Every statement of a slot names the same few tx sets (megabytes each under load): encode
            # and write only the ones not stored yet.
            marks = ",".join("?" * len(sets))
            stored = {
                bytes(r[0]) for r in conn.execute(f"SELECT hash FROM tx_sets WHERE hash IN ({marks})", list(sets))
            }
            conn.executemany(
                "INSERT INTO tx_sets (hash, slot, xdr) VALUES (?, ?, ?)",
                [(h, slot, s.to_xdr()) for h, (slot, s) in sets.items() if h not in stored],
            )

    def load_own_envelopes(self, from_slot: int = 0) -> list[SCPEnvelope]:
        """The saved envelopes of slots >= ``from_slot``, by slot, nomination first."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT envelope FROM own_envelopes WHERE slot >= ? ORDER BY slot, kind", (min(from_slot, INT64_MAX),)
            ).fetchall()
        return [self._decode(SCPEnvelope, bytes(r[0]), "own envelope") for r in rows]

    def get_tx_set(self, tx_set_hash: bytes) -> TxSet | None:
        """A tx set saved with an own envelope, or the tx set of a stored ledger."""
        with self._db.read() as conn:
            row = conn.execute("SELECT xdr FROM tx_sets WHERE hash = ?", (tx_set_hash,)).fetchone()
            if row is None:
                row = conn.execute(
                    "SELECT tx_set FROM ledgers WHERE tx_set_hash = ? LIMIT 1", (tx_set_hash,)
                ).fetchone()
        return None if row is None else self._decode(TxSet, bytes(row[0]), "tx set")

    def prune_own_envelopes(self, below_slot: int) -> int:
        """Forget own envelopes and their tx sets for slots < ``below_slot``; returns the envelope count."""
        below = min(below_slot, INT64_MAX)
        with self._db.write("prune") as conn:
            cur = conn.execute("DELETE FROM own_envelopes WHERE slot < ?", (below,))
            conn.execute("DELETE FROM tx_sets WHERE slot < ?", (below,))
            return int(cur.rowcount)

    # -- quorum sets -------------------------------------------------------

    def save_quorum_set(self, qset: SCPQuorumSet) -> bytes:
        """Remember a quorum set by its hash; returns the hash."""
        h = quorum_set_hash(qset)
        with self._db.write("quorum_set") as conn:
            conn.execute("INSERT OR IGNORE INTO quorum_sets (hash, xdr) VALUES (?, ?)", (h, qset.to_xdr()))
        return h

    def get_quorum_set(self, qset_hash: bytes) -> SCPQuorumSet | None:
        with self._db.read() as conn:
            row = conn.execute("SELECT xdr FROM quorum_sets WHERE hash = ?", (qset_hash,)).fetchone()
        return None if row is None else self._decode(SCPQuorumSet, bytes(row[0]), "quorum set")

    def load_quorum_sets(self) -> dict[bytes, SCPQuorumSet]:
        with self._db.read() as conn:
            rows = conn.execute("SELECT hash, xdr FROM quorum_sets").fetchall()
        return {bytes(h): self._decode(SCPQuorumSet, bytes(x), "quorum set") for h, x in rows}
