"""The virtual clock runs events in (time, insertion) order and honours cancels."""

from __future__ import annotations

from scpd.sim.clock import VirtualClock
from scpd.sim.randomness import derive_rng


def test_events_run_in_time_then_insertion_order() -> None:
    clock = VirtualClock()
    seen: list[tuple[float, str]] = []
    for name, t in [("c", 2.0), ("a", 1.0), ("b", 1.0), ("d", 0.5)]:
        clock.call_at(t, lambda name=name: seen.append((clock.now, name)))
    clock.run(10.0)
    assert seen == [(0.5, "d"), (1.0, "a"), (1.0, "b"), (2.0, "c")]


def test_cancelled_event_never_runs_and_the_past_is_clamped_to_now() -> None:
    clock = VirtualClock()
    seen: list[str] = []
    e = clock.call_later(1.0, lambda: seen.append("cancelled"))
    clock.call_later(2.0, lambda: clock.call_at(0.0, lambda: seen.append(f"late at {clock.now}")))
    e.cancel()
    clock.run(10.0)
    assert seen == ["late at 2.0"]


def test_run_stops_on_condition_and_at_the_horizon() -> None:
    clock = VirtualClock()
    count = [0]

    def tick() -> None:
        count[0] += 1
        clock.call_later(1.0, tick)

    clock.call_at(0.0, tick)
    clock.run(100.0, stop=lambda: count[0] >= 5)
    assert count[0] == 5 and clock.now == 4.0
    clock.run(7.5)
    assert count[0] == 8 and clock.now == 7.5
    assert clock.next_time() == 8.0


def test_derived_streams_are_reproducible_and_independent() -> None:
    a1 = [derive_rng(7, "network").random() for _ in range(3)]
    a2 = [derive_rng(7, "network").random() for _ in range(3)]
    assert a1 == a2
    assert derive_rng(7, "network").random() != derive_rng(7, "byzantine").random()
    assert derive_rng(7, "network").random() != derive_rng(8, "network").random()
