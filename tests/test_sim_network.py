"""The simulated network: latency models, loss that stops, duplication, partitions."""

from __future__ import annotations

import math

import pytest

from scpd.errors import UsageError
from scpd.sim.clock import VirtualClock
from scpd.sim.network import (
    Constant,
    Exponential,
    LinkSpec,
    Network,
    NetworkConditions,
    Partition,
    Uniform,
    parse_latency,
)
from scpd.sim.randomness import derive_rng


def make(conditions: NetworkConditions) -> tuple[VirtualClock, Network, list[tuple[float, int, int, bytes]]]:
    clock = VirtualClock()
    got: list[tuple[float, int, int, bytes]] = []
    net = Network(clock, derive_rng(1, "net"), conditions, lambda dst, src, p: got.append((clock.now, dst, src, p)))
    return clock, net, got


def test_constant_latency_delivers_in_send_order() -> None:
    clock, net, got = make(NetworkConditions(LinkSpec(Constant(0.25))))
    for i in range(3):
        net.send(0, 1, bytes([i]))
    clock.run(10)
    assert got == [(0.25, 1, 0, b"\x00"), (0.25, 1, 0, b"\x01"), (0.25, 1, 0, b"\x02")]
    assert net.counters.as_dict() == {"sent": 3, "delivered": 3, "lost": 0, "cut_by_partition": 0, "duplicated": 0}


def test_random_latency_reorders_within_its_bounds() -> None:
    clock, net, got = make(NetworkConditions(LinkSpec(Uniform(0.1, 0.5))))
    for i in range(200):
        net.send(0, 1, i.to_bytes(2, "big"))
    clock.run(10)
    times = [t for t, *_ in got]
    assert all(0.1 <= t <= 0.5 for t in times)
    order = [int.from_bytes(p, "big") for *_, p in got]
    assert sorted(order) == list(range(200)) and order != list(range(200))


def test_per_link_override_applies_to_that_direction_only() -> None:
    conditions = NetworkConditions(LinkSpec(Constant(0.1)), {(0, 1): LinkSpec(Constant(2.0))})
    clock, net, got = make(conditions)
    net.send(0, 1, b"slow")
    net.send(1, 0, b"fast")
    clock.run(10)
    assert [(t, p) for t, _, _, p in got] == [(0.1, b"fast"), (2.0, b"slow")]


def test_loss_drops_a_fraction_and_stops_at_loss_until() -> None:
    clock, net, got = make(NetworkConditions(LinkSpec(Constant(0.0), loss=0.5), loss_until=5.0))
    for _ in range(1000):
        net.send(0, 1, b"x")
    assert 400 < net.counters.lost < 600
    clock.run(6.0)
    before = net.counters.lost
    for _ in range(100):
        net.send(0, 1, b"y")
    assert net.counters.lost == before
    clock.run(7.0)
    assert sum(1 for *_, p in got if p == b"y") == 100


def test_duplication_delivers_twice() -> None:
    clock, net, got = make(NetworkConditions(LinkSpec(Constant(0.0), duplicate=1.0)))
    net.send(0, 1, b"x")
    clock.run(1)
    assert len(got) == 2 and net.counters.duplicated == 1


def test_partition_cuts_across_groups_only_while_active_including_in_flight() -> None:
    p = Partition(1.0, 3.0, (frozenset({0, 1}), frozenset({2})))
    clock, net, got = make(NetworkConditions(LinkSpec(Constant(0.5)), partitions=(p,)))
    clock.call_at(0.8, lambda: net.send(0, 2, b"in-flight"))  # arrives at 1.3, inside the partition
    clock.call_at(1.5, lambda: net.send(0, 1, b"same-side"))
    clock.call_at(1.5, lambda: net.send(0, 2, b"across"))
    clock.call_at(3.0, lambda: net.send(2, 0, b"healed"))
    clock.run(10)
    assert [p for *_, p in got] == [b"same-side", b"healed"]
    assert net.counters.cut == 2
    assert p.separates(3, 2, 2.0)  # nodes in no group form a group of their own


def test_heal_time_counts_partitions_and_loss() -> None:
    p = Partition(1.0, 4.0, (frozenset({0}),))
    assert NetworkConditions(LinkSpec(loss=0.1), partitions=(p,), loss_until=6.0).heal_time == 6.0
    assert NetworkConditions(LinkSpec(), partitions=(p,), loss_until=6.0).heal_time == 4.0
    assert NetworkConditions().heal_time == 0.0


def test_latency_and_partition_parsing_round_trip() -> None:
    for text in ["const:0.05", "uniform:0.01:0.2", "exp:0.01:0.1"]:
        assert str(parse_latency(text)) == text
    assert parse_latency("exp:0:0") == Exponential(0.0, 0.0)
    for bad in ["const", "uniform:0.3:0.1", "gauss:1", "const:-1", "const:nan", "uniform:a:b"]:
        with pytest.raises(UsageError):
            parse_latency(bad)
    p = Partition.parse("1:2.5:0,1/2,3")
    assert p == Partition(1.0, 2.5, (frozenset({0, 1}), frozenset({2, 3})))
    assert Partition.parse(str(p)) == p
    for bad in ["1:2", "2:1:0/1", "x:2:0/1", f"0:{math.inf}:0/1"]:
        with pytest.raises(UsageError):
            Partition.parse(bad)
