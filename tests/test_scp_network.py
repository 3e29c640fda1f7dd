"""Several real SCP instances wired together by hand, from nomination to EXTERNALIZE.

No simulator here: each node has a recording driver, every emitted envelope
is delivered (signature checked) to every other node in FIFO order, and when
nothing is in flight the earliest pending timer fires. This pins down the
whole path through the public API on the 5-node 4-of-5 set, with a dead
node, with a watcher, and with a node restarted from its persisted envelopes.
"""

from __future__ import annotations

from collections import deque

from scp_harness import NETWORK_ID, RecordingDriver, keypair

from scpd.base import quorum
from scpd.base.keys import verify_envelope
from scpd.base.types import NodeID, SCPEnvelope, SCPExternalize, SCPQuorumSet
from scpd.scp import SCP, TimerId


class Wire:
    def __init__(self, n: int, threshold: int, watchers: int = 0, dead: frozenset[int] = frozenset()) -> None:
        keys = [keypair(i) for i in range(n + watchers)]
        self.ids: list[NodeID] = [k.node_id for k in keys]
        qset = SCPQuorumSet(threshold, tuple(self.ids[:n]))
        h = quorum.quorum_set_hash(qset)
        self.drivers = [RecordingDriver(key=k, qsets={h: qset}) for k in keys]
        self.nodes = [SCP(d, self.ids[i], i < n, qset) for i, d in enumerate(self.drivers)]
        self.dead = dead
        self.sent = [0] * len(self.nodes)
        self.queue: deque[tuple[int, SCPEnvelope]] = deque()
        self.delivered = 0

    def alive(self) -> list[int]:
        return [i for i in range(len(self.nodes)) if i not in self.dead]

    def collect(self) -> None:
        for i in self.alive():
            out = self.drivers[i].emitted
            for env in out[self.sent[i] :]:
                self.queue.append((i, env))
            self.sent[i] = len(out)

    def run(self, slot: int, max_steps: int = 20000) -> None:
        for _ in range(max_steps):
            self.collect()
            if self.queue:
                sender, env = self.queue.popleft()
                assert verify_envelope(NETWORK_ID, env)
                for j in self.alive():
                    if j != sender:
                        self.nodes[j].receive_envelope(env)
                        self.delivered += 1
                continue
            if all(self.nodes[i].get_externalized_value(slot) is not None for i in self.alive()):
                return
            pending = [
                (t.timeout, i, key) for i in self.alive() for key, t in self.drivers[i].timers.items() if key[0] == slot
            ]
            assert pending, "stuck: nothing in flight and no timer armed"
            _, i, key = min(pending, key=lambda p: (p[0], p[1], p[2][1]))
            self.drivers[i].fire_timer(*key)
        raise AssertionError("did not converge")


def test_five_nodes_nominate_and_externalize_the_same_value() -> None:
    wire = Wire(5, 4)
    for i, node in enumerate(wire.nodes):
        node.nominate(0, bytes([0x61 + i]), b"genesis")
    wire.run(0)
    decided = {node.get_externalized_value(0) for node in wire.nodes}
    assert len(decided) == 1
    value = decided.pop()
    assert value in {bytes([0x61 + i]) for i in range(5)}
    for d in wire.drivers:
        assert d.externalized == [(0, value)]
        assert isinstance(d.emitted[-1].statement.pledges, SCPExternalize)


def test_one_dead_node_the_other_four_still_decide() -> None:
    wire = Wire(5, 4, dead=frozenset({4}))
    for i in wire.alive():
        wire.nodes[i].nominate(0, bytes([0x61 + i]), b"genesis")
    wire.run(0)
    decided = {wire.nodes[i].get_externalized_value(0) for i in wire.alive()}
    assert len(decided) == 1 and None not in decided


def test_watcher_externalizes_silently() -> None:
    wire = Wire(4, 3, watchers=1)
    for i in range(4):
        wire.nodes[i].nominate(0, bytes([0x61 + i]), b"genesis")
    wire.run(0)
    watcher = wire.drivers[4]
    assert watcher.emitted == []
    assert watcher.externalized == wire.drivers[0].externalized


