"""A simulated node is a shell around the daemon's node core: the core's intake judges what
arrives, the shell carries out the core's actions (real overlay messages, timers on the virtual
clock, a store that survives crashes) and restores the node from that store after a crash."""

from __future__ import annotations

from dataclasses import replace

from scpd.base.types import SCPNomination
from scpd.nodecore import actions as act
from scpd.nodecore import events as ev
from scpd.nodecore.core import NodeCore
from scpd.nodecore.messages import GetTxSet, ScpMessage, encode_message
from scpd.nodecore.values import ConsensusValue
from scpd.sim.network import Constant
from scpd.sim.scenario import Scenario
from scpd.sim.simulator import Simulation


def started(nodes: int = 4) -> Simulation:
    sim = Simulation(Scenario(nodes=nodes, slots=2, seed=5, latency=Constant(0.01)))
    sim.start()
    return sim


def test_the_shell_runs_the_daemons_node_core() -> None:
    sim = started()
    assert all(isinstance(node.core, NodeCore) for node in sim.nodes)


def test_forged_malformed_and_out_of_range_envelopes_are_refused_by_the_core_intake() -> None:
    sim = started()
    sim.clock.run(1.0, stop=lambda: any((1, True) in n.store.own for n in sim.nodes))
    sender = next(n for n in sim.nodes if (1, True) in n.store.own)
    receiver = sim.nodes[(sender.index + 1) % 4]
    env = sender.store.own[(1, True)]
    rec = sim.recorder

    def deliver(envelope: object) -> None:
        payload = encode_message(ScpMessage(envelope)) if not isinstance(envelope, bytes) else envelope  # type: ignore[arg-type]
        receiver.receive(sender.index, payload)

    deliver(replace(env, signature=bytes([env.signature[0] ^ 1]) + env.signature[1:]))
    assert rec.rejected["bad_signature"] == 1
    third = sim.nodes[(sender.index + 2) % 4]
    deliver(replace(env, statement=replace(env.statement, node_id=third.node_id)))
    assert rec.rejected["bad_signature"] == 2
    assert receiver.core is not None
    deliver(receiver.core.sign_envelope(replace(env.statement, node_id=receiver.node_id)))
    assert rec.rejected["own_envelope"] == 1
    deliver(b"\x00\x00\x00\x0bgarbage")
    assert rec.rejected["malformed"] == 1
    assert sender.core is not None
    deliver(sender.core.sign_envelope(replace(env.statement, slot_index=99)))
    assert rec.rejected["slot_out_of_range"] == 1
    # Only the two bad signatures are held against the sender (the overlay scores REJECT verdicts).
    assert dict(rec.scored) == {"honest peer: rejected ScpMessage": 2}


def test_a_copy_of_a_flooded_message_is_dropped_unread_by_the_overlay_screen() -> None:
    sim = started()
    sim.clock.run(1.0, stop=lambda: any((1, True) in n.store.own for n in sim.nodes))
    sender = next(n for n in sim.nodes if (1, True) in n.store.own)
    receiver = sim.nodes[(sender.index + 1) % 4]
    payload = encode_message(ScpMessage(replace(sender.store.own[(1, True)], signature=bytes(64))))
    receiver.receive(sender.index, payload)
    receiver.receive(sender.index, payload)
    assert sim.recorder.rejected["bad_signature"] == 1
    assert sim.recorder.scored["honest peer: rejected ScpMessage"] == 1


def test_peers_fetch_each_others_tx_sets_and_decide_real_values_carrying_the_submitted_transactions() -> None:
    sim = Simulation(Scenario(nodes=4, slots=2, seed=5, latency=Constant(0.01)))
    asked = []
    original = sim.nodes[0].send_message

    def spy(targets: object, message: object) -> None:
        if isinstance(message, GetTxSet):
            asked.append(message.item_hash)
        original(targets, message)  # type: ignore[arg-type]

    sim.nodes[0].send_message = spy  # type: ignore[method-assign]
    result = sim.run()
    assert result.completed and result.validity_violations() == []
    assert asked, "node 0 judged a peer's value only after fetching its tx set"
    for node, per_slot in result.externalized_values().items():
        for slot, raw in per_slot.items():
            value = ConsensusValue.from_xdr(raw)
            tx_set = result.recorder.tx_sets[node][slot]
            assert tx_set.hash() == value.tx_set_hash and tx_set.txs
            assert all(tx.startswith(b"sim-tx node=") for tx in tx_set.txs)


def test_restart_restores_the_persisted_envelopes_before_saying_anything_new() -> None:
    sim = started()
    node = sim.nodes[0]
    sim.clock.run(100.0, stop=lambda: (1, False) in node.store.own)
    persisted = [node.store.own[(1, True)], node.store.own[(1, False)]]
    node.crash()
    assert node.core is None and not node.up
    node.start()
    assert node.core is not None
    assert node.core.scp.get_latest_messages_send(1) == persisted
    result = sim.run()
    assert result.completed and result.safety_violations() == []


def test_timers_fire_on_the_virtual_clock_and_die_with_the_node() -> None:
    sim = Simulation(Scenario(nodes=4, slots=1, seed=5))
    node = sim.nodes[0]
    node.start()
    assert node.core is not None
    fired: list[tuple[act.TimerKey, float]] = []
    handle = node.core.handle

    def spy(event: ev.Event) -> act.Step:
        if isinstance(event, ev.TimerFired):
            fired.append((event.key, event.now))
        return handle(event)

    node.core.handle = spy  # type: ignore[method-assign]
    first, second, third = (act.TimerKey(act.TimerKind.BALLOT, s) for s in (7, 8, 9))
    node._arm_timer(act.ArmTimer(first, 2.5))
    node._arm_timer(act.ArmTimer(second, 1.0))
    node._cancel_timer(act.CancelTimer(second))
    node._arm_timer(act.ArmTimer(third, 3.0))
    sim.clock.run(2.9)
    node.crash()
    sim.clock.run(10.0)
    assert [(key, now) for key, now in fired if key.slot >= 7] == [(first, 2.5)]


def test_an_own_envelope_sent_before_it_was_persisted_is_a_safety_violation() -> None:
    sim = started()
    node = sim.nodes[1]
    sim.clock.run(100.0, stop=lambda: (1, True) in node.store.own)
    assert node.core is not None
    stored = node.store.own[(1, True)]
    assert isinstance(stored.statement.pledges, SCPNomination)
    unsaved = node.core.sign_envelope(replace(stored.statement, slot_index=2))
    node.send_own(unsaved)
    assert any("before persisting it" in p for p in sim.result().safety_violations())
