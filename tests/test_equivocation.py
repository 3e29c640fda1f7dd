"""Equivocation: statements one honest node cannot both have made are reported once, with proof."""

from __future__ import annotations

import base64
import random

from scp_harness import NETWORK_ID, RecordingDriver, keypair

from scpd.base import quorum
from scpd.base.keys import sign_statement, verify_envelope
from scpd.base.types import (
    SCPBallot,
    SCPConfirm,
    SCPEnvelope,
    SCPExternalize,
    SCPNomination,
    SCPPrepare,
    SCPQuorumSet,
    SCPStatement,
)
from scpd.nodecore.equivocation import EquivocationDetector, contradicts
from scpd.scp import SCP

KEY = keypair(7)
QH = b"\x01" * 32
X, Y, Z = b"x", b"y", b"z"


def env(pledges: object, slot: int = 5, key: int = 7) -> SCPEnvelope:
    kp = keypair(key)
    return sign_statement(kp, NETWORK_ID, SCPStatement(kp.node_id, slot, pledges))  # type: ignore[arg-type]


def nom(votes: tuple[bytes, ...], accepted: tuple[bytes, ...] = ()) -> SCPNomination:
    return SCPNomination(QH, votes, accepted)


def prep(b: SCPBallot, p: SCPBallot | None = None, nc: int = 0, nh: int = 0) -> SCPPrepare:
    return SCPPrepare(QH, b, p, None, nc, nh)


def st(pledges: object) -> SCPStatement:
    return env(pledges).statement


def test_growing_nominations_are_consistent_and_diverging_ones_contradict() -> None:
    assert not contradicts(st(nom((X,))), st(nom((X, Y))))
    assert not contradicts(st(nom((X, Y), (X,))), st(nom((X,))))  # older, delivered late
    assert contradicts(st(nom((X,))), st(nom((Y,))))
    assert contradicts(st(nom((X, Y))), st(nom((X,), (Z,))))  # votes shrank while accepted grew


def test_ballot_statements_that_cannot_come_from_one_honest_node() -> None:
    b1x, b2x, b1y = SCPBallot(1, X), SCPBallot(2, X), SCPBallot(1, Y)
    # An honest progression: PREPARE, a higher ballot that also prepared more, CONFIRM, EXTERNALIZE.
    chain = [
        prep(b1x),
        prep(b1x, b1x),
        prep(b2x, b1x, 1, 1),
        SCPConfirm(b2x, 2, 1, 2, QH),
        SCPExternalize(b1x, 2, QH),
    ]
    for i, a in enumerate(chain):
        for b in chain[i + 1 :]:
            assert not contradicts(st(a), st(b)), (a, b)
    assert contradicts(st(SCPExternalize(b1x, 1, QH)), st(SCPExternalize(b1y, 1, QH)))
    assert contradicts(st(SCPConfirm(b1x, 1, 1, 1, QH)), st(SCPConfirm(SCPBallot(2, Y), 1, 1, 1, QH)))
    assert contradicts(st(SCPConfirm(b1x, 1, 1, 1, QH)), st(SCPExternalize(b1y, 1, QH)))
    # Same ballots and prepared, another commit counter: two things at one position.
    assert contradicts(st(prep(b2x, b1x, 0, 1)), st(SCPPrepare(QH, b2x, b1x, None, 1, 1)))
    # A higher ballot whose prepared went back down.
    assert contradicts(st(prep(b1x, SCPBallot(1, Y))), st(prep(b2x, b1x)))
    assert contradicts(st(prep(b1x, b1x)), st(prep(b2x)))


def test_the_detector_reports_each_node_and_slot_once_with_both_signed_envelopes() -> None:
    d = EquivocationDetector()
    first, second, third = env(nom((X,))), env(nom((Y,))), env(nom((Z,)))
    assert d.observe(first) is None
    found = d.observe(second)
    assert found is not None and (found.node, found.slot) == (KEY.node_id, 5)
    assert (found.first, found.second) == (first, second)
    assert d.observe(third) is None  # already reported for this slot
    assert d.nodes == {KEY.node_id} and d.counts == {KEY.node_id: 1}
    proof = found.to_json()
    decoded = [SCPEnvelope.from_xdr(base64.b64decode(e)) for e in proof["envelopes"]]  # type: ignore[attr-defined]
    assert decoded == [first, second] and all(verify_envelope(NETWORK_ID, e) for e in decoded)
    assert d.observe(env(nom((X,)), slot=6)) is None
    assert d.observe(env(nom((Y,)), slot=6)) is not None
    assert d.counts == {KEY.node_id: 2}


def test_the_detector_compares_with_the_newest_statement_and_its_memory_is_bounded() -> None:
    d = EquivocationDetector(max_evidence=3, max_per_node=2)
    assert d.observe(env(nom((X,)))) is None
    assert d.observe(env(nom((X, Y)))) is None  # newer: replaces
    assert d.observe(env(nom((X,)))) is None  # older, late: consistent
    assert d.observe(env(nom((X, Z)))) is not None  # neither contains the other's votes
    for slot in range(10, 20):
        d.observe(env(nom((X,)), slot=slot))
        d.observe(env(nom((Y,)), slot=slot))
    assert len(d.evidence) == 2 and {e.slot for e in d.evidence} == {18, 19}
    d.forget_below(19)
    # Slot 19's statements are still held: a third one is compared against them (already reported).
    assert d.observe(env(nom((Z,)), slot=19)) is None
    assert d.observe(env(nom((X,)), slot=18)) is None  # forgotten: the first statement again


def test_honest_nodes_running_the_core_are_never_reported() -> None:
    """Every envelope four honest cores emit in shuffled runs, fed to a detector in delivery order."""
    for seed in range(10):
        rng = random.Random(seed)
        keys = [keypair(i) for i in range(4)]
        qset = SCPQuorumSet(3, tuple(k.node_id for k in keys))
        h = quorum.quorum_set_hash(qset)
        drivers = [RecordingDriver(key=k, qsets={h: qset}) for k in keys]
        nodes = [SCP(d, k.node_id, True, qset) for d, k in zip(drivers, keys, strict=True)]
        detector = EquivocationDetector()
        for i, node in enumerate(nodes):
            node.nominate(0, bytes([seed, i]), b"genesis")
        sent = [0] * 4
        pool: list[tuple[int, SCPEnvelope]] = []
        for _ in range(20000):
            for i, d in enumerate(drivers):
                pool.extend((j, e) for e in d.emitted[sent[i] :] for j in range(4) if j != i)
                sent[i] = len(d.emitted)
            if pool:
                j, e = pool.pop(rng.randrange(len(pool)))
                assert detector.observe(e) is None, f"seed {seed}: honest {e.statement} reported"
                nodes[j].receive_envelope(e)
                continue
            if all(n.get_externalized_value(0) is not None for n in nodes):
                break
            timers = [(t.timeout, i, key) for i, d in enumerate(drivers) for key, t in d.timers.items()]
            _, i, key = min(timers, key=lambda t: (t[0], t[1], t[2][1]))
            drivers[i].fire_timer(*key)
        assert all(n.get_externalized_value(0) is not None for n in nodes), f"seed {seed}: no decision"
        assert not detector.evidence
