"""Core behaviour the simulator's seeds turned up, pinned as tests for the core's owner.

Seed 1001475 of the symmetric-7 property run (an ``unnominated`` node rewriting
its own ballots, and a ``replay`` node sending that rewritten envelope back to
it) made the core raise ``ConsensusError("ballot protocol produced a stale
statement")`` from inside a later ``receive_envelope``: the core had recorded a
peer-delivered envelope carrying the *local* node's id, signed by the local
key, as its own latest statement, so its next genuine statement counted as
older. The daemon's herder and the simulator now drop envelopes bearing their
own node id before the core (so the property runs are unaffected), but the
core's contract says ``receive_envelope`` handles "our own, echoed back", and a
node whose key is used by a second instance (or that lost its disk) would wedge
its slot the same way. The core now ignores statements bearing its own id
that arrive through ``receive_envelope``.
"""

from __future__ import annotations

from dataclasses import replace

from scpd.base.types import SCPBallot, SCPPrepare
from scpd.nodecore.values import ConsensusValue
from scpd.sim.network import Constant
from scpd.sim.scenario import Scenario, random_faults
from scpd.sim.simulator import Simulation, run


def test_core_survives_a_newer_statement_signed_with_its_own_key_arriving_from_a_peer() -> None:
    sim = Simulation(Scenario(nodes=4, slots=1, seed=5, latency=Constant(0.05)))
    sim.start()
    node = sim.nodes[0]
    sim.clock.run(100.0, stop=lambda: (1, False) in node.store.own)
    mine = node.store.own[(1, False)]
    pledges = mine.statement.pledges
    assert isinstance(pledges, SCPPrepare)
    other = ConsensusValue(1 << 40, bytes(32)).to_xdr()  # a later close time: sorts above every honest value
    forged = replace(pledges, ballot=SCPBallot(pledges.ballot.counter, other), prepared=None, prepared_prime=None)
    assert node.core is not None
    envelope = node.core.sign_envelope(replace(mine.statement, pledges=replace(forged, n_c=0, n_h=0)))
    node.core.scp.receive_envelope(envelope)  # straight to the consensus core, past the intake's own-id filter
    result = sim.run()
    assert result.completed and result.safety_violations() == []


def test_a_restarted_node_holds_every_tx_set_its_restored_statements_name() -> None:
    # Seed 3000262 (a cycle of four, random faults; 3000597 too): a node restarted mid-slot restored
    # statements naming other nodes' tx sets it had never stored, so those values were only "maybe
    # valid" to it, its ballot stopped for good, and on a cycle (every node needed) nobody decided.
    # Own envelopes are now stored with every tx set they name (each once), as stellar-core does.
    scenario = random_faults(Scenario(topology="cycle", nodes=4, slots=2, seed=3000262))
    assert any(c.restart is not None for c in scenario.all_crashes)
    summary = run(scenario).summary()
    assert summary["completed"] is True
    assert summary["slots_externalized"] == {"0": 2, "1": 2, "2": 2, "3": 2}
