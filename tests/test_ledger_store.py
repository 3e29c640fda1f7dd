"""The SQLite ledger store: chain links, verification, refusal of bad files, crash safety."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scpd.base.keys import Keypair, network_id, sign_statement, verify_envelope
from scpd.base.quorum import quorum_set_hash
from scpd.base.types import (
    SCPBallot,
    SCPEnvelope,
    SCPExternalize,
    SCPNomination,
    SCPPrepare,
    SCPQuorumSet,
    SCPStatement,
)
from scpd.errors import LedgerError
from scpd.node.ledger import LedgerStore
from scpd.node.ledger_chain import ChainError
from scpd.node.ledger_schema import DB_FILENAME, SCHEMA_VERSION
from scpd.node.metrics import LEDGER_WRITE_KINDS
from scpd.nodecore.values import GENESIS_HASH, ChainTip, ConsensusValue, LedgerEntry, TxSet, tx_id

NET = network_id("scpd ledger tests")
KEYS = [Keypair(bytes([i + 1]) * 32) for i in range(3)]
QSET_HASH = bytes(32)


def externalize(kp: Keypair, slot: int, value: ConsensusValue) -> SCPEnvelope:
    pledges = SCPExternalize(SCPBallot(1, value.to_xdr()), 1, QSET_HASH)
    return sign_statement(kp, NET, SCPStatement(kp.node_id, slot, pledges))


def make_ledger(
    slot: int, previous: bytes, txs: list[bytes], close_time: int | None = None
) -> tuple[LedgerEntry, TxSet]:
    tx_set = TxSet.canonical(previous, txs)
    value = ConsensusValue(1000 + slot if close_time is None else close_time, tx_set.hash())
    return LedgerEntry(slot, value), tx_set


def append_next(store: LedgerStore, txs: list[bytes]) -> None:
    tip = store.tip()
    entry, tx_set = make_ledger(tip.slot + 1, tip.hash, txs)
    store.append_ledger(entry, tx_set, [externalize(kp, entry.slot, entry.value) for kp in KEYS[:2]])


def build_chain(path: Path, slots: int, txs_per_slot: int = 3) -> None:
    """A closed database at ``path`` holding ``slots`` ledgers."""
    with LedgerStore.open(path) as store:
        for _ in range(slots):
            n = store.tip().slot + 1
            append_next(store, [f"tx {n}.{i}".encode() * 4 for i in range(txs_per_slot)])


@pytest.fixture
def store(tmp_path: Path) -> LedgerStore:
    s = LedgerStore.open_data_dir(tmp_path / "data")
    yield s  # type: ignore[misc]
    s.close()


# -- the chain ------------------------------------------------------------------


def test_empty_store_is_at_the_genesis(store: LedgerStore) -> None:
    assert store.tip() == ChainTip(0, GENESIS_HASH, 0)
    assert store.latest() is None
    assert store.get(1) is None
    assert store.verify_chain() is None
    assert (store.path.parent / DB_FILENAME) == store.path


def test_appended_ledgers_chain_and_read_back(store: LedgerStore) -> None:
    for n in range(1, 4):
        append_next(store, [f"tx{n}a".encode(), f"tx{n}b".encode()])
    first, second, third = (store.get(n) for n in (1, 2, 3))
    assert first is not None and second is not None and third is not None
    assert first.previous_hash == GENESIS_HASH
    assert second.previous_hash == first.hash and third.previous_hash == second.hash
    assert store.latest() == third
    assert store.tip() == ChainTip(3, third.hash, third.close_time)
    assert set(second.tx_set.txs) == {b"tx2a", b"tx2b"}
    assert store.get_tx(tx_id(b"tx2b")) == 2
    assert store.get_tx(tx_id(b"nope")) is None
    proofs = store.proofs(2)
    assert {p.statement.node_id for p in proofs} == {KEYS[0].node_id, KEYS[1].node_id}
    assert all(verify_envelope(NET, p) for p in proofs)
    assert store.count() == 3
    assert store.verify_chain() is None


def test_append_returns_the_stored_record_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with LedgerStore.open(path) as s:
        entry, tx_set = make_ledger(1, GENESIS_HASH, [b"only"])
        record = s.append_ledger(entry, tx_set, [])
    with LedgerStore.open(path, create=False) as s:
        assert s.latest() == record
        assert s.get_tx(tx_id(b"only")) == 1


def test_append_refuses_a_gap(store: LedgerStore) -> None:
    entry, tx_set = make_ledger(2, GENESIS_HASH, [b"a"])
    with pytest.raises(ChainError, match="ends at slot 0, expected slot 1"):
        store.append_ledger(entry, tx_set, [])
    assert store.tip().slot == 0


def test_append_refuses_the_same_slot_twice(store: LedgerStore) -> None:
    append_next(store, [b"a"])
    entry, tx_set = make_ledger(1, GENESIS_HASH, [b"b"])
    with pytest.raises(ChainError, match="expected slot 2"):
        store.append_ledger(entry, tx_set, [])


def test_append_refuses_a_wrong_previous_hash(store: LedgerStore) -> None:
    append_next(store, [b"a"])
    entry, tx_set = make_ledger(2, GENESIS_HASH, [b"b"])
    with pytest.raises(ChainError, match="builds on"):
        store.append_ledger(entry, tx_set, [])
    assert store.tip().slot == 1


def test_append_refuses_a_tx_set_the_value_does_not_name(store: LedgerStore) -> None:
    entry, _ = make_ledger(1, GENESIS_HASH, [b"a"])
    with pytest.raises(ChainError, match="not the one the value names"):
        store.append_ledger(entry, TxSet.canonical(GENESIS_HASH, [b"z"]), [])


def test_append_refuses_proofs_of_anything_else(store: LedgerStore) -> None:
    entry, tx_set = make_ledger(1, GENESIS_HASH, [b"a"])
    other = ConsensusValue(5, tx_set.hash())
    prepare = sign_statement(
        KEYS[0], NET, SCPStatement(KEYS[0].node_id, 1, SCPPrepare(QSET_HASH, SCPBallot(1, entry.value.to_xdr())))
    )
    for bad, why in [
        (externalize(KEYS[0], 1, other), "another value"),
        (externalize(KEYS[0], 2, entry.value), "externalizes slot 2"),
        (prepare, "PREPARE statement"),
    ]:
        with pytest.raises(ChainError, match=why):
            store.append_ledger(entry, tx_set, [bad])
    assert store.tip().slot == 0


def test_a_transaction_carried_twice_keeps_its_first_slot(store: LedgerStore) -> None:
    append_next(store, [b"dup", b"x"])
    append_next(store, [b"dup", b"y"])
    assert store.get_tx(tx_id(b"dup")) == 1
    assert store.get_tx(tx_id(b"y")) == 2
    assert store.verify_chain() is None


def test_included_among_answers_many_ids_at_once(store: LedgerStore) -> None:
    append_next(store, [f"in {i}".encode() for i in range(700)])  # more than one query chunk
    asked = [tx_id(f"in {i}".encode()) for i in range(0, 700, 3)] + [tx_id(b"never"), tx_id(b"in 1")]
    expected = {tx_id(f"in {i}".encode()) for i in range(0, 700, 3)} | {tx_id(b"in 1")}
    assert store.included_among(asked) == expected
    assert store.included_among([]) == set()
    assert store.included_among([tx_id(b"never")]) == set()


def test_ledger_commits_stay_in_the_log_until_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    with LedgerStore.open(path) as store:
        before = path.stat().st_size
        for _ in range(3):
            append_next(store, [os.urandom(300) for _ in range(300)])
        assert path.stat().st_size == before  # committed (on disk in the log), not yet copied back
        store.checkpoint()
        assert path.stat().st_size > before + 3 * 300 * 300
        assert store.verify_chain() is None and store.tip().slot == 3
    with LedgerStore.open(path, create=False) as again:
        assert again.verify_chain() is None and again.tip().slot == 3


def test_writes_are_observed_for_metrics(tmp_path: Path) -> None:
    seen: list[tuple[str, float]] = []
    with LedgerStore.open(tmp_path / "l.db", write_observer=lambda k, s: seen.append((k, s))) as s:
        append_next(s, [b"a"])
        s.save_quorum_set(SCPQuorumSet(1, (KEYS[0].node_id,)))
    assert [k for k, _ in seen] == ["ledger", "quorum_set"]
    assert all(secs >= 0 for _, secs in seen)


# -- verify_chain finds tampering ---------------------------------------------------


def tamper(path: Path, sql: str, *args: object) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(sql, args)
    conn.close()


@pytest.fixture
def chain_db(tmp_path: Path) -> Path:
    path = tmp_path / "chain.db"
    build_chain(path, 6)
    return path


def verify(path: Path) -> tuple[int, str] | None:
    with LedgerStore.open(path, create=False) as s:
        found = s.verify_chain()
    return None if found is None else (found.slot, found.reason)


def test_verify_finds_a_rewritten_hash(chain_db: Path) -> None:
    tamper(chain_db, "UPDATE ledgers SET hash = ? WHERE slot = 3", b"\x01" * 32)
    assert verify(chain_db) == (3, "the stored ledger hash is not the recomputed one")


def test_verify_finds_a_changed_value_even_with_consistent_columns(chain_db: Path) -> None:
    with LedgerStore.open(chain_db) as s:
        record = s.get(4)
    assert record is not None
    forged = ConsensusValue(record.close_time + 1, record.tx_set_hash)
    tamper(chain_db, "UPDATE ledgers SET value = ?, close_time = ? WHERE slot = 4", forged.to_xdr(), forged.close_time)
    found = verify(chain_db)
    assert found is not None and found[0] == 4


def test_verify_finds_a_missing_ledger(chain_db: Path) -> None:
    tamper(chain_db, "DELETE FROM ledgers WHERE slot = 2")
    assert verify(chain_db) == (2, "missing (the next stored ledger is slot 3)")


def test_verify_finds_a_swapped_tx_set(chain_db: Path) -> None:
    tamper(chain_db, "UPDATE ledgers SET tx_set = ? WHERE slot = 5", TxSet(GENESIS_HASH, (b"forged",)).to_xdr())
    found = verify(chain_db)
    assert found is not None and found[0] == 5 and "tx set" in found[1]


def test_verify_finds_an_unindexed_transaction(chain_db: Path) -> None:
    tamper(chain_db, "DELETE FROM txs WHERE slot = 6")
    found = verify(chain_db)
    assert found is not None and found[0] == 6 and "tx index" in found[1]


def test_verify_finds_a_proof_of_another_value(chain_db: Path) -> None:
    bogus = externalize(KEYS[2], 2, ConsensusValue(1, bytes(32)))
    tamper(chain_db, "INSERT INTO proofs VALUES (2, ?, ?)", KEYS[2].node_id.ed25519, bogus.to_xdr())
    found = verify(chain_db)
    assert found is not None and found[0] == 2 and "proof" in found[1]


_COLUMNS = ["value", "close_time", "tx_set", "tx_set_hash", "tx_count", "previous_hash", "hash"]


@given(slot=st.integers(1, 6), column=st.sampled_from(_COLUMNS), flip=st.integers(0, 10_000))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_verify_finds_any_single_changed_column(chain_db: Path, slot: int, column: str, flip: int) -> None:
    copy = chain_db.with_name(f"copy-{slot}-{column}-{flip}.db")
    shutil.copyfile(chain_db, copy)
    conn = sqlite3.connect(copy)
    (old,) = conn.execute(f"SELECT {column} FROM ledgers WHERE slot = ?", (slot,)).fetchone()
    if isinstance(old, bytes):
        data = bytearray(old)
        data[flip % len(data)] ^= 1 << (flip % 8)
        new: object = bytes(data)
    else:
        new = old + 1 + flip
    with conn:
        conn.execute(f"UPDATE ledgers SET {column} = ? WHERE slot = ?", (new, slot))
    conn.close()
    found = verify(copy)
    assert found is not None
    assert found[0] == slot
    copy.unlink()


# -- refusing bad files ------------------------------------------------------------


def test_garbage_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(LedgerError, match="not an SQLite database"):
        LedgerStore.open(path)


def test_empty_file_is_refused_not_reinitialised(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    path.write_bytes(b"")
    with pytest.raises(LedgerError, match="empty"):
        LedgerStore.open(path)
    assert path.stat().st_size == 0


def test_truncated_file_is_refused(chain_db: Path) -> None:
    size = chain_db.stat().st_size
    for cut in (size // 2, size - 100, 4096):
        copy = chain_db.with_name(f"cut{cut}.db")
        copy.write_bytes(chain_db.read_bytes()[:cut])
        with pytest.raises(LedgerError, match="truncated"):
            LedgerStore.open(copy)


def test_damaged_page_is_refused(chain_db: Path) -> None:
    data = bytearray(chain_db.read_bytes())
    page = 4096
    assert len(data) >= 3 * page
    data[2 * page : 3 * page] = os.urandom(page)
    chain_db.write_bytes(bytes(data))
    with pytest.raises(LedgerError, match=str(chain_db)):
        LedgerStore.open(chain_db)


def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match="not an scpd ledger"):
        LedgerStore.open(path)


def test_newer_schema_is_refused(chain_db: Path) -> None:
    conn = sqlite3.connect(chain_db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(LedgerError, match="schema version 99 is newer"):
        LedgerStore.open(chain_db)


def test_missing_table_is_refused(chain_db: Path) -> None:
    tamper(chain_db, "DROP TABLE quorum_sets")
    with pytest.raises(LedgerError, match="lacks tables quorum_sets"):
        LedgerStore.open(chain_db)


def test_missing_file_is_refused_unless_creating(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no ledger database"):
        LedgerStore.open(tmp_path / "absent.db", create=False)
    with pytest.raises(LedgerError, match="no such data directory"):
        LedgerStore.open_data_dir(tmp_path / "absent", create=False)
    assert not (tmp_path / "absent.db").exists()


def test_creation_is_atomic_and_ignores_a_leftover_from_a_crash(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    (tmp_path / (DB_FILENAME + ".new")).write_bytes(b"half-built database from a crash")
    LedgerStore.open(path).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [DB_FILENAME]
    with LedgerStore.open(path, create=False) as s:
        assert s.tip().slot == 0
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_bad_rows_read_back_as_ledger_errors(chain_db: Path) -> None:
    tamper(chain_db, "UPDATE ledgers SET tx_set = X'00' WHERE slot = 2")
    with LedgerStore.open(chain_db) as s, pytest.raises(LedgerError, match="ledger 2 is corrupt"):
        s.get(2)


# -- own envelopes, quorum sets, peers ------------------------------------------------


def nominate(slot: int, votes: tuple[bytes, ...]) -> SCPEnvelope:
    kp = KEYS[0]
    return sign_statement(kp, NET, SCPStatement(kp.node_id, slot, SCPNomination(QSET_HASH, votes)))


def prepare(slot: int, counter: int) -> SCPEnvelope:
    kp = KEYS[0]
    return sign_statement(kp, NET, SCPStatement(kp.node_id, slot, SCPPrepare(QSET_HASH, SCPBallot(counter, b"v"))))


def test_own_envelopes_keep_the_latest_of_each_kind_per_slot(store: LedgerStore) -> None:
    tx_set = TxSet.canonical(GENESIS_HASH, [b"pending"])
    store.save_own_envelope(1, nominate(1, (b"a",)), [tx_set])
    store.save_own_envelope(1, nominate(1, (b"a", b"b")))
    store.save_own_envelope(1, prepare(1, 1))
    store.save_own_envelope(1, prepare(1, 2))
    store.save_own_envelope(2, prepare(2, 1))
    assert store.load_own_envelopes(0) == [nominate(1, (b"a", b"b")), prepare(1, 2), prepare(2, 1)]
    assert store.load_own_envelopes(2) == [prepare(2, 1)]
    assert store.get_tx_set(tx_set.hash()) == tx_set
    assert store.prune_own_envelopes(2) == 2
    assert store.load_own_envelopes(0) == [prepare(2, 1)]
    assert store.get_tx_set(tx_set.hash()) is None


def test_own_envelope_must_match_its_slot(store: LedgerStore) -> None:
    with pytest.raises(LedgerError, match="saved under slot 2"):
        store.save_own_envelope(2, prepare(1, 1))


def test_tx_sets_of_stored_ledgers_are_found_by_hash(store: LedgerStore) -> None:
    append_next(store, [b"a"])
    record = store.latest()
    assert record is not None
    assert store.get_tx_set(record.tx_set_hash) == record.tx_set


def test_quorum_sets_are_stored_by_hash(tmp_path: Path) -> None:
    qset = SCPQuorumSet(2, tuple(kp.node_id for kp in KEYS))
    path = tmp_path / "l.db"
    with LedgerStore.open(path) as s:
        assert s.save_quorum_set(qset) == quorum_set_hash(qset)
        s.save_quorum_set(qset)
    with LedgerStore.open(path) as s:
        assert s.get_quorum_set(quorum_set_hash(qset)) == qset
        assert s.load_quorum_sets() == {quorum_set_hash(qset): qset}
        assert s.get_quorum_set(bytes(32)) is None


def test_the_reserved_peers_table_is_still_created_and_old_rows_in_it_do_no_harm(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    build_chain(path, 2)
    with sqlite3.connect(path) as conn:  # a file from a version that declared the table: rows left there are ignored
        conn.execute("INSERT INTO peers (address, last_seen, failures) VALUES ('10.0.0.1:11625', 100, 1)")
    conn.close()
    with LedgerStore.open(path, create=False) as s:
        assert s.verify_chain() is None and s.tip().slot == 2
        append_next(s, [b"after"])
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM peers").fetchone()[0] == 1
    conn.close()
    tamper(path, "DROP TABLE peers")
    with LedgerStore.open(path, create=False) as s:  # nothing reads it: a file without it is fine too
        assert s.verify_chain() is None and s.tip().slot == 3


# -- crash safety -------------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from scpd.base.keys import Keypair, network_id, sign_statement
    from scpd.base.types import SCPBallot, SCPExternalize, SCPNomination, SCPPrepare, SCPStatement
    from scpd.node.ledger import LedgerStore
    from scpd.nodecore.values import ConsensusValue, LedgerEntry, TxSet

    net = network_id("scpd ledger tests")
    kp = Keypair(bytes([1]) * 32)
    store = LedgerStore.open(Path(sys.argv[1]))
    qh = bytes(32)
    while True:
        tip = store.tip()
        slot = tip.slot + 1
        tx_set = TxSet.canonical(tip.hash, [f"tx {slot}.{i}".encode() * 20 for i in range(50)])
        value = ConsensusValue(slot, tx_set.hash())
        nom = SCPStatement(kp.node_id, slot, SCPNomination(qh, (value.to_xdr(),)))
        store.save_own_envelope(slot, sign_statement(kp, net, nom), [tx_set])
        prep = SCPStatement(kp.node_id, slot, SCPPrepare(qh, SCPBallot(1, value.to_xdr())))
        store.save_own_envelope(slot, sign_statement(kp, net, prep))
        ext = SCPStatement(kp.node_id, slot, SCPExternalize(SCPBallot(1, value.to_xdr()), 1, qh))
        store.append_ledger(LedgerEntry(slot, value), tx_set, [sign_statement(kp, net, ext)])
        print(slot, flush=True)
    """
)


