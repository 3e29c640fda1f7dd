"""Catch-up trust: a ledger needs v-blocking proofs, and no single node moves our idea of the network's slot."""

from __future__ import annotations

import pytest
from scp_harness import NETWORK_ID, keypair

from scpd.base.keys import Keypair, sign_statement
from scpd.base.types import SCPBallot, SCPEnvelope, SCPExternalize, SCPQuorumSet, SCPStatement
from scpd.errors import XdrError
from scpd.nodecore.catchup import MAX_PROOFS, Catchup, CatchupEntry, CatchupSettings, check_entry
from scpd.nodecore.values import GENESIS_HASH, ChainTip, ConsensusValue, TxSet

KEYS = [keypair(i) for i in range(4)]
IDS = [k.node_id for k in KEYS]
QSET = SCPQuorumSet(3, tuple(IDS))  # 3 of 4: any 2 are v-blocking, 1 is not
QH = b"\x03" * 32
TIP = ChainTip(0, GENESIS_HASH, 1000)
TX_SET = TxSet.canonical(GENESIS_HASH, [b"tx-1", b"tx-2"])
VALUE = ConsensusValue(1005, TX_SET.hash())


def externalize(i: int, value: ConsensusValue = VALUE, slot: int = 1, key: int | None = None) -> SCPEnvelope:
    kp = keypair(i) if key is None else Keypair(key.to_bytes(32, "big"))
    st = SCPStatement(kp.node_id, slot, SCPExternalize(SCPBallot(1, value.to_xdr()), 1, QH))
    return sign_statement(kp, NETWORK_ID, st)


def entry(*proofs: SCPEnvelope) -> CatchupEntry:
    return CatchupEntry(1, VALUE, TX_SET, proofs)


def test_an_entry_with_proofs_from_a_v_blocking_set_is_accepted() -> None:
    assert check_entry(entry(externalize(1), externalize(2)), TIP, QSET, NETWORK_ID) is None


def test_a_single_proof_is_not_enough() -> None:
    problem = check_entry(entry(externalize(1)), TIP, QSET, NETWORK_ID)
    assert problem is not None and "v-blocking" in problem
    # The same node twice is still one node.
    assert check_entry(entry(externalize(1), externalize(1)), TIP, QSET, NETWORK_ID) is not None


def test_proofs_from_strangers_do_not_count() -> None:
    strangers = [externalize(0, key=2000 + i) for i in range(10)]
    assert check_entry(entry(externalize(1), *strangers), TIP, QSET, NETWORK_ID) is not None


def test_a_forged_or_mismatched_proof_refuses_the_entry() -> None:
    good = externalize(2)
    forged = SCPEnvelope(good.statement, bytes(64))
    problem = check_entry(entry(externalize(1), forged), TIP, QSET, NETWORK_ID)
    assert problem is not None and "signature" in problem
    other = externalize(2, ConsensusValue(1006, TX_SET.hash()))
    assert check_entry(entry(externalize(1), other), TIP, QSET, NETWORK_ID) is not None
    wrong_slot = externalize(2, slot=2)
    assert check_entry(entry(externalize(1), wrong_slot), TIP, QSET, NETWORK_ID) is not None


def test_an_entry_that_does_not_link_to_our_chain_is_refused() -> None:
    proofs = (externalize(1), externalize(2))
    elsewhere = TxSet.canonical(b"\x09" * 32, [b"tx-1"])
    bad_value = ConsensusValue(1005, elsewhere.hash())
    assert check_entry(CatchupEntry(1, bad_value, elsewhere, proofs), TIP, QSET, NETWORK_ID) is not None
    assert check_entry(CatchupEntry(2, VALUE, TX_SET, proofs), TIP, QSET, NETWORK_ID) is not None
    assert check_entry(CatchupEntry(1, VALUE, TxSet.canonical(GENESIS_HASH, [b"x"]), proofs), TIP, QSET, NETWORK_ID)


def test_one_node_claiming_a_far_slot_does_not_make_us_catch_up() -> None:
    c = Catchup(CatchupSettings(), QSET)
    c.note_claim(IDS[1], 2**63)
    assert c.highest_seen == 0 and not c.behind(1)
    assert c.next_request(IDS, 1, 0.0) is None
    c.note_claim(keypair(99).node_id, 2**63)  # not in our quorum set: ignored
    c.note_claim(keypair(98).node_id, 2**63)
    assert c.highest_seen == 0
    c.note_claim(IDS[2], 7)
    assert c.highest_seen == 7  # two members at 7 or more: v-blocking
    c.note_claim(IDS[3], 9)
    assert c.highest_seen == 9
    c.note_proven(12)
    assert c.highest_seen == 12


def test_answers_never_carry_more_proofs_than_the_wire_allows() -> None:
    many = tuple(externalize(0, key=1000 + i) for i in range(MAX_PROOFS + 12))
    big = CatchupEntry(1, VALUE, TX_SET, many)
    with pytest.raises(XdrError):
        big.to_xdr()
    answer = Catchup(CatchupSettings(), QSET).build_answer(1, [big])
    assert len(answer.entries) == 1 and len(answer.entries[0].proofs) == MAX_PROOFS
    assert type(answer).from_xdr(answer.to_xdr()) == answer
