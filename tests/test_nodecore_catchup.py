"""Catch-up decisions of the node core, driven directly: when to ask, whom, and what to believe."""

from __future__ import annotations

from dataclasses import replace

from nodecore_harness import T0, ask_for_ledgers, chain_of, entry_hash, make_net, receive, started

from scpd.base.keys import Keypair
from scpd.nodecore import events as ev
from scpd.nodecore.actions import Send, Verdict, WriteLedger
from scpd.nodecore.catchup import GetLedgers, Ledgers
from scpd.nodecore.messages import GetScpState


def test_one_slot_behind_while_the_slot_still_moves_asks_nobody() -> None:
    net = started()
    value = net.value(net.tx_set(b"next"))
    # a and b are at slot 2 (they closed slot 1): the normal race at a slot's end.
    actions = receive(net, net.a, net.nominate(net.a, 2, value), T0 + 0.1)
    actions += receive(net, net.b, net.nominate(net.b, 2, value), T0 + 0.1)
    assert not [a for a in actions if isinstance(a, Send) and isinstance(a.message, GetLedgers)]


def test_a_trusted_peer_is_asked_before_a_stranger() -> None:
    net = make_net()
    stranger = Keypair(bytes([9]) * 32).public_key
    net.handle(ev.PeerConnected(stranger, T0))
    net.handle(ev.Started(T0))
    request = ask_for_ledgers(net, T0 + 1)
    assert request.peer in (net.a.public_key, net.b.public_key)


def test_a_ledger_that_does_not_follow_our_chain_is_rejected_and_not_written() -> None:
    net = started()
    request = ask_for_ledgers(net, T0 + 1)
    [one] = chain_of(net, 1)
    forged = replace(one, tx_set=net.tx_set(b"something else"))
    step = net.core.handle(ev.MessageReceived(request.peer, Ledgers(4, (forged,)), T0 + 1.1))
    assert step.verdict is Verdict.REJECT
    assert not [a for a in step.actions if isinstance(a, WriteLedger)]


def test_too_few_proofs_is_no_lie_but_is_not_believed() -> None:
    net = started()
    request = ask_for_ledgers(net, T0 + 1)
    [one] = chain_of(net, 1)
    thin = replace(one, proofs=one.proofs[:1])  # a alone is not v-blocking for us
    step = net.core.handle(ev.MessageReceived(request.peer, Ledgers(4, (thin,)), T0 + 1.1))
    assert step.verdict is Verdict.IGNORE
    assert not [a for a in step.actions if isinstance(a, WriteLedger)]


def test_an_answer_nobody_asked_for_is_ignored() -> None:
    net = started()
    [one] = chain_of(net, 1)
    step = net.core.handle(ev.MessageReceived(net.a.public_key, Ledgers(4, (one,)), T0 + 1))
    assert step.verdict is Verdict.IGNORE and step.actions == []


def test_once_caught_up_the_current_slots_statements_are_asked_for_again() -> None:
    net = started()
    # a and b claim slot 3: ledgers 1 and 2 are closed.
    value = net.value(net.tx_set(b"ahead"))
    receive(net, net.a, net.nominate(net.a, 3, value), T0 + 1)
    [request] = [
        a
        for a in receive(net, net.b, net.nominate(net.b, 3, value), T0 + 1)
        if isinstance(a, Send) and isinstance(a.message, GetLedgers)
    ]
    one, two = chain_of(net, 2)
    net.handle(ev.MessageReceived(request.peer, Ledgers(2, (one, two)), T0 + 1.1))
    net.handle(ev.LedgerWritten(1, entry_hash(net.core.tip, 1, one.value.to_xdr()), T0 + 1.2))
    actions = net.handle(ev.LedgerWritten(2, entry_hash(net.core.tip, 2, two.value.to_xdr()), T0 + 1.3))
    assert [a for a in actions if isinstance(a, Send) and isinstance(a.message, GetScpState)] == [
        Send(net.a.public_key, GetScpState(2)),
        Send(net.b.public_key, GetScpState(2)),
    ]