def run_writer_and_kill(path: Path, acks_before_kill: int) -> int:
    """Start a writer process, SIGKILL it after it acknowledged some slots; returns the last acknowledged slot."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        last = 0
        for _ in range(acks_before_kill):
            line = proc.stdout.readline()
            assert line, f"writer exited early: {proc.stderr.read() if proc.stderr else ''}"
            last = int(line)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return last


@pytest.mark.timeout(120)
def test_sigkill_mid_write_leaves_whole_entries_only(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    for acks in (1, 7, 3, 12, 5, 2, 9, 4, 15, 6):
        acknowledged = run_writer_and_kill(path, acks)
        with LedgerStore.open(path, create=False) as s:
            assert s.verify_chain() is None
            tip = s.tip()
            # Everything acknowledged is on disk; at most the write in flight is missing.
            assert tip.slot >= acknowledged
            envelopes = s.load_own_envelopes(0)
            by_slot: dict[int, list[SCPEnvelope]] = {}
            for env in envelopes:
                assert verify_envelope(NET, env)
                by_slot.setdefault(env.statement.slot_index, []).append(env)
            for slot in range(1, tip.slot + 1):
                kinds = [type(e.statement.pledges) for e in by_slot[slot]]
                assert kinds == [SCPNomination, SCPPrepare]
                record = s.get(slot)
                assert record is not None
                assert s.get_tx_set(record.tx_set_hash) == record.tx_set
                assert len(record.tx_set.txs) == 50
            # An own envelope may be ahead of the chain by the one slot in flight, never more.
            assert max(by_slot) <= tip.slot + 1


# -- acknowledged transactions ----------------------------------------------------


def test_pending_transactions_survive_reopen_until_a_ledger_carries_them(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with LedgerStore.open(path) as s:
        s.save_pending_txs([b"first", b"second", b"third"])
        s.save_pending_txs([b"second"])  # saved twice, kept once
    with LedgerStore.open(path, create=False) as s:
        assert s.load_pending_txs() == [b"first", b"second", b"third"]
        append_next(s, [b"second", b"other"])
        assert s.load_pending_txs() == [b"first", b"third"]


def test_a_pending_transaction_saved_after_its_ledger_is_dropped_on_load(store: LedgerStore) -> None:
    append_next(store, [b"raced"])
    store.save_pending_txs([b"raced", b"waiting"])
    assert store.load_pending_txs() == [b"waiting"]
    assert store.load_pending_txs() == [b"waiting"]


def test_a_version_1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    build_chain(path, 2)
    with sqlite3.connect(path) as conn:  # what the first released schema looked like
        conn.execute("DROP TABLE pending_txs")
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    with LedgerStore.open(path, create=False) as s:
        assert s.verify_chain() is None and s.tip().slot == 2
        s.save_pending_txs([b"after the upgrade"])
        assert s.load_pending_txs() == [b"after the upgrade"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_every_kind_of_write_has_its_latency_series_from_the_start(tmp_path: Path) -> None:
    # scpd_ledger_write_seconds{kind} is created for LEDGER_WRITE_KINDS at start: a kind the store
    # writes but the list lacks appears late; a kind it lists but never writes is a dead series.
    kinds: set[str] = set()
    with LedgerStore.open_data_dir(tmp_path / "data", write_observer=lambda kind, _: kinds.add(kind)) as store:
        append_next(store, [b"tx one"])
        tip = store.tip()
        entry = store.get(tip.slot)
        assert entry is not None
        store.add_proofs(tip.slot, [externalize(KEYS[2], tip.slot, entry.value)])
        store.save_pending_txs([b"tx two"])
        nomination = SCPNomination(QSET_HASH, (), ())
        store.save_own_envelopes([(sign_statement(KEYS[0], NET, SCPStatement(KEYS[0].node_id, 2, nomination)), [])])
        store.prune_own_envelopes(1)
        store.save_quorum_set(SCPQuorumSet(1, (KEYS[0].node_id,)))
    assert kinds == set(LEDGER_WRITE_KINDS)
