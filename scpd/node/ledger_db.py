"""The connections to one ledger file, and the transactions the store reads and writes through.

Writes go through one connection behind a lock, each one ``BEGIN IMMEDIATE``
.. ``COMMIT`` transaction (durable, ``synchronous=FULL``, unless the caller
says the data can be relearned); reads go through a second connection behind
another lock, so in WAL mode a long ledger commit in a worker thread never
stalls the event loop's cheap reads. A third connection, opened on first use,
only checkpoints. A write SQLite cannot complete raises ``StorageError`` and
leaves nothing behind, so it can be retried as is.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from scpd.errors import LedgerError
from scpd.node.ledger_schema import connect, create_database, precheck_file, prepare

__all__ = ["LedgerDatabase", "StorageError", "WriteObserver"]

WriteObserver = Callable[[str, float], None]

# The writer checkpoints the log by itself only past this many pages (256 MiB with 4 KiB pages);
# normally LedgerDatabase.checkpoint runs after each ledger, off the write path.
_WAL_AUTOCHECKPOINT_PAGES = 65536


class StorageError(LedgerError):
    """A write SQLite could not complete (disk full, I/O error): the data was fine, the disk was not.

    Nothing of the write is stored (it was one transaction), so the caller may retry it as is.
    """


class LedgerDatabase:
    """One ledger file, open: its writer, its reader and (once used) its checkpointer."""

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

    @classmethod
    def open(cls, path: Path, *, create: bool, migrate: bool, write_observer: WriteObserver | None) -> LedgerDatabase:
        """Open (or, if ``create``, create) the file at ``path``, refusing anything unusable."""
        if not path.exists():
            if not create:
                raise LedgerError(f"{path}: no ledger database here")
            create_database(path)
        precheck_file(path)
        conn = connect(path)
        try:
            prepare(conn, path, migrate)
            conn.execute(f"PRAGMA wal_autocheckpoint = {_WAL_AUTOCHECKPOINT_PAGES}")
            reader = connect(path)
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
                    self._checkpointer = connect(self.path)
                self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:
                raise LedgerError(f"{self.path}: database error during checkpoint: {exc}") from None

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self._read_lock:
            try:
                yield self._reader
            except sqlite3.Error as exc:
                raise LedgerError(f"{self.path}: database error: {exc}") from None

    @contextlib.contextmanager
    def write(self, kind: str, durable: bool = True) -> Iterator[sqlite3.Connection]:
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
