"""TRANSACTIONS batches: encoding groups once and joining them per peer, and the queue's batch add."""

from __future__ import annotations

import os

import pytest

from scpd.base.xdr import XdrError
from scpd.nodecore.messages import (
    TransactionBatch,
    decode_message,
    encode_message,
    encode_transaction_entries,
    encode_transactions_message,
)
from scpd.nodecore.txflood import _encode_groups, _join_groups
from scpd.nodecore.txqueue import QueueLimits, Refusal, TxQueue
from scpd.nodecore.values import tx_id


def test_a_message_joined_from_encoded_entries_is_the_batch_message() -> None:
    a, b = [b"x", b"yy", b"zzz"], [b"four", b"fives"]
    joined = encode_transactions_message(5, [encode_transaction_entries(a), encode_transaction_entries(b)])
    assert joined == encode_message(TransactionBatch(tuple(a + b)))
    assert decode_message(joined) == TransactionBatch(tuple(a + b))


def test_an_empty_transaction_cannot_be_encoded() -> None:
    with pytest.raises(XdrError, match="empty transaction"):
        encode_transaction_entries([b"ok", b""])


def test_groups_split_by_budget_and_join_back_in_order() -> None:
    txs = [os.urandom(250) for _ in range(100)]
    groups = _encode_groups(txs, budget=2000)
    assert [n for n, _ in groups] == [8] * 12 + [4]  # 8 x 250 bytes fit 2000
    messages = _join_groups(groups, budget=5000)
    decoded = [decode_message(m) for m in messages]
    assert all(isinstance(m, TransactionBatch) for m in decoded)
    assert [tx for m in decoded for tx in m.payloads] == txs  # type: ignore[attr-defined]
    assert all(len(m) <= 5000 + 8 for m in messages)
    assert len(messages) == 7  # two groups of 8 x 256 bytes of entries per 5000-byte message


def test_add_batch_reports_only_the_new_and_the_refused() -> None:
    q = TxQueue(QueueLimits(max_tx_bytes=5, max_txs=3, max_bytes=1000), included_among=lambda ids: {tx_id(b"old")})
    q.add(b"seen")
    summary = q.add_batch([b"seen", b"old", b"new", b"toolong", b"new", b"two", b"full"])
    assert summary.queued == [b"new", b"two"]
    assert summary.refused == {Refusal.TOO_LARGE: 1, Refusal.QUEUE_FULL: 1}
    assert len(q) == 3
    assert q.add_batch([b"seen", b"new"]).queued == []
