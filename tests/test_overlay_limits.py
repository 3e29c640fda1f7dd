"""The overlay's resource limits as pure policies: byte budgets, key churn after a ban, open requests per peer."""

from __future__ import annotations

import asyncio

import pytest

from scpd.base.keys import Keypair
from scpd.node.overlay.bans import KeyChurn
from scpd.node.overlay.budget import Allowance, BudgetSettings, ByteBudget
from scpd.node.overlay.requests import PendingRequests


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_strangers_budget_grows_only_with_what_it_sends() -> None:
    clock = Clock()
    budget = ByteBudget(BudgetSettings(rate=0.0, burst=1000, ratio=1.5), clock)
    assert budget.available() == 0
    clock.now += 3600
    assert budget.available() == 0  # time alone earns a stranger nothing
    budget.earn(100)
    assert budget.available() == 150
    budget.earn(10_000)
    assert budget.available() == 1000  # capped: credit cannot be banked


def test_a_preferred_budget_refills_with_time_up_to_its_burst() -> None:
    clock = Clock()
    budget = ByteBudget(BudgetSettings(rate=100.0, burst=500), clock)
    assert budget.available() == 500
    budget.spend(500)
    assert budget.available() == 0
    clock.now += 2
    assert budget.available() == 200
    clock.now += 60
    assert budget.available() == 500


def test_an_allowance_refuses_whole_answers_beyond_what_is_left_and_charges_every_budget() -> None:
    clock = Clock()
    peer = ByteBudget(BudgetSettings(rate=1.0, burst=1000), clock)
    total = ByteBudget(BudgetSettings(rate=1.0, burst=600), clock)
    allowance = Allowance("peer", (peer, total))
    assert allowance.left == 600  # the smaller of the two
    assert allowance.take(400)
    assert not allowance.take(300)  # never sent in part
    assert allowance.take(200)
    assert (allowance.spent, allowance.refused) == (600, 1)
    assert peer.available() == 400 and total.available() == 0


def test_after_a_ban_a_host_brings_one_fresh_key_per_interval_until_the_ban_ends() -> None:
    clock = Clock()
    churn = KeyChurn(interval=60.0, clock=clock)
    assert all(churn.admit("10.0.0.1", k) for k in range(100))  # no ban: keys are free
    churn.note_ban("10.0.0.1", "banned-key", seconds=600)
    assert not churn.admit("10.0.0.1", "k1")  # the ban itself starts the interval
    assert churn.admit("10.0.0.2", "k1")  # other hosts are not affected
    clock.now += 60
    assert churn.admit("10.0.0.1", "k1")
    assert not churn.admit("10.0.0.1", "k2")
    assert churn.admit("10.0.0.1", "k1")  # a key it already used comes back freely
    clock.now += 600
    assert all(churn.admit("10.0.0.1", k) for k in range(10))  # probation over


def test_key_churn_remembers_a_bounded_number_of_hosts() -> None:
    clock = Clock()
    churn = KeyChurn(interval=60.0, clock=clock, capacity=10)
    for host in range(50):
        churn.note_ban(f"10.0.0.{host}", "k", seconds=600 + host)
    assert len(churn._hosts) == 10
    assert not churn.admit("10.0.0.49", "fresh")  # the longest bans are the ones kept


async def test_one_peer_is_asked_a_bounded_number_of_items_at_once() -> None:
    table: PendingRequests[bytes] = PendingRequests(limit=100, per_peer=3)
    stranger, other = Keypair.random().public_key, Keypair.random().public_key
    sent: list[bytes] = []

    def asker(h: bytes) -> bool:
        sent.append(h)
        return True

    waits = [
        asyncio.create_task(table.wait(bytes([i]) * 32, stranger, lambda i=i: asker(bytes([i])), 5.0)) for i in range(5)
    ]
    await asyncio.sleep(0.05)
    assert len(sent) == 3 and table.asked(stranger) == 3
    # The two over the limit were never asked: they end at once, with nothing.
    done = [w for w in waits if w.done()]
    assert len(done) == 2 and all(w.result() is None for w in done)
    other_wait = asyncio.create_task(table.wait(b"o" * 32, other, lambda: asker(b"o"), 5.0))
    await asyncio.sleep(0.05)
    assert table.asked(other) == 1  # another peer is not held back by the first
    table.resolve(bytes([0]) * 32, b"item")
    table.peer_gone(stranger)
    table.peer_gone(other)
    results = await asyncio.gather(*waits, other_wait)
    assert results[0] == b"item"
    assert table.asked(stranger) == 0 and table.asked(other) == 0 and len(table) == 0


@pytest.mark.parametrize("ratio", [0.0, 1.0, 1.5, 2.0])
def test_a_stranger_never_gets_more_than_ratio_times_what_it_sent(ratio: float) -> None:
    clock = Clock()
    budget = ByteBudget(BudgetSettings(rate=0.0, burst=10**9, ratio=ratio), clock)
    received = sent = 0
    for request in range(1000):
        budget.earn(84)
        received += 84
        allowance = Allowance("p", (budget,))
        if allowance.left > 0 and allowance.take(500 + request % 7 * 100):
            sent += allowance.spent
        clock.now += 1
    assert sent <= ratio * received
