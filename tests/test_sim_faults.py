"""Faults only the node layer sees, and the hostile peers of the hostile-peer issue, in the simulator.

Each test runs the daemon's node core under one fault and checks both that the fault really
happened (it bit where it should) and that the properties hold (safety, validity, liveness after
the fault ends, no honest node blamed).
"""

from __future__ import annotations

import pytest

from scpd.base.types import SCPEnvelope
from scpd.errors import UsageError
from scpd.nodecore.values import GENESIS_HASH, ConsensusValue, LedgerEntry, TxSet, TxSetLimits, ledger_hash
from scpd.sim.network import Constant, FetchFault, Uniform
from scpd.sim.node import SimNode
from scpd.sim.scenario import Crash, DiskFault, PersistCrash, Scenario, parse_fault
from scpd.sim.simulator import SimResult, Simulation, run
from scpd.sim.stats import Recorder, ValueRules


def assert_good(result: SimResult) -> None:
    replay = result.scenario.replay_command()
    assert result.safety_violations() == [], replay
    assert result.validity_violations() == [], replay
    assert result.liveness_violations(60.0) == [], replay
    assert result.conduct_violations() == [], replay
    assert result.completed, replay


def test_a_crash_between_persist_and_send_restores_what_was_stored_and_never_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = Simulation(
        Scenario(nodes=4, slots=3, seed=5, latency=Constant(0.02), faults=(PersistCrash(Crash(1, 0.1, 2.0)),))
    )
    node = sim.nodes[1]
    sent: list[SCPEnvelope] = []
    at_crash: dict[str, object] = {}
    original_send, original_crash = node.send_own, SimNode._crash_after_persist

    def send_own(envelope: SCPEnvelope) -> None:
        sent.append(envelope)
        original_send(envelope)

    def crash(self: SimNode) -> None:
        at_crash.update(time=sim.clock.now, stored=list(self.store.own.values()), sent=list(sent))
        original_crash(self)

    monkeypatch.setattr(node, "send_own", send_own)
    monkeypatch.setattr(SimNode, "_crash_after_persist", crash)
    result = sim.run()
    assert at_crash, "the node stored an own envelope after 0.1 s and died before sending it"
    stored, sent_before = at_crash["stored"], at_crash["sent"]
    assert isinstance(stored, list) and isinstance(sent_before, list)
    unsent = [e for e in stored if e not in sent_before]
    assert unsent
    crashed_at = at_crash["time"]
    assert isinstance(crashed_at, float) and crashed_at >= 0.1
    written = [when for _, when in result.recorder.externalized[1].values()]
    assert written and all(when < crashed_at or when >= 2.0 for when in written), "down until 2 s, then caught up"
    assert_good(result)


def test_a_failing_disk_stops_the_node_writing_and_speaking_until_it_recovers() -> None:
    result = run(Scenario(nodes=4, slots=3, seed=5, latency=Constant(0.02), faults=(DiskFault(2, 0.0, 3.0),)))
    rec = result.recorder
    assert rec.storage_failures["own_envelope"] > 0
    assert all(when >= 3.0 for _, when in rec.externalized[2].values()), "no ledger while the disk failed"
    assert rec.sends_per_slot, "the others went on without it"
    assert_good(result)


def test_fetches_lost_and_tx_sets_late_make_envelopes_wait_and_retry() -> None:
    scenario = Scenario(nodes=7, slots=3, seed=9, latency=Uniform(0.01, 0.1), faults=(FetchFault(0.5, 2.0, 5.0),))
    result = run(scenario)
    assert result.network["lost"] > 0
    assert result.recorder.rejected["fetch_failed"] > 0
    assert_good(result)


@pytest.mark.parametrize(
    ("kind", "evidence"),
    [
        ("untrusted-flood", lambda r: r.recorder.rejected["untrusted"]),
        ("bad-signature", lambda r: r.recorder.rejected["bad_signature"] and r.recorder.scored["rejected ScpMessage"]),
        (
            "far-future",
            lambda r: r.recorder.rejected["slot_out_of_range"] and r.recorder.scored["invalid SCP envelope"],
        ),
        ("junk-tx-sets", lambda r: r.recorder.rejected["unrequested_answer"]),
        ("unnominated", lambda r: r.recorder.rejected["invalid"]),
    ],
)
def test_each_hostile_peer_meets_the_defence_made_for_it(kind: str, evidence: object) -> None:
    result = run(Scenario(nodes=7, slots=3, seed=11, latency=Uniform(0.01, 0.2), byzantine=((kind, 2),)))
    assert evidence(result)  # type: ignore[operator]
    assert_good(result)


def test_fault_options_parse_and_print_back() -> None:
    for text in ("disk:1:0.5:2", "persist-crash:0:1.5", "persist-crash:2:1:3.25", "fetch:0.3:1.5:6"):
        assert str(parse_fault(text)) == text
    for bad in ("disk:1:3:2", "fetch:2:0:1", "persist-crash:x:1", "melt:1"):
        with pytest.raises(UsageError):
            parse_fault(bad)
    scenario = Scenario(faults=(DiskFault(1, 0.5, 9.0), FetchFault(0.2, 0.0, 4.0)))
    assert scenario.heal_time == 9.0
    assert "--fault disk:1:0.5:9" in scenario.replay_command()


def _ledger(recorder: Recorder, node: int, slot: int, value: ConsensusValue, tx_set: TxSet) -> None:
    recorder.ledger_written(node, LedgerEntry(slot, value), tx_set, float(slot))


def test_validity_judges_each_written_ledger_by_the_node_cores_rules_and_the_nominations() -> None:
    rec = Recorder(4, 2, ValueRules(TxSetLimits(10, 1000), 60.0))
    good_set = TxSet.canonical(GENESIS_HASH, [b"tx-a"])
    good = ConsensusValue(1, good_set.hash())
    rec.voted[1].add(good.to_xdr())
    _ledger(rec, 0, 1, good, good_set)
    unproposed_set = TxSet.canonical(GENESIS_HASH, [b"tx-b"])
    _ledger(rec, 1, 1, ConsensusValue(1, unproposed_set.hash()), unproposed_set)
    assert rec.validity_violations([0]) == []
    assert any("was in no NOMINATE vote" in p for p in rec.validity_violations([1]))
    # Slot 2 of node 0: on the wrong ledger, and repeating a transaction of slot 1.
    wrong_base = TxSet.canonical(bytes(32 * [1]), [b"tx-c"])
    repeat = TxSet.canonical(ledger_hash(GENESIS_HASH, LedgerEntry(1, good)), [b"tx-a"])
    for tx_set in (wrong_base, repeat):
        rec.voted[2].add(ConsensusValue(2, tx_set.hash()).to_xdr())
    _ledger(rec, 0, 2, ConsensusValue(2, wrong_base.hash()), wrong_base)
    assert any("invalid value" in p and "builds on" in p for p in rec.validity_violations([0]))
    _ledger(rec, 2, 1, good, good_set)
    _ledger(rec, 2, 2, ConsensusValue(2, repeat.hash()), repeat)
    assert any("already in an earlier ledger" in p for p in rec.validity_violations([2]))
    assert len(rec.safety_violations([0, 1])) == 1
    _ledger(rec, 0, 1, ConsensusValue(1, unproposed_set.hash()), unproposed_set)
    assert any("wrote slot 1 twice" in p for p in rec.safety_violations([0]))
