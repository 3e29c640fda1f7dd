"""A simulated node checks what it receives like the daemon, restores after a crash,
and its timers live on the virtual clock."""

from __future__ import annotations

from dataclasses import replace

from scpd.base.types import SCPNomination, SCPStatement
from scpd.scp import TimerId, ValidationLevel
from scpd.sim import values
from scpd.sim.network import Constant
from scpd.sim.scenario import Scenario
from scpd.sim.simulator import Simulation


def started(nodes: int = 4) -> Simulation:
    sim = Simulation(Scenario(nodes=nodes, slots=2, seed=5, latency=Constant(0.01)))
    sim.start()
    return sim


def test_forged_malformed_and_out_of_range_envelopes_are_rejected_before_the_core() -> None:
    sim = started()
    sim.clock.run(1.0, stop=lambda: any(1 in n.store for n in sim.nodes))
    sender = next(n for n in sim.nodes if 1 in n.store)
    receiver = sim.nodes[(sender.index + 1) % 4]
    env = sender.store[1]["nomination"]
    good = env.to_xdr()
    rec = sim.recorder
    processed = rec.envelopes_processed

    receiver.receive(sender.index, good[:-1] + bytes([good[-1] ^ 1]))
    assert rec.rejected["bad_signature"] == 1
    third = sim.nodes[(sender.index + 2) % 4]
    forged = replace(env, statement=replace(env.statement, node_id=third.keypair.public_key))
    receiver.receive(sender.index, forged.to_xdr())
    assert rec.rejected["bad_signature"] == 2
    echoed = receiver.driver.sign_envelope(replace(env.statement, node_id=receiver.keypair.public_key))  # type: ignore[union-attr]
    receiver.receive(sender.index, echoed.to_xdr())
    assert rec.rejected["own_envelope"] == 1
    receiver.receive(sender.index, b"\x00\x01garbage")
    assert rec.rejected["malformed"] == 1
    far = sender.driver.sign_envelope(replace(env.statement, slot_index=99))  # type: ignore[union-attr]
    receiver.receive(sender.index, far.to_xdr())
    assert rec.rejected["slot_out_of_range"] == 1
    assert rec.envelopes_processed == processed

    receiver.receive(sender.index, good)
    assert rec.envelopes_processed == processed + 1 and rec.envelopes_verified >= 1


def test_restart_restores_the_persisted_envelopes_before_saying_anything_new() -> None:
    sim = started()
    node = sim.nodes[0]
    sim.clock.run(100.0, stop=lambda: "ballot" in node.store.get(1, {}))
    persisted = dict(node.store[1])
    node.crash()
    assert node.scp is None
    node.start()
    assert node.scp is not None
    assert node.scp.get_latest_messages_send(1) == [persisted["nomination"], persisted["ballot"]]
    result = sim.run()
    assert result.completed and result.safety_violations() == []


def test_timers_fire_on_the_virtual_clock_and_die_with_the_node() -> None:
    sim = Simulation(Scenario(nodes=4, slots=1, seed=5))
    node = sim.nodes[0]
    node.start()
    driver = node.driver
    assert driver is not None
    fired: list[float] = []
    driver.setup_timer(7, TimerId.BALLOT, 2.5, lambda: fired.append(sim.clock.now))
    driver.setup_timer(7, TimerId.NOMINATION, 1.0, lambda: fired.append(-1.0))
    driver.stop_timer(7, TimerId.NOMINATION)
    driver.setup_timer(8, TimerId.BALLOT, 3.0, lambda: fired.append(-2.0))
    sim.clock.run(2.9)
    node.crash()
    sim.clock.run(10.0)
    assert fired == [2.5]


def test_driver_judges_and_combines_values_by_the_simulated_format() -> None:
    sim = Simulation(Scenario(nodes=4, slots=1, seed=5))
    node = sim.nodes[3]
    node.start()
    d = node.driver
    assert d is not None
    assert d.validate_value(2, values.encode_value(2, 3), True) == ValidationLevel.FULLY_VALID
    assert d.validate_value(2, values.encode_value(1, 3), True) == ValidationLevel.INVALID
    assert d.validate_value(2, values.encode_value(2, 4), False) == ValidationLevel.INVALID
    assert d.validate_value(2, values.invalid_value(2), False) == ValidationLevel.INVALID
    assert d.validate_value(2, b"", False) == ValidationLevel.INVALID
    a, b = values.encode_value(2, 1), values.encode_value(2, 3)
    assert d.combine_candidates(2, frozenset({a, b})) == b
    assert values.decode_value(b) == (2, 3, 0)
    st = SCPStatement(node.keypair.public_key, 1, SCPNomination(b"\x00" * 32, (a,)))
    env = d.sign_envelope(st)
    assert len(env.signature) == 64 and env.statement == st
