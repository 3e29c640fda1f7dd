"""Requests peers make of the node core, and transactions in and out, driven directly."""

from __future__ import annotations

from nodecore_harness import T0, make_net

from scpd.nodecore import events as ev
from scpd.nodecore.actions import ArmTimer, Send, SendEncoded, ServeLedgers, TimerKey, TimerKind
from scpd.nodecore.catchup import GetLedgers
from scpd.nodecore.messages import (
    GetQuorumSet,
    GetTxSet,
    QuorumSetMessage,
    TransactionBatch,
    TxSetMessage,
    encode_transaction_entries,
    encode_transactions_message,
)
from scpd.nodecore.txqueue import Outcome

FLOOD = TimerKey(TimerKind.TX_FLOOD)


def test_ledgers_are_served_in_bounded_batches_at_a_bounded_rate() -> None:
    net = make_net()
    a = net.a.public_key
    asked = ev.MessageReceived(a, GetLedgers(1, 1000), T0)
    batch = net.core.settings.catchup.batch_size
    assert net.handle(asked) == [ServeLedgers(a, 1, batch)]
    # Again at once: over the serving rate, so not served.
    assert net.handle(ev.MessageReceived(a, GetLedgers(1, 1000), T0 + 0.001)) == []
    assert net.handle(ev.MessageReceived(a, GetLedgers(1, 3), T0 + 1)) == [ServeLedgers(a, 1, 3)]


def test_quorum_sets_and_tx_sets_we_hold_are_answered_and_others_are_not() -> None:
    net = make_net()
    a = net.a.public_key
    assert net.handle(ev.MessageReceived(a, GetQuorumSet(net.qhash), T0)) == [Send(a, QuorumSetMessage(net.qset))]
    assert net.handle(ev.MessageReceived(a, GetQuorumSet(bytes(32)), T0)) == []
    tx_set = net.tx_set(b"x")
    assert net.handle(ev.MessageReceived(a, GetTxSet(tx_set.hash()), T0)) == []
    net.view.tx_sets[tx_set.hash()] = tx_set
    assert net.handle(ev.MessageReceived(a, GetTxSet(tx_set.hash()), T0)) == [
        Send(a, TxSetMessage(tx_set.hash(), tx_set.to_xdr()))
    ]


def test_new_transactions_are_flooded_in_one_batch_to_everyone_but_their_origin() -> None:
    net = make_net()
    net.handle(ev.Started(T0))
    step = net.core.handle(ev.TransactionsSubmitted((b"tx one", b"tx two", b"tx one"), T0 + 0.001))
    assert [r.outcome for r in step.results] == [Outcome.QUEUED, Outcome.QUEUED, Outcome.ALREADY_KNOWN]
    assert step.actions == [ArmTimer(FLOOD, 0.02)]
    # From peer a while the batch gathers: the timer is armed once; a does not get its own back.
    assert net.handle(ev.MessageReceived(net.a.public_key, TransactionBatch((b"tx three",)), T0 + 0.005)) == []
    ours = encode_transaction_entries([b"tx one", b"tx two"])
    theirs = encode_transaction_entries([b"tx three"])
    assert net.handle(ev.TimerFired(FLOOD, T0 + 0.021)) == [
        SendEncoded(net.a.public_key, (encode_transactions_message(2, [ours]),)),
        SendEncoded(net.b.public_key, (encode_transactions_message(3, [ours, theirs]),)),
    ]
    assert net.facts.seen.count(("transactions", ("api", 3, 2))) == 1
    assert ("transactions", ("peer", 1, 1)) in net.facts.seen
