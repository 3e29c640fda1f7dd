"""The ledger database file: its schema, its upgrades, and the checks before the store uses it.

A file is scpd's when its ``PRAGMA application_id`` says so, and its schema
version is ``PRAGMA user_version``. ``precheck_file`` refuses, before SQLite
reads it, an empty or truncated file or one that is not SQLite; ``prepare``
refuses another application's database, a newer schema, missing tables and
any damage ``PRAGMA quick_check`` finds, and upgrades an older schema (when
allowed). ``create_database`` builds a new file under a temporary name and
renames it into place complete, so a crash during creation cannot leave half
of one.
"""

from __future__ import annotations

import os
import sqlite3
import struct
from pathlib import Path

from scpd.errors import LedgerError

__all__ = [
    "APPLICATION_ID",
    "DB_FILENAME",
    "INT64_MAX",
    "SCHEMA_VERSION",
    "connect",
    "create_database",
    "precheck_file",
    "prepare",
]

DB_FILENAME = "ledger.db"
APPLICATION_ID = 0x53435044  # "SCPD": marks the file as ours.
SCHEMA_VERSION = 2
# The largest integer an SQLite column holds: slots and times beyond it are refused, not wrapped.
INT64_MAX = (1 << 63) - 1

_SQLITE_MAGIC = b"SQLite format 3\x00"

# Column order matters: SQLite reaches a column by walking the record, so the
# small columns come first and the tx set (megabytes) last, keeping tip() and
# the hash lookups from reading a whole tx set's overflow pages. ``peers`` is
# reserved: the store neither writes nor reads it, and still creates it so that
# every file has the same tables, whichever version of scpd made it or opens it.
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
# The tables the store uses: a file without one of them is refused.
_TABLES = frozenset({"ledgers", "proofs", "txs", "own_envelopes", "tx_sets", "quorum_sets", "pending_txs"})


def precheck_file(path: Path) -> None:
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


def connect(path: Path) -> sqlite3.Connection:
    try:
        return sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    except sqlite3.Error as exc:
        raise LedgerError(f"{path}: cannot open: {exc}") from None


def create_database(path: Path) -> None:
    """Build an empty database at ``path.new`` and rename it to ``path`` once complete and on disk."""
    tmp = path.with_name(path.name + ".new")
    for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
        leftover.unlink(missing_ok=True)
    conn = connect(tmp)
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


def prepare(conn: sqlite3.Connection, path: Path, migrate: bool) -> None:
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
