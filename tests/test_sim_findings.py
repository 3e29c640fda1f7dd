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
from scpd.sim import values
from scpd.sim.network import Constant
from scpd.sim.scenario import Scenario
from scpd.sim.simulator import Simulation


def test_core_survives_a_newer_statement_signed_with_its_own_key_arriving_from_a_peer() -> None:
    sim = Simulation(Scenario(nodes=4, slots=1, seed=5, latency=Constant(0.05)))
    sim.start()
    node = sim.nodes[0]
    sim.clock.run(100.0, stop=lambda: "ballot" in node.store.get(1, {}))
    mine = node.store[1]["ballot"]
    pledges = mine.statement.pledges
    assert isinstance(pledges, SCPPrepare)
    other = values.encode_value(1, 3, values.FORGED_VARIANT)  # sorts above every variant-0 value
    forged = replace(pledges, ballot=SCPBallot(pledges.ballot.counter, other), prepared=None, prepared_prime=None)
    assert node.driver is not None
    envelope = node.driver.sign_envelope(replace(mine.statement, pledges=replace(forged, n_c=0, n_h=0)))
    node.deliver(envelope)  # straight to the core, as a driver without the herder's own-id filter would
    result = sim.run()
    assert result.completed and result.safety_violations() == []
