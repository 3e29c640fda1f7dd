"""The hash chain as stored: one record per ledger, its EXTERNALIZE proofs, and the walk that re-checks it.

A stored ledger links to the one before it by hash (:mod:`scpd.nodecore.values`
defines the entry and the genesis convention). ``check_proofs`` refuses a
proof that is not an EXTERNALIZE of the ledger's value for its slot, before
anything is written; ``walk_chain`` re-reads stored rows and recomputes every
hash, so an edited, damaged or half-written chain is found at the first slot
where it goes wrong (``LedgerStore.verify_chain``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from scpd.base.types import SCPEnvelope, SCPExternalize
from scpd.errors import LedgerError, XdrError
from scpd.nodecore.values import (
    GENESIS_CLOSE_TIME,
    GENESIS_HASH,
    ChainTip,
    ConsensusValue,
    LedgerEntry,
    TxSet,
    ledger_hash,
)

__all__ = [
    "SELECT_LEDGER",
    "ChainBreak",
    "ChainError",
    "blob_column",
    "check_proofs",
    "int_column",
    "walk_chain",
    "walk_start",
]


class ChainError(LedgerError):
    """An append that would break the chain (a gap, a wrong previous hash, a mismatched tx set)."""


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first place where the stored chain is not what it should be."""

    slot: int
    reason: str

    def __str__(self) -> str:
        return f"slot {self.slot}: {self.reason}"


SELECT_LEDGER = "SELECT slot, value, close_time, tx_set, tx_set_hash, tx_count, previous_hash, hash FROM ledgers"


def int_column(value: object) -> int:
    if not isinstance(value, int):
        raise LedgerError(f"expected an integer, found {type(value).__name__}")
    return value


def blob_column(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise LedgerError(f"expected a blob, found {type(value).__name__}")
    return value


def check_proofs(slot: int, value_xdr: bytes, envelopes: Iterable[SCPEnvelope]) -> list[tuple[bytes, bytes]]:
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


def walk_start(conn: sqlite3.Connection, last: int | None) -> ChainTip:
    """Where a walk of the latest ``last`` ledgers starts: the stored ledger before them, or the genesis."""
    genesis = ChainTip(0, GENESIS_HASH, GENESIS_CLOSE_TIME)
    if last is None:
        return genesis
    row = conn.execute(
        "SELECT slot, hash, close_time FROM ledgers WHERE slot <= (SELECT MAX(slot) FROM ledgers) - ?"
        " ORDER BY slot DESC LIMIT 1",
        (max(last, 1),),
    ).fetchone()
    return genesis if row is None else ChainTip(int_column(row[0]), blob_column(row[1]), int_column(row[2]))


def walk_chain(conn: sqlite3.Connection, start: ChainTip) -> ChainBreak | None:
    expected_slot, previous, last_close = start.slot + 1, start.hash, start.close_time
    for row in conn.execute(f"{SELECT_LEDGER} WHERE slot > ? ORDER BY slot", (start.slot,)):
        slot = int_column(row[0])
        if slot != expected_slot:
            return ChainBreak(expected_slot, f"missing (the next stored ledger is slot {slot})")
        problem = _check_row(conn, row, previous, last_close)
        if problem is not None:
            return ChainBreak(slot, problem)
        expected_slot, previous, last_close = slot + 1, blob_column(row[7]), int_column(row[2])
    return None


def _check_row(conn: sqlite3.Connection, row: tuple[object, ...], previous: bytes, last_close: int) -> str | None:
    """Why one stored ledger row does not belong after ``previous``, or None."""
    slot, value_xdr, close_time, tx_set_xdr, tx_set_hash, tx_count, prev_col, hash_col = row
    slot = int_column(slot)
    if prev_col != previous:
        return "its previous hash is not the hash of the ledger before it"
    try:
        value = ConsensusValue.from_xdr(blob_column(value_xdr))
        tx_set = TxSet.from_xdr(blob_column(tx_set_xdr))
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
            env = SCPEnvelope.from_xdr(blob_column(env_xdr))
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
