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
* the quorum sets and peers it knows, so a restart needs the network's help
  as little as possible.

Durability: the database runs in WAL mode and every write is one SQLite
transaction (``BEGIN IMMEDIATE`` .. ``COMMIT``), so a crash at any instant
leaves either the whole write or none of it. Ledger commits, own envelopes,
tx sets and quorum sets are written with ``synchronous=FULL``: when the
method returns, the data is on disk. Peer bookkeeping uses
``synchronous=NORMAL`` (still atomic; the last updates may be lost on power
failure, which costs nothing but a redial).

Refusing bad state: :meth:`LedgerStore.open` refuses, with a
:class:`~scpd.errors.LedgerError` naming the file and the problem, an empty
or truncated file, a file that is not SQLite, an SQLite file that is not
scpd's (``PRAGMA application_id``), a newer schema (``PRAGMA user_version``),
missing tables, and any file ``PRAGMA quick_check`` finds damaged. The node
then stops instead of running on bad state. :meth:`LedgerStore.verify_chain`
goes further and recomputes every hash of the chain (at every start, of the
latest ``START_CHECK_LEDGERS`` ledgers; all of them in ``scpd ledger verify``).

Failed writes: a write SQLite cannot complete (disk full, I/O error) raises
:class:`StorageError` and stores nothing, so it can be retried as is; a write
the chain refuses raises :class:`ChainError`. :class:`StorageHealth` (in the node core) is
the record of the first kind while the writes are retried.