def test_consecutive_slots_with_purge() -> None:
    wire = Wire(4, 3)
    prev = b"genesis"
    for slot in range(3):
        for i, node in enumerate(wire.nodes):
            node.nominate(slot, bytes([slot, i]), prev)
        wire.run(slot)
        values = {node.get_externalized_value(slot) for node in wire.nodes}
        assert len(values) == 1
        prev = values.pop()  # type: ignore[assignment]
        for node in wire.nodes:
            node.purge_slots(slot)
    assert all(node.known_slots() == [2] for node in wire.nodes)


def test_restarted_node_restores_and_still_agrees() -> None:
    wire = Wire(4, 3)
    for i, node in enumerate(wire.nodes):
        node.nominate(0, bytes([0x61 + i]), b"genesis")
    # Let a few messages through, then "crash" node 3 and restore it from
    # what it sent last (what the daemon persists before sending).
    for _ in range(12):
        wire.collect()
        if not wire.queue:
            break
        sender, env = wire.queue.popleft()
        for j in range(4):
            if j != sender:
                wire.nodes[j].receive_envelope(env)
    persisted = wire.nodes[3].get_latest_messages_send(0)
    old_driver = wire.drivers[3]
    fresh = RecordingDriver(key=old_driver.key, qsets=old_driver.qsets)
    restored = SCP(fresh, wire.ids[3], True, wire.nodes[3].quorum_set)
    for env in persisted:
        restored.set_state_from_envelope(0, env)
    assert restored.get_latest_messages_send(0) == persisted
    wire.nodes[3], wire.drivers[3], wire.sent[3] = restored, fresh, 0
    restored.nominate(0, b"d", b"genesis")
    wire.run(0)
    values = {node.get_externalized_value(0) for node in wire.nodes}
    assert len(values) == 1 and None not in values


def test_timers_are_only_those_of_the_core() -> None:
    wire = Wire(4, 3)
    for i, node in enumerate(wire.nodes):
        node.nominate(0, bytes([0x61 + i]), b"genesis")
    wire.run(0)
    for d in wire.drivers:
        assert {key[1] for key in d.timers} <= {TimerId.NOMINATION, TimerId.BALLOT}
        assert (0, TimerId.BALLOT) not in d.timers  # stopped once externalized


def test_random_delivery_orders_and_duplicates_still_agree() -> None:
    """Shuffled, duplicated and dropped-then-resent deliveries: all nodes decide one nominated value."""
    import random

    for seed in range(25):
        rng = random.Random(seed)
        wire = Wire(4, 3)
        nominated = {bytes([seed, i]) for i in range(4)}
        for i, node in enumerate(wire.nodes):
            node.nominate(0, bytes([seed, i]), b"genesis")
        pool: list[tuple[int, SCPEnvelope, int]] = []
        for _ in range(20000):
            wire.collect()
            while wire.queue:
                sender, env = wire.queue.popleft()
                pool.extend((sender, env, j) for j in range(4) if j != sender)
            if pool:
                sender, env, j = pool.pop(rng.randrange(len(pool)))
                wire.nodes[j].receive_envelope(env)
                if rng.random() < 0.1:
                    pool.append((sender, env, j))  # delivered twice
                continue
            if all(node.get_externalized_value(0) is not None for node in wire.nodes):
                break
            pending = [(t.timeout, i, key) for i in range(4) for key, t in wire.drivers[i].timers.items()]
            assert pending, f"seed {seed}: stuck"
            _, i, key = min(pending, key=lambda p: (p[0], p[1], p[2][1]))
            wire.drivers[i].fire_timer(*key)
        values = {node.get_externalized_value(0) for node in wire.nodes}
        assert len(values) == 1, f"seed {seed}: disagreement {values}"
        assert values <= nominated, f"seed {seed}: decided a value nobody nominated"
