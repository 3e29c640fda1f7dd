"""Future slots wait their turn: a pending queue bounded per signer and in total, in count and bytes."""

from __future__ import annotations

from scp_harness import NETWORK_ID, keypair

from scpd.base.keys import sign_statement
from scpd.base.types import SCPBallot, SCPEnvelope, SCPNomination, SCPPrepare, SCPStatement
from scpd.nodecore.pending import PendingEnvelopes, PendingLimits, PendingOutcome

QH = b"\x02" * 32
PEER = keypair(50).node_id


def prepare(key: int, slot: int, counter: int = 1, value: bytes = b"v") -> SCPEnvelope:
    kp = keypair(key)
    return sign_statement(kp, NETWORK_ID, SCPStatement(kp.node_id, slot, SCPPrepare(QH, SCPBallot(counter, value))))


def nominate(key: int, slot: int, *votes: bytes) -> SCPEnvelope:
    kp = keypair(key)
    return sign_statement(kp, NETWORK_ID, SCPStatement(kp.node_id, slot, SCPNomination(QH, tuple(sorted(votes)))))


def test_envelopes_wait_until_their_slot_is_taken_and_older_slots_are_dropped() -> None:
    p = PendingEnvelopes()
    a, b, c = prepare(1, 5), nominate(1, 5, b"x"), prepare(2, 6)
    for e in (a, b, c, prepare(3, 4)):
        assert p.add(e, 100, PEER) is PendingOutcome.HELD
    assert p.slots() == [4, 5, 6] and p.total_bytes == 400
    taken = p.take(5)
    assert [h.envelope for h in taken] == [a, b] and all(h.origin == PEER for h in taken)
    assert p.slots() == [6] and len(p) == 1 and p.total_bytes == 100
    assert [h.envelope for h in p.take(6)] == [c]
    assert len(p) == 0 and p.total_bytes == 0


def test_only_the_newest_statement_per_node_slot_and_phase_is_kept() -> None:
    p = PendingEnvelopes()
    assert p.add(prepare(1, 5, counter=2), 10, PEER) is PendingOutcome.HELD
    assert p.add(prepare(1, 5, counter=1), 10, PEER) is PendingOutcome.STALE
    assert p.add(prepare(1, 5, counter=2), 10, PEER) is PendingOutcome.STALE  # a copy
    assert p.add(prepare(1, 5, counter=3), 30, PEER) is PendingOutcome.HELD
    assert len(p) == 1 and p.total_bytes == 30
    assert p.add(nominate(1, 5, b"x"), 10, PEER) is PendingOutcome.HELD
    assert p.add(nominate(1, 5, b"y"), 10, PEER) is PendingOutcome.STALE  # not a superset
    assert p.add(nominate(1, 5, b"x", b"y"), 10, PEER) is PendingOutcome.HELD
    assert [h.envelope.statement.pledges for h in p.take(5)][1] == nominate(1, 5, b"x", b"y").statement.pledges


def test_one_signer_fills_only_its_own_share_in_count_and_bytes() -> None:
    p = PendingEnvelopes(PendingLimits(per_node=3, per_node_bytes=1000, total=100, total_bytes=10_000))
    for slot in range(10, 13):
        assert p.add(prepare(1, slot), 10, PEER) is PendingOutcome.HELD
    assert p.add(prepare(1, 13), 10, PEER) is PendingOutcome.NODE_FULL
    assert p.add(prepare(2, 13), 999, PEER) is PendingOutcome.HELD  # someone else still fits
    assert p.add(prepare(2, 14), 2, PEER) is PendingOutcome.NODE_FULL  # its bytes are used up
    # Replacing a held statement reuses its room.
    assert p.add(prepare(1, 12, counter=2), 10, PEER) is PendingOutcome.HELD
    assert len(p) == 4


def test_when_full_a_nearer_slot_evicts_the_farthest_and_a_farther_one_is_refused() -> None:
    p = PendingEnvelopes(PendingLimits(per_node=10, per_node_bytes=10_000, total=3, total_bytes=300))
    for key, slot in ((1, 8), (2, 9), (3, 10)):
        assert p.add(prepare(key, slot), 100, PEER) is PendingOutcome.HELD
    assert p.add(prepare(4, 10), 100, PEER) is PendingOutcome.FULL
    assert p.add(prepare(4, 7), 100, PEER) is PendingOutcome.HELD
    assert p.slots() == [7, 8, 9] and p.total_bytes == 300
    # Bytes bound too: one big envelope for a near slot pushes out two far ones.
    assert p.add(prepare(5, 6), 200, PEER) is PendingOutcome.HELD
    assert p.slots() == [6, 7] and p.total_bytes == 300
