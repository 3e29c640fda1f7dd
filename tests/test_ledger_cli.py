"""``scpd ledger verify`` and ``scpd ledger show`` on real database files."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from test_ledger_store import KEYS, build_chain

from scpd.base.keys import Keypair, network_id, sign_statement
from scpd.base.quorum import quorum_set_hash
from scpd.base.types import SCPBallot, SCPEnvelope, SCPExternalize, SCPQuorumSet, SCPStatement
from scpd.cli.main import main
from scpd.node.ledger import LedgerStore
from scpd.node.ledger_schema import DB_FILENAME
from scpd.node.proof_audit import first_unproven_ledger
from scpd.nodecore.values import GENESIS_HASH, ConsensusValue, LedgerEntry, TxSet, tx_id
from scpd.operator.config import load_config
from scpd.operator.config_node import NodeConfig
from scpd.operator.localnet_config import localnet_configs, write_localnet

NODE_KEYS = [Keypair(bytes([0x40 + i]) * 32) for i in range(4)]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    build_chain(d / DB_FILENAME, 4)
    return d


@dataclasses.dataclass
class Node:
    """A validator's configuration (node1 of four, threshold 3) and its data directory, with a ledger."""

    config: Path
    cfg: NodeConfig

    @property
    def data_dir(self) -> Path:
        return self.cfg.data_dir

    def verify(self) -> subprocess.CompletedProcess[str]:
        return run_scpd("ledger", "verify", "--config", str(self.config))

    def append(self, signers: list[Keypair], txs: list[bytes]) -> None:
        """One more ledger, proven by the EXTERNALIZE statements of ``signers`` (quorum sets declared as ours)."""
        with LedgerStore.open_data_dir(self.data_dir) as store:
            tip = store.tip()
            tx_set = TxSet.canonical(tip.hash, txs)
            value = ConsensusValue(1000 + tip.slot, tx_set.hash())
            pledges = SCPExternalize(SCPBallot(1, value.to_xdr()), 1, self.cfg.quorum_set_hash)
            proofs = [
                sign_statement(kp, self.cfg.network_id, SCPStatement(kp.public_key, tip.slot + 1, pledges))
                for kp in signers
            ]
            store.append_ledger(LedgerEntry(tip.slot + 1, value), tx_set, proofs)


@pytest.fixture
def node(tmp_path: Path) -> Node:
    paths = write_localnet(tmp_path, localnet_configs(4, peer_base_port=40100, keypairs=NODE_KEYS))
    n = Node(paths[0], load_config(paths[0]))
    for slot in range(1, 5):
        n.append(NODE_KEYS[1:3], [f"tx {slot}".encode()])
    return n


def stored_proof(data_dir: Path, slot: int, signer: Keypair) -> SCPEnvelope:
    with LedgerStore.open_data_dir(data_dir, create=False) as store:
        return next(e for e in store.proofs(slot) if e.statement.node_id == signer.public_key)


def run_scpd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scpd", *args], capture_output=True, text=True, timeout=60)