The API is synchronous and thread-safe: writes go through one connection
behind a lock, reads through a second connection behind another lock, so a
long ledger commit running in a worker thread (WAL lets readers proceed
beside a writer) does not stall the event loop's cheap reads such as
:meth:`LedgerStore.is_included`. The daemon calls it directly where it is
cheap and from a worker thread for ledger commits. An optional ``write_observer(kind, seconds)`` callback sees
the latency of every write, for the metrics.
"""

from __future__ import annotations

import base64
import contextlib
import os
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from scpd.base.quorum import quorum_set_hash
from scpd.base.types import SCPEnvelope, SCPExternalize, SCPNomination, SCPQuorumSet
from scpd.errors import LedgerError, XdrError
from scpd.nodecore.storage import StorageHealth
from scpd.nodecore.values import (
    GENESIS_CLOSE_TIME,
    GENESIS_HASH,
    ChainTip,
    ConsensusValue,
    LedgerEntry,
    TxSet,
    ledger_hash,
    tx_id,
)

__all__ = [
    "APPLICATION_ID",
    "DB_FILENAME",
    "MAX_PEERS",
    "SCHEMA_VERSION",
    "START_CHECK_LEDGERS",
    "ChainBreak",
    "ChainError",
    "LedgerRecord",
    "LedgerStore",
    "EnvelopeLog",
    "PeerRecord",
    "StorageError",
    "StorageHealth",
    "WriteObserver",
]

DB_FILENAME = "ledger.db"
APPLICATION_ID = 0x53435044  # "SCPD": marks the file as ours.
SCHEMA_VERSION = 2
MAX_PEERS = 1000
# How many of the latest ledgers the node re-walks (hashes recomputed) at every start. The recent
# ledgers are the ones a crash, a bad disk or a hand edit most likely touched and the ones peers ask
# for when they catch up; a full ledger (1,000 transactions of 1 kB) re-walks in about 20 ms on a
# loaded 2-core machine, so 128 of them take a few seconds at most, however long the chain.
# `scpd ledger verify` walks the whole chain.
START_CHECK_LEDGERS = 128

WriteObserver = Callable[[str, float], None]
_T = TypeVar("_T", ConsensusValue, TxSet, SCPEnvelope, SCPQuorumSet)

_SQLITE_MAGIC = b"SQLite format 3\x00"
_INT64_MAX = (1 << 63) - 1
# The writer checkpoints the log by itself only past this many pages (256 MiB with 4 KiB pages);
# normally LedgerStore.checkpoint runs after each ledger, off the write path.
_WAL_AUTOCHECKPOINT_PAGES = 65536
# Ids per "IN (...)" query: far below SQLite's variable limit, large enough to amortise the call.
_IN_CHUNK = 500
# Own-envelope kinds: a slot has at most one latest statement of each.
_KIND_NOMINATION = 0
_KIND_BALLOT = 1

# Column order matters: SQLite reaches a column by walking the record, so the
# small columns come first and the tx set (megabytes) last, keeping tip() and
# the hash lookups from reading a whole tx set's overflow pages.
_SCHEMA = """
CREATE TABLE ledgers (
    slot INTEGER PRIMARY KEY,
    close_time INTEGER NOT NULL,
    tx_count INTEGER NOT NULL,
    tx_set_hash BLOB NOT NULL,
    previous_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    value BLOB NOT NULL,
    tx_set BLOB NOT NULL
);
CREATE INDEX ledgers_by_tx_set ON ledgers (tx_set_hash);
CREATE TABLE proofs (
    slot INTEGER NOT NULL,
    node_id BLOB NOT NULL,
    envelope BLOB NOT NULL,
    PRIMARY KEY (slot, node_id)
) WITHOUT ROWID;
CREATE TABLE txs (
    tx_id BLOB PRIMARY KEY,
    slot INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX txs_by_slot ON txs (slot);
CREATE TABLE own_envelopes (
    slot INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    envelope BLOB NOT NULL,
    PRIMARY KEY (slot, kind)
) WITHOUT ROWID;
CREATE TABLE tx_sets (
    hash BLOB PRIMARY KEY,
    slot INTEGER NOT NULL,
    xdr BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE quorum_sets (
    hash BLOB PRIMARY KEY,
    xdr BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE peers (
    address TEXT PRIMARY KEY,
    last_seen INTEGER,
    failures INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"""
# Acknowledged transactions until a ledger carries them (schema version 2).
_PENDING_TXS = """
CREATE TABLE pending_txs (
    seq INTEGER PRIMARY KEY,
    tx_id BLOB NOT NULL UNIQUE,
    tx BLOB NOT NULL
);
"""
_SCHEMA += _PENDING_TXS
# Schema upgrades, by the version they start from.
_MIGRATIONS = {1: _PENDING_TXS}
_TABLES = frozenset({"ledgers", "proofs", "txs", "own_envelopes", "tx_sets", "quorum_sets", "peers", "pending_txs"})


class ChainError(LedgerError):
    """An append that would break the chain (a gap, a wrong previous hash, a mismatched tx set)."""


class StorageError(LedgerError):
    """A write SQLite could not complete (disk full, I/O error): the data was fine, the disk was not.

    Nothing of the write is stored (it was one transaction), so the caller may retry it as is.
    """


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """One stored ledger: its entry, its tx set and its place in the chain."""

    entry: LedgerEntry
    tx_set: TxSet
    previous_hash: bytes
    hash: bytes

    @property
    def slot(self) -> int:
        return self.entry.slot

    @property
    def value(self) -> ConsensusValue:
        return self.entry.value

    @property
    def close_time(self) -> int:
        return self.entry.close_time

    @property
    def tx_set_hash(self) -> bytes:
        return self.entry.tx_set_hash

    def describe(self, proofs: Iterable[SCPEnvelope] = (), bodies: bool = False) -> dict[str, object]:
        """A JSON-ready summary (hashes in hex), shared by the CLI and the HTTP API.

        Transactions are listed by id and size in tx set order; ``bodies`` adds
        each transaction's bytes in base64.
        """
        txs: list[dict[str, object]] = []
        for i, tx in zip(self.tx_set.tx_ids, self.tx_set.txs, strict=True):
            item: dict[str, object] = {"id": i.hex(), "size": len(tx)}
            if bodies:
                item["base64"] = base64.b64encode(tx).decode("ascii")
            txs.append(item)
        return {
            "slot": self.slot,
            "hash": self.hash.hex(),
            "previous_hash": self.previous_hash.hex(),
            "close_time": self.close_time,
            "tx_set_hash": self.tx_set_hash.hex(),
            "value": self.value.to_xdr().hex(),
            "tx_count": len(self.tx_set.txs),
            "tx_bytes": self.tx_set.total_bytes,
            "transactions": txs,
            "proofs": [{"node": str(env.statement.node_id), "signature": env.signature.hex()} for env in proofs],
        }


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first place where the stored chain is not what it should be."""

    slot: int
    reason: str

    def __str__(self) -> str:
        return f"slot {self.slot}: {self.reason}"


@dataclass(frozen=True, slots=True)
class PeerRecord:
    address: str
    last_seen: int | None
    failures: int


class LedgerStore:
    """The node's SQLite database; create with :meth:`open` or :meth:`open_data_dir`."""

    def __init__(
        self, conn: sqlite3.Connection, reader: sqlite3.Connection, path: Path, write_observer: WriteObserver | None
    ) -> None:
        self._conn = conn
        self._reader = reader
        self.path = path
        self._observer = write_observer
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._synchronous_full = True
        # A third connection only for checkpoints, opened on first use (see checkpoint()).
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpoint_lock = threading.Lock()

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

        An existing file is checked before use (see the module docstring); a
        missing file is created with the current schema only if ``create``.
        A zero-length file is refused rather than initialised: where a
        database is expected, an empty file means something truncated it. A
        new database is therefore built under a temporary name and renamed
        into place complete, so a crash during creation cannot leave one.
        Without ``migrate`` an older schema is refused instead of upgraded, so
        a reader (``scpd ledger``) never writes to a data directory whose lock
        it does not hold.
        """
        if not path.exists():
            if not create:
                raise LedgerError(f"{path}: no ledger database here")
            _create(path)
        _precheck_file(path)
        conn = _connect(path)
        try:
            _prepare(conn, path, migrate)
            conn.execute(f"PRAGMA wal_autocheckpoint = {_WAL_AUTOCHECKPOINT_PAGES}")
            reader = _connect(path)
        except BaseException:
            conn.close()
            raise
        return cls(conn, reader, path, write_observer)

    def close(self) -> None:
        with self._lock, self._read_lock, self._checkpoint_lock:
            self._conn.close()
            self._reader.close()
            if self._checkpointer is not None:
                self._checkpointer.close()

    def checkpoint(self) -> None:
        """Copy the write-ahead log back into the database file, without blocking writers or readers.

        Left to SQLite, the commit that takes the log past its threshold
        does this itself, inside the write: with ledgers of thousands of
        transactions that is most commits, and a third of their time, in the
        path of consensus. So the writer's automatic checkpoint only fires
        far later (a backstop), and the herder calls this in a worker thread
        after each ledger write. PASSIVE: it copies what no reader still
        needs and never waits; durability is the commits' business (each is
        already on disk in the log).
        """
        with self._checkpoint_lock:
            try:
                if self._checkpointer is None:
                    self._checkpointer = _connect(self.path)
                self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:
                raise LedgerError(f"{self.path}: database error during checkpoint: {exc}") from None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._read_lock:
            try:
                yield self._reader
            except sqlite3.Error as exc:
                raise LedgerError(f"{self.path}: database error: {exc}") from None

    @contextlib.contextmanager
    def _write(self, kind: str, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One atomic transaction; on return it is committed (and on disk if ``durable``)."""
        with self._lock:
            started = time.perf_counter()
            conn = self._conn
            try:
                if durable != self._synchronous_full:
                    conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                    self._synchronous_full = durable
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    # SQLite rolls back by itself on some errors (a full disk) and keeps the
                    # transaction open on others (a failed COMMIT): end it either way, so the
                    # next write starts clean.
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StorageError(f"{self.path}: database error during {kind}: {exc}") from None
            if self._observer is not None:
                self._observer(kind, time.perf_counter() - started)

    # -- the chain ---------------------------------------------------------

    def tip(self) -> ChainTip:
        """The last ledger, or the genesis convention (0, zeros, 0) when there is none."""
        with self._read() as conn:
            row = conn.execute("SELECT slot, hash, close_time FROM ledgers ORDER BY slot DESC LIMIT 1").fetchone()
        if row is None:
            return ChainTip(0, GENESIS_HASH, GENESIS_CLOSE_TIME)
        return ChainTip(int(row[0]), bytes(row[1]), int(row[2]))

    def latest(self) -> LedgerRecord | None:
        with self._read() as conn:
            row = conn.execute(f"{_SELECT_LEDGER} ORDER BY slot DESC LIMIT 1").fetchone()
        return None if row is None else self._record(row)

    def get(self, slot: int) -> LedgerRecord | None:
        if not 0 <= slot <= _INT64_MAX:
            return None
        with self._read() as conn:
            row = conn.execute(f"{_SELECT_LEDGER} WHERE slot = ?", (slot,)).fetchone()
        return None if row is None else self._record(row)

    def count(self) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM ledgers").fetchone()[0])

    def get_tx(self, tx_id: bytes) -> int | None:
        """The slot of the ledger that first included the transaction, or None."""
        with self._read() as conn:
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
        with self._read() as conn:
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start : start + _IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(f"SELECT tx_id FROM txs WHERE tx_id IN ({marks})", chunk).fetchall()
                found.update(bytes(r[0]) for r in rows)
        return found

    def proofs(self, slot: int) -> list[SCPEnvelope]:
        """The EXTERNALIZE envelopes stored with ledger ``slot``."""
        with self._read() as conn:
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
        if entry.slot > _INT64_MAX or entry.close_time > _INT64_MAX:
            raise ChainError(f"slot {entry.slot}: slot or close time beyond what the store can hold")
        if tx_set.hash() != entry.tx_set_hash:
            raise ChainError(f"slot {entry.slot}: the tx set given is not the one the value names")
        value_xdr = entry.value.to_xdr()
        proofs = _check_proofs(entry.slot, value_xdr, proof_envelopes)
        with self._write("ledger") as conn:
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
            with self._write("pending_txs") as conn:
                conn.executemany("INSERT OR IGNORE INTO pending_txs (tx_id, tx) VALUES (?, ?)", rows)

    def load_pending_txs(self) -> list[bytes]:
        """The acknowledged transactions no ledger carries yet, in the order they came."""
        with self._write("pending_txs") as conn:
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
        if not envs or not 0 <= slot <= _INT64_MAX:
            return 0
        with self._write("proofs", durable=False) as conn:
            row = conn.execute("SELECT value FROM ledgers WHERE slot = ?", (slot,)).fetchone()
            if row is None:
                raise ChainError(f"slot {slot}: no such ledger to add proofs to")
            proofs = _check_proofs(slot, bytes(row[0]), envs)
            cur = conn.executemany(
                "INSERT OR IGNORE INTO proofs (slot, node_id, envelope) VALUES (?, ?, ?)",
                ((slot, node, env) for node, env in proofs),
            )
            return int(cur.rowcount)

    def proof_nodes(self, slot: int) -> set[bytes]:
        """The node ids (raw ed25519 keys) with a stored proof for ``slot``."""
        with self._read() as conn:
            rows = conn.execute("SELECT node_id FROM proofs WHERE slot = ?", (min(slot, _INT64_MAX),)).fetchall()
        return {bytes(r[0]) for r in rows}

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
        with self._read() as conn:
            # One read transaction: a consistent snapshot even while the node appends.
            conn.execute("BEGIN")
            try:
                return _walk_chain(conn, _walk_start(conn, last))
            finally:
                conn.execute("COMMIT")

    def _record(self, row: tuple[object, ...]) -> LedgerRecord:
        slot = _int(row[0])
        what = f"ledger {slot}"
        value = self._decode(ConsensusValue, _blob(row[1]), what)
        tx_set = self._decode(TxSet, _blob(row[3]), what)
        return LedgerRecord(LedgerEntry(slot, value), tx_set, _blob(row[6]), _blob(row[7]))

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
            if slot > _INT64_MAX:
                raise LedgerError(f"slot {slot} is beyond what the store can hold")
            kind = _KIND_NOMINATION if isinstance(envelope.statement.pledges, SCPNomination) else _KIND_BALLOT
            rows.append((slot, kind, envelope.to_xdr()))
            for s in tx_sets:
                sets.setdefault(s.hash(), (slot, s))
        with self._write("own_envelope") as conn:
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
        with self._read() as conn:
            rows = conn.execute(
                "SELECT envelope FROM own_envelopes WHERE slot >= ? ORDER BY slot, kind", (min(from_slot, _INT64_MAX),)
            ).fetchall()
        return [self._decode(SCPEnvelope, bytes(r[0]), "own envelope") for r in rows]

    def get_tx_set(self, tx_set_hash: bytes) -> TxSet | None:
        """A tx set saved with an own envelope, or the tx set of a stored ledger."""
        with self._read() as conn:
            row = conn.execute("SELECT xdr FROM tx_sets WHERE hash = ?", (tx_set_hash,)).fetchone()
            if row is None:
                row = conn.execute(
                    "SELECT tx_set FROM ledgers WHERE tx_set_hash = ? LIMIT 1", (tx_set_hash,)
                ).fetchone()
        return None if row is None else self._decode(TxSet, bytes(row[0]), "tx set")

    def prune_own_envelopes(self, below_slot: int) -> int:
        """Forget own envelopes and their tx sets for slots < ``below_slot``; returns the envelope count."""
        below = min(below_slot, _INT64_MAX)
        with self._write("prune") as conn:
            cur = conn.execute("DELETE FROM own_envelopes WHERE slot < ?", (below,))
            conn.execute("DELETE FROM tx_sets WHERE slot < ?", (below,))
            return int(cur.rowcount)

    # -- quorum sets and peers ---------------------------------------------

    def save_quorum_set(self, qset: SCPQuorumSet) -> bytes:
        """Remember a quorum set by its hash; returns the hash."""
        h = quorum_set_hash(qset)
        with self._write("quorum_set") as conn:
            conn.execute("INSERT OR IGNORE INTO quorum_sets (hash, xdr) VALUES (?, ?)", (h, qset.to_xdr()))
        return h

    def get_quorum_set(self, qset_hash: bytes) -> SCPQuorumSet | None:
        with self._read() as conn:
            row = conn.execute("SELECT xdr FROM quorum_sets WHERE hash = ?", (qset_hash,)).fetchone()
        return None if row is None else self._decode(SCPQuorumSet, bytes(row[0]), "quorum set")

    def load_quorum_sets(self) -> dict[bytes, SCPQuorumSet]:
        with self._read() as conn:
            rows = conn.execute("SELECT hash, xdr FROM quorum_sets").fetchall()
        return {bytes(h): self._decode(SCPQuorumSet, bytes(x), "quorum set") for h, x in rows}

    def peer_seen(self, address: str, now: int) -> None:
        """A successful connection: remember the peer and clear its failures."""
        with self._write("peer", durable=False) as conn:
            conn.execute(
                "INSERT INTO peers (address, last_seen, failures) VALUES (?, ?, 0)"
                " ON CONFLICT (address) DO UPDATE SET last_seen = excluded.last_seen, failures = 0",
                (address, now),
            )
            _trim_peers(conn)

    def peer_failed(self, address: str) -> None:
        """A failed dial: remember the peer (if new) and count the failure."""
        with self._write("peer", durable=False) as conn:
            conn.execute(
                "INSERT INTO peers (address, last_seen, failures) VALUES (?, NULL, 1)"
                " ON CONFLICT (address) DO UPDATE SET failures = failures + 1",
                (address,),
            )
            _trim_peers(conn)

    def forget_peer(self, address: str) -> None:
        with self._write("peer", durable=False) as conn:
            conn.execute("DELETE FROM peers WHERE address = ?", (address,))

    def load_peers(self, limit: int = MAX_PEERS) -> list[PeerRecord]:
        """Known peers, most promising first (fewest failures, then most recently seen)."""
        with self._read() as conn:
            rows = conn.execute(f"{_SELECT_PEERS} LIMIT ?", (limit,)).fetchall()
        return [PeerRecord(str(a), None if s is None else int(s), int(f)) for a, s, f in rows]


_SELECT_LEDGER = "SELECT slot, value, close_time, tx_set, tx_set_hash, tx_count, previous_hash, hash FROM ledgers"
_SELECT_PEERS = "SELECT address, last_seen, failures FROM peers ORDER BY failures, last_seen DESC NULLS LAST, address"


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise LedgerError(f"expected an integer, found {type(value).__name__}")
    return value


def _blob(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise LedgerError(f"expected a blob, found {type(value).__name__}")
    return value


def _trim_peers(conn: sqlite3.Connection) -> None:
    """Keep the peer table bounded: drop the least promising beyond MAX_PEERS."""
    conn.execute(
        f"DELETE FROM peers WHERE address NOT IN (SELECT address FROM ({_SELECT_PEERS} LIMIT ?))", (MAX_PEERS,)
    )


def _check_proofs(slot: int, value_xdr: bytes, envelopes: Iterable[SCPEnvelope]) -> list[tuple[bytes, bytes]]:
    """Each proof as (node id, envelope XDR), refusing any that proves something else."""
    proofs: dict[bytes, bytes] = {}
    for env in envelopes:
        problem = _proof_problem(slot, value_xdr, env)
        if problem is not None:
            raise ChainError(f"slot {slot}: proof from {env.statement.node_id}: {problem}")
        proofs.setdefault(env.statement.node_id.ed25519, env.to_xdr())
    return sorted(proofs.items())


def _proof_problem(slot: int, value_xdr: bytes, env: SCPEnvelope) -> str | None:
    st = env.statement
    if not isinstance(st.pledges, SCPExternalize):
        return f"a {st.type.name} statement, not EXTERNALIZE"
    if st.slot_index != slot:
        return f"externalizes slot {st.slot_index}"
    if st.pledges.commit.value != value_xdr:
        return "externalizes another value"
    return None


def _walk_start(conn: sqlite3.Connection, last: int | None) -> ChainTip:
    """Where a walk of the latest ``last`` ledgers starts: the stored ledger before them, or the genesis."""
    genesis = ChainTip(0, GENESIS_HASH, GENESIS_CLOSE_TIME)
    if last is None:
        return genesis
    row = conn.execute(
        "SELECT slot, hash, close_time FROM ledgers WHERE slot <= (SELECT MAX(slot) FROM ledgers) - ?"
        " ORDER BY slot DESC LIMIT 1",
        (max(last, 1),),
    ).fetchone()
    return genesis if row is None else ChainTip(_int(row[0]), _blob(row[1]), _int(row[2]))


def _walk_chain(conn: sqlite3.Connection, start: ChainTip) -> ChainBreak | None:
    expected_slot, previous, last_close = start.slot + 1, start.hash, start.close_time
    for row in conn.execute(f"{_SELECT_LEDGER} WHERE slot > ? ORDER BY slot", (start.slot,)):
        slot = _int(row[0])
        if slot != expected_slot:
            return ChainBreak(expected_slot, f"missing (the next stored ledger is slot {slot})")
        problem = _check_row(conn, row, previous, last_close)
        if problem is not None:
            return ChainBreak(slot, problem)
        expected_slot, previous, last_close = slot + 1, _blob(row[7]), _int(row[2])
    return None


def _check_row(conn: sqlite3.Connection, row: tuple[object, ...], previous: bytes, last_close: int) -> str | None:
    """Why one stored ledger row does not belong after ``previous``, or None."""
    slot, value_xdr, close_time, tx_set_xdr, tx_set_hash, tx_count, prev_col, hash_col = row
    slot = _int(slot)
    if prev_col != previous:
        return "its previous hash is not the hash of the ledger before it"
    try:
        value = ConsensusValue.from_xdr(_blob(value_xdr))
        tx_set = TxSet.from_xdr(_blob(tx_set_xdr))
    except (XdrError, LedgerError) as exc:
        return f"does not decode: {exc}"
    if close_time != value.close_time or tx_set_hash != value.tx_set_hash:
        return "the close time or tx set hash column disagrees with the value"
    if tx_set.hash() != value.tx_set_hash:
        return "the stored tx set does not hash to the value's tx set hash"
    if tx_count != len(tx_set.txs):
        return "the tx count column disagrees with the tx set"
    if tx_set.previous_ledger_hash != previous:
        return "the tx set does not build on the ledger before it"
    if value.close_time < last_close:
        return f"close time {value.close_time} goes back before {last_close}"
    if ledger_hash(previous, LedgerEntry(slot, value)) != hash_col:
        return "the stored ledger hash is not the recomputed one"
    for node_id, env_xdr in conn.execute("SELECT node_id, envelope FROM proofs WHERE slot = ?", (slot,)):
        try:
            env = SCPEnvelope.from_xdr(_blob(env_xdr))
        except (XdrError, LedgerError) as exc:
            return f"a proof does not decode: {exc}"
        problem = _proof_problem(slot, value.to_xdr(), env)
        if problem is None and env.statement.node_id.ed25519 != node_id:
            problem = "stored under another node's id"
        if problem is not None:
            return f"a proof is wrong: {problem}"
    return _check_tx_index(conn, slot, tx_set)


def _check_tx_index(conn: sqlite3.Connection, slot: int, tx_set: TxSet) -> str | None:
    """Every transaction of the set is indexed here or (first included) in an earlier ledger."""
    ids = set(tx_set.tx_ids)
    indexed = {bytes(r[0]) for r in conn.execute("SELECT tx_id FROM txs WHERE slot = ?", (slot,))}
    if not indexed <= ids:
        return "the tx index names transactions this ledger does not carry"
    for i in ids - indexed:
        row = conn.execute("SELECT slot FROM txs WHERE tx_id = ?", (i,)).fetchone()
        if row is None or int(row[0]) >= slot:
            return f"transaction {i.hex()} is missing from the tx index"
    return None


def _precheck_file(path: Path) -> None:
    """Refuse, before SQLite sees it, a file that is empty, not SQLite, or shorter than its header says.

    The length check is skipped while a write-ahead log exists, since the log
    may legitimately hold pages a checkpoint had not yet copied back.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise LedgerError(f"{path}: cannot read: {exc.strerror}") from None
    if size == 0:
        raise LedgerError(f"{path}: the file is empty (truncated?); refusing to start on a blank ledger")
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise LedgerError(f"{path}: not an SQLite database")
    (page_size,) = struct.unpack_from(">H", header, 16)
    page_size = 65536 if page_size == 1 else page_size
    change_counter, page_count = struct.unpack_from(">II", header, 24)
    (valid_for,) = struct.unpack_from(">I", header, 92)
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        return
    if size % page_size or (valid_for == change_counter and size < page_count * page_size):
        raise LedgerError(
            f"{path}: truncated: {size} bytes, but the header describes {page_count} pages of {page_size} bytes"
        )


def _connect(path: Path) -> sqlite3.Connection:
    try:
        return sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    except sqlite3.Error as exc:
        raise LedgerError(f"{path}: cannot open: {exc}") from None


def _create(path: Path) -> None:
    """Build an empty database at ``path.new`` and rename it to ``path`` once complete and on disk."""
    tmp = path.with_name(path.name + ".new")
    for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
        leftover.unlink(missing_ok=True)
    conn = _connect(tmp)
    try:
        conn.executescript(
            f"PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
            f"PRAGMA synchronous = FULL; BEGIN; {_SCHEMA} COMMIT; PRAGMA journal_mode = WAL;"
        )
    except sqlite3.Error as exc:
        raise LedgerError(f"{path}: cannot create the database: {exc}") from None
    finally:
        conn.close()  # the last connection checkpoints the log into the file and removes it
    try:
        os.replace(tmp, path)
    except OSError as exc:
        raise LedgerError(f"{path}: cannot create the database: {exc.strerror}") from None
    _fsync_dir(path.parent)


def _prepare(conn: sqlite3.Connection, path: Path, migrate: bool) -> None:
    """Check the schema, switch on WAL and FULL sync, and run the quick check."""
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if app_id != APPLICATION_ID:
            raise LedgerError(f"{path}: an SQLite database, but not an scpd ledger (application id {app_id:#x})")
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"{path}: schema version {version} is newer than this scpd supports ({SCHEMA_VERSION}); upgrade scpd"
            )
        if version < SCHEMA_VERSION and not migrate:
            raise LedgerError(
                f"{path}: schema version {version} is older than this scpd's ({SCHEMA_VERSION}); "
                "start the node once to upgrade it"
            )
        while version < SCHEMA_VERSION:
            migration = _MIGRATIONS.get(version)
            if migration is None:
                raise LedgerError(f"{path}: schema version {version} is not one this scpd can read")
            conn.executescript(f"BEGIN IMMEDIATE; {migration} PRAGMA user_version = {version + 1}; COMMIT;")
            version += 1
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise LedgerError(f"{path}: cannot switch to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = FULL")
        problems = [str(r[0]) for r in conn.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            detail = "; ".join(problems).replace("\n", "; ")
            raise LedgerError(f"{path}: the database is damaged: {detail}")
        tables = {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables >= _TABLES:
            raise LedgerError(f"{path}: the database lacks tables {', '.join(sorted(_TABLES - tables))}")
    except sqlite3.Error as exc:
        raise LedgerError(f"{path}: not a usable database: {exc}") from None


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EnvelopeLog:
    """An append-only audit file of received SCP envelopes (``[ledger] record_envelopes``).

    Each record is ``uint32 length || 32-byte sender peer key || envelope XDR``
    (big-endian length of what follows). It exists so that tests and
    operators can check, from the outside, that no node ever contradicted
    itself. Written unbuffered and without fsync: it is evidence, not state,
    and a torn last record after a crash is skipped by :meth:`read`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("ab", buffering=0)

    def append(self, peer_key: bytes, envelope: SCPEnvelope) -> None:
        data = peer_key + envelope.to_xdr()
        self._file.write(struct.pack(">I", len(data)) + data)

    def close(self) -> None:
        self._file.close()

    @staticmethod
    def read(path: Path) -> list[tuple[bytes, SCPEnvelope]]:
        """Every complete record in the file, in the order written: (sender peer key, envelope)."""
        data = path.read_bytes()
        out: list[tuple[bytes, SCPEnvelope]] = []
        pos = 0
        while pos + 4 <= len(data):
            (n,) = struct.unpack_from(">I", data, pos)
            if pos + 4 + n > len(data) or n < 32:
                break
            body = data[pos + 4 : pos + 4 + n]
            out.append((body[:32], SCPEnvelope.from_xdr(body[32:])))
            pos += 4 + n
        return out
