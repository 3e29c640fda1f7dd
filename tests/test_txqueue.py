"""The transaction queue: outcomes, limits, FIFO selection, and nothing accepted ever lost."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from scpd.nodecore.txqueue import Outcome, QueueLimits, Refusal, TxQueue
from scpd.nodecore.values import tx_id


def test_new_transaction_is_queued_with_its_id() -> None:
    q = TxQueue(QueueLimits(max_tx_bytes=100, max_txs=10, max_bytes=1000))
    result = q.add(b"pay alice")
    assert result.outcome is Outcome.QUEUED
    assert result.accepted
    assert result.tx_id == tx_id(b"pay alice")
    assert tx_id(b"pay alice") in q
    assert len(q) == 1 and q.total_bytes == 9


def test_same_transaction_twice_is_already_known() -> None:
    q = TxQueue(QueueLimits(max_tx_bytes=100, max_txs=10, max_bytes=1000))
    q.add(b"tx")
    again = q.add(b"tx")
    assert again.outcome is Outcome.ALREADY_KNOWN
    assert again.accepted
    assert len(q) == 1


def test_transaction_already_in_a_ledger_is_already_known_and_not_requeued() -> None:
    included = {tx_id(b"old")}
    q = TxQueue(QueueLimits(max_tx_bytes=100, max_txs=10, max_bytes=1000), is_included=included.__contains__)
    assert q.add(b"old").outcome is Outcome.ALREADY_KNOWN
    assert len(q) == 0


def test_too_large_and_empty_transactions_are_refused_with_a_reason() -> None:
    q = TxQueue(QueueLimits(max_tx_bytes=4, max_txs=10, max_bytes=1000))
    big = q.add(b"12345")
    assert (big.outcome, big.refusal) == (Outcome.REFUSED, Refusal.TOO_LARGE)
    assert not big.accepted
    assert "5 bytes" in big.detail
    empty = q.add(b"")
    assert (empty.outcome, empty.refusal) == (Outcome.REFUSED, Refusal.EMPTY)
    assert q.add(b"1234").outcome is Outcome.QUEUED
    assert len(q) == 1


def test_full_queue_refuses_by_count_and_by_bytes() -> None:
    q = TxQueue(QueueLimits(max_tx_bytes=10, max_txs=2, max_bytes=15))
    assert q.add(b"a" * 10).outcome is Outcome.QUEUED
    by_bytes = q.add(b"b" * 6)
    assert (by_bytes.outcome, by_bytes.refusal) == (Outcome.REFUSED, Refusal.QUEUE_FULL)
    assert q.add(b"c" * 5).outcome is Outcome.QUEUED
    by_count = q.add(b"d")
    assert (by_count.outcome, by_count.refusal) == (Outcome.REFUSED, Refusal.QUEUE_FULL)
    q.remove_included([tx_id(b"a" * 10)])
    assert q.add(b"d").outcome is Outcome.QUEUED


def test_add_many_gives_each_transaction_its_outcome_in_order_with_one_ledger_query() -> None:
    included = {tx_id(b"old")}
    asked: list[list[bytes]] = []

    def included_among(ids: list[bytes]) -> set[bytes]:
        asked.append(list(ids))
        return included & set(ids)

    q = TxQueue(QueueLimits(max_tx_bytes=4, max_txs=3, max_bytes=1000), included_among=included_among)
    q.add(b"was")
    results = q.add_many([b"new", b"old", b"", b"12345", b"new", b"was", b"two", b"full"])
    assert [r.outcome for r in results] == [
        Outcome.QUEUED,
        Outcome.ALREADY_KNOWN,
        Outcome.REFUSED,
        Outcome.REFUSED,
        Outcome.ALREADY_KNOWN,  # the same transaction earlier in the batch
        Outcome.ALREADY_KNOWN,  # queued before the batch
        Outcome.QUEUED,
        Outcome.REFUSED,
    ]
    assert [r.refusal for r in results if r.refusal] == [Refusal.EMPTY, Refusal.TOO_LARGE, Refusal.QUEUE_FULL]
    assert [r.tx_id for r in results] == [
        tx_id(t) for t in (b"new", b"old", b"", b"12345", b"new", b"was", b"two", b"full")
    ]
    assert len(asked) == 1 and tx_id(b"was") not in asked[0]  # queued ids are not asked about
    assert len(q) == 3


def test_add_many_falls_back_to_the_single_question() -> None:
    included = {tx_id(b"old")}
    q = TxQueue(QueueLimits(max_tx_bytes=10, max_txs=10, max_bytes=1000), is_included=included.__contains__)
    assert [r.outcome for r in q.add_many([b"old", b"new"])] == [Outcome.ALREADY_KNOWN, Outcome.QUEUED]


def test_take_for_slot_is_fifo_within_limits_and_removes_nothing() -> None:
    q = TxQueue(QueueLimits(max_tx_bytes=10, max_txs=100, max_bytes=1000))
    txs = [bytes([65 + i]) * (i + 1) for i in range(6)]  # sizes 1..6
    for tx in txs:
        q.add(tx)
    assert q.take_for_slot(max_txs=3, max_bytes=100) == txs[:3]
    assert q.take_for_slot(max_txs=100, max_bytes=10) == txs[:4]  # 1+2+3+4 = 10
    assert len(q) == 6


def test_take_items_for_slot_pairs_each_transaction_with_its_id() -> None:
    q = TxQueue(QueueLimits(max_tx_bytes=10, max_txs=100, max_bytes=1000))
    txs = [b"a", b"bb", b"ccc"]
    q.add_many(txs)
    assert q.take_items_for_slot(max_txs=2, max_bytes=100) == [(tx_id(t), t) for t in txs[:2]]


def test_take_for_slot_does_not_skip_a_transaction_that_does_not_fit() -> None:
    q = TxQueue(QueueLimits(max_tx_bytes=10, max_txs=100, max_bytes=1000))
    for tx in (b"a" * 6, b"b" * 6, b"c"):
        q.add(tx)
    # The large second one goes first next time instead of being starved by the small third.
    assert q.take_for_slot(max_txs=10, max_bytes=10) == [b"a" * 6]


def test_take_for_slot_refuses_a_byte_limit_below_the_transaction_size_limit() -> None:
    q = TxQueue(QueueLimits(max_tx_bytes=10, max_txs=100, max_bytes=1000))
    with pytest.raises(ValueError, match="cannot carry"):
        q.take_for_slot(max_txs=10, max_bytes=9)


def test_remove_included_counts_only_queued_ones() -> None:
    q = TxQueue(QueueLimits(max_tx_bytes=10, max_txs=100, max_bytes=1000))
    q.add(b"x")
    q.add(b"yy")
    assert q.remove_included([tx_id(b"x"), tx_id(b"never seen")]) == 1
    assert q.take_for_slot(10, 100) == [b"yy"]
    assert q.total_bytes == 2


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        QueueLimits(max_tx_bytes=0)
    with pytest.raises(ValueError):
        QueueLimits(max_tx_bytes=100, max_txs=10, max_bytes=99)


class QueueMachine(RuleBasedStateMachine):
    """Model check: every accepted transaction is included or still queued; limits always hold."""

    @initialize()
    def setup(self) -> None:
        self.limits = QueueLimits(max_tx_bytes=8, max_txs=6, max_bytes=30)
        self.included: set[bytes] = set()
        self.q = TxQueue(self.limits, is_included=self.included.__contains__)
        self.accepted: dict[bytes, bytes] = {}
        self.arrival: list[bytes] = []

    @rule(tx=st.binary(min_size=0, max_size=10))
    def add(self, tx: bytes) -> None:
        was_queued = tx_id(tx) in self.q
        result = self.q.add(tx)
        if result.outcome is Outcome.QUEUED:
            assert not was_queued and tx_id(tx) not in self.included
            self.accepted[result.tx_id] = tx
            self.arrival.append(result.tx_id)
        elif result.outcome is Outcome.ALREADY_KNOWN:
            assert was_queued or result.tx_id in self.included
        else:
            assert result.refusal is not None
            assert result.tx_id not in self.q

    @rule(max_txs=st.integers(0, 8), max_bytes=st.integers(8, 40), include=st.booleans())
    def close_ledger(self, max_txs: int, max_bytes: int, include: bool) -> None:
        taken = self.q.take_for_slot(max_txs, max_bytes)
        assert len(taken) <= max_txs and sum(map(len, taken)) <= max_bytes
        queued_order = [i for i in self.arrival if i in self.q]
        assert [tx_id(t) for t in taken] == queued_order[: len(taken)]
        if include:
            ids = [tx_id(t) for t in taken]
            self.included.update(ids)
            assert self.q.remove_included(ids) == len(ids)

    @invariant()
    def nothing_accepted_is_lost(self) -> None:
        for i in self.accepted:
            assert (i in self.q) != (i in self.included)

    @invariant()
    def limits_hold(self) -> None:
        assert len(self.q) <= self.limits.max_txs
        assert self.q.total_bytes <= self.limits.max_bytes
        assert self.q.total_bytes == sum(len(self.accepted[i]) for i in self.accepted if i in self.q)


QueueMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
test_queue_model = QueueMachine.TestCase


def test_peers_share_the_queue_and_leave_a_reserve_for_clients() -> None:
    q = TxQueue(QueueLimits(max_tx_bytes=100, max_txs=100, max_bytes=100_000, peer_share=0.3, client_reserve=0.25))
    flood = [q.add(b"a-%d" % i, origin="attacker") for i in range(100)]
    assert sum(r.outcome is Outcome.QUEUED for r in flood) == 30  # one peer's share
    assert flood[-1].refusal is Refusal.QUEUE_FULL and "share" in flood[-1].detail
    assert q.peer_usage("attacker")[0] == 30
    for peer in ("b", "c"):
        for i in range(30):
            q.add(b"%s-%d" % (peer.encode(), i), origin=peer)
    assert len(q) == 75  # peers together stop at 1 - reserve
    refused = q.add(b"c-late", origin="d")
    assert refused.refusal is Refusal.QUEUE_FULL and "clients" in refused.detail
    clients = [q.add(b"client-%d" % i) for i in range(25)]
    assert all(r.outcome is Outcome.QUEUED for r in clients)  # the reserve is theirs
    assert q.add(b"client-26").refusal is Refusal.QUEUE_FULL  # and then the queue is full


def test_a_peers_share_is_released_when_a_ledger_carries_its_transactions() -> None:
    q = TxQueue(QueueLimits(max_tx_bytes=100, max_txs=10, max_bytes=100_000, peer_share=0.2, client_reserve=0.0))
    first = [q.add(b"p-%d" % i, origin="p") for i in range(3)]
    assert [r.outcome for r in first] == [Outcome.QUEUED, Outcome.QUEUED, Outcome.REFUSED]
    assert q.remove_included([first[0].tx_id]) == 1
    assert q.peer_usage("p") == (1, 3)
    assert q.add(b"p-9", origin="p").outcome is Outcome.QUEUED
    summary = q.add_batch([b"p-10", b"p-11"], origin="p")
    assert summary.queued == [] and summary.refused == {Refusal.QUEUE_FULL: 2}


def test_a_share_is_counted_in_bytes_too() -> None:
    q = TxQueue(QueueLimits(max_tx_bytes=100, max_txs=1000, max_bytes=1000, peer_share=0.5, client_reserve=0.0))
    results = [q.add(bytes([i]) * 100, origin="p") for i in range(10)]
    assert sum(r.outcome is Outcome.QUEUED for r in results) == 5
    assert q.peer_usage("p") == (5, 500)