def test_verify_reports_a_sound_chain_and_exits_0(node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "verify", "--config", str(node.config)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ledger ok: 4 ledgers (slots 1..4)")


def test_verify_of_an_empty_ledger_is_ok(node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    empty = node.data_dir.parent / "empty"
    LedgerStore.open_data_dir(empty).close()
    assert main(["ledger", "verify", "--config", str(node.config), "--data-dir", str(empty)]) == 0
    assert "empty" in capsys.readouterr().out


def test_verify_needs_the_configuration(data_dir: Path) -> None:
    result = run_scpd("ledger", "verify", "--data-dir", str(data_dir))
    assert result.returncode == 2
    assert "--config" in result.stderr


def test_verify_reports_the_first_break_and_exits_1(node: Node) -> None:
    conn = sqlite3.connect(node.data_dir / DB_FILENAME)
    with conn:
        conn.execute("UPDATE ledgers SET hash = ? WHERE slot IN (2, 3)", (b"\xff" * 32,))
    conn.close()
    result = node.verify()
    assert result.returncode == 1
    assert result.stdout.strip() == "ledger broken at slot 2: the stored ledger hash is not the recomputed one"


def test_verify_finds_a_flipped_byte_in_a_proof_signature(node: Node) -> None:
    proof = stored_proof(node.data_dir, 3, NODE_KEYS[2])
    signature = bytearray(proof.signature)
    signature[7] ^= 0x01
    forged = dataclasses.replace(proof, signature=bytes(signature))
    conn = sqlite3.connect(node.data_dir / DB_FILENAME)
    with conn:
        conn.execute(
            "UPDATE proofs SET envelope = ? WHERE slot = 3 AND node_id = ?",
            (forged.to_xdr(), NODE_KEYS[2].public_key.ed25519),
        )
    conn.close()
    result = node.verify()
    assert result.returncode == 1
    expected = f"ledger broken at slot 3: a proof from {NODE_KEYS[2].public_key} has a bad signature"
    assert result.stdout.strip() == expected


def test_verify_refuses_proofs_from_signers_that_could_not_have_externalized(node: Node) -> None:
    # One other validator of four (threshold 3) is neither a quorum nor v-blocking for us.
    node.append([NODE_KEYS[3]], [b"thin proof"])
    result = node.verify()
    assert result.returncode == 1
    assert result.stdout.startswith("ledger broken at slot 5: ")
    assert "v-blocking" in result.stdout


def test_verify_accepts_our_own_externalize_alone(node: Node) -> None:
    # The first node to decide a slot may hold only its own EXTERNALIZE: it needed a quorum to say it.
    node.append([NODE_KEYS[0]], [b"decided here first"])
    result = node.verify()
    assert result.returncode == 0, result.stdout
    assert "5 ledgers" in result.stdout


def test_a_quorum_by_the_stored_quorum_sets_proves_a_ledger_even_when_not_v_blocking(tmp_path: Path) -> None:
    a, b, c, d = (k.public_key for k in NODE_KEYS)
    ours = SCPQuorumSet(2, (a, b, c, d))  # 2 of 4: {b, c} is a slice of ours but does not block us
    theirs = SCPQuorumSet(2, (b, c))
    net = network_id("audit")
    with LedgerStore.open_data_dir(tmp_path) as store:
        tx_set = TxSet.canonical(GENESIS_HASH, [b"tx"])
        value = ConsensusValue(1000, tx_set.hash())
        pledges = SCPExternalize(SCPBallot(1, value.to_xdr()), 1, quorum_set_hash(theirs))
        proofs = [sign_statement(kp, net, SCPStatement(kp.public_key, 1, pledges)) for kp in NODE_KEYS[1:3]]
        store.append_ledger(LedgerEntry(1, value), tx_set, proofs)
        found = first_unproven_ledger(store, net, ours, a)
        assert found is not None and "v-blocking" in found.reason  # their quorum set is not stored yet
        store.save_quorum_set(theirs)
        assert first_unproven_ledger(store, net, ours, a) is None


def test_verify_finds_an_edited_value(node: Node) -> None:
    with LedgerStore.open_data_dir(node.data_dir, create=False) as store:
        record = store.get(2)
    assert record is not None
    forged = ConsensusValue(record.close_time + 1, record.tx_set_hash)
    conn = sqlite3.connect(node.data_dir / DB_FILENAME)
    with conn:
        conn.execute("UPDATE ledgers SET value = ? WHERE slot = 2", (forged.to_xdr(),))
    conn.close()
    result = node.verify()
    assert result.returncode == 1
    assert result.stdout.startswith("ledger broken at slot 2: ")


def test_verify_of_an_unusable_file_exits_2_with_one_line(node: Node) -> None:
    (node.data_dir / DB_FILENAME).write_bytes(os.urandom(4096))
    result = node.verify()
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "not an SQLite database" in result.stderr
    assert "Traceback" not in result.stderr


def test_verify_of_a_truncated_file_exits_2(node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    path = node.data_dir / DB_FILENAME
    path.write_bytes(path.read_bytes()[:8192])
    assert main(["ledger", "verify", "--config", str(node.config)]) == 2
    assert "truncated" in capsys.readouterr().err


def test_verify_does_not_create_a_missing_database(node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    missing = node.data_dir.parent / "elsewhere"
    missing.mkdir()
    assert main(["ledger", "verify", "--config", str(node.config), "--data-dir", str(missing)]) == 2
    assert "no ledger database" in capsys.readouterr().err
    assert not (missing / DB_FILENAME).exists()


def test_show_prints_the_latest_ledger_as_json(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "show", "--data-dir", str(data_dir)]) == 0
    shown = json.loads(capsys.readouterr().out)
    with LedgerStore.open_data_dir(data_dir, create=False) as s:
        latest = s.latest()
    assert latest is not None
    assert shown["slot"] == 4
    assert shown["hash"] == latest.hash.hex()
    assert shown["previous_hash"] == latest.previous_hash.hex()
    assert shown["tx_set_hash"] == latest.tx_set_hash.hex()
    assert shown["close_time"] == latest.close_time
    assert shown["tx_count"] == 3
    assert [t["id"] for t in shown["transactions"]] == [i.hex() for i in latest.tx_set.tx_ids]
    assert {p["node"] for p in shown["proofs"]} == {str(KEYS[0].node_id), str(KEYS[1].node_id)}


def test_show_a_given_slot_with_bodies(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "show", "--data-dir", str(data_dir), "--slot", "2", "--bodies"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["slot"] == 2
    bodies = [base64.b64decode(t["base64"]) for t in shown["transactions"]]
    assert b"tx 2.0" * 4 in bodies
    assert all(tx_id(b).hex() == t["id"] for b, t in zip(bodies, shown["transactions"], strict=True))


def test_show_slot_0_is_the_genesis(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "show", "--data-dir", str(data_dir), "--slot", "0"]) == 0
    assert json.loads(capsys.readouterr().out) == {"slot": 0, "genesis": True, "hash": "00" * 32, "close_time": 0}


def test_show_a_slot_beyond_the_chain_is_an_error(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "show", "--data-dir", str(data_dir), "--slot", "9"]) == 2
    assert "no ledger at slot 9: the chain ends at slot 4" in capsys.readouterr().err
    assert main(["ledger", "show", "--data-dir", str(data_dir), "--slot", "-1"]) == 2


def test_verify_and_show_work_while_the_node_holds_the_database(node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    with LedgerStore.open_data_dir(node.data_dir) as node_store:
        node.append(NODE_KEYS[1:3], [b"while running"])
        assert (node.data_dir / (DB_FILENAME + "-wal")).stat().st_size > 0
        assert main(["ledger", "verify", "--config", str(node.config)]) == 0
        assert "5 ledgers" in capsys.readouterr().out
        assert main(["ledger", "show", "--data-dir", str(node.data_dir)]) == 0
        assert json.loads(capsys.readouterr().out)["slot"] == 5
        node.append(NODE_KEYS[1:3], [b"after the check"])
        assert node_store.verify_chain() is None and node_store.tip().slot == 6


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_the_audit_names_the_same_first_bad_slot_on_any_number_of_threads(tmp_path: Path, workers: int) -> None:
    # 300 ledgers span two verification windows; slots 290 and 295 (second window) hold a forged
    # signature each: the first, 290, is reported however the signatures were shared out.
    qset = SCPQuorumSet(3, tuple(k.public_key for k in NODE_KEYS))
    net = network_id("audit threads")
    with LedgerStore.open_data_dir(tmp_path) as store:
        for slot in range(1, 301):
            tx_set = TxSet.canonical(store.tip().hash, [slot.to_bytes(8, "big")])
            value = ConsensusValue(1000 + slot, tx_set.hash())
            pledges = SCPExternalize(SCPBallot(1, value.to_xdr()), 1, quorum_set_hash(qset))
            proofs = [sign_statement(k, net, SCPStatement(k.public_key, slot, pledges)) for k in NODE_KEYS]
            if slot in (290, 295):
                proofs[1] = SCPEnvelope(proofs[1].statement, bytes(64))
            store.append_ledger(LedgerEntry(slot, value), tx_set, proofs)
        found = first_unproven_ledger(store, net, qset, NODE_KEYS[0].public_key, workers)
    assert found is not None
    assert (found.slot, found.reason) == (290, f"a proof from {NODE_KEYS[1].public_key} has a bad signature")
