"""Ledger write order, driven directly: strictly in slot order and one at a time, whatever order
the ledgers become known in; a write the disk fails is retried after a pause while no slot starts
and no ledgers are asked for; EXTERNALIZE statements that come after the write become proofs."""

from __future__ import annotations

from nodecore_harness import T0, ask_for_ledgers, chain_of, entry_hash, make_net, receive, started

from scpd.nodecore import events as ev
from scpd.nodecore.actions import (
    AddProofs,
    ArmTimer,
    PersistOwnEnvelopes,
    Send,
    TimerKey,
    TimerKind,
    WriteLedger,
)
from scpd.nodecore.catchup import GetLedgers, Ledgers
from scpd.nodecore.values import ConsensusValue, LedgerEntry

RETRY = TimerKey(TimerKind.LEDGER_RETRY)
CADENCE = TimerKey(TimerKind.CADENCE)


def test_ledgers_are_written_one_at_a_time_in_slot_order() -> None:
    net = started()
    request = ask_for_ledgers(net, T0 + 1)
    assert request.message == GetLedgers(1, 4)
    one, two = chain_of(net, 2)
    # Both ledgers arrive at once: only slot 1 is written; slot 2 waits for it.
    actions = net.handle(ev.MessageReceived(request.peer, Ledgers(4, (one, two)), T0 + 1.1))
    assert [a.entry for a in actions if isinstance(a, WriteLedger)] == [LedgerEntry(1, one.value)]
    actions = net.handle(ev.LedgerWritten(1, entry_hash(net.core.tip, 1, one.value.to_xdr()), T0 + 1.2))
    assert [a.entry for a in actions if isinstance(a, WriteLedger)] == [LedgerEntry(2, two.value)]
    assert net.core.tip.slot == 1


def test_a_failed_ledger_write_is_retried_and_nothing_moves_meanwhile() -> None:
    net = make_net(solo=True)
    actions = net.handle(ev.Started(T0))
    [write] = [a for a in actions if isinstance(a, WriteLedger)]
    [persist] = [a for a in actions if isinstance(a, PersistOwnEnvelopes)]
    net.handle(ev.OwnEnvelopesPersisted(persist.batch_id, T0 + 0.01))
    assert net.handle(ev.LedgerNotWritten(1, "disk full", True, T0 + 0.1)) == [ArmTimer(RETRY, 0.25)]
    assert not net.core.storage.ok and net.core.current_slot == 1
    # No next slot is scheduled or nominated while slot 1 is not on disk.
    assert net.handle(ev.TimerFired(CADENCE, T0 + 5)) == []
    assert net.core.scp.known_slots() == [1]
    assert net.handle(ev.TimerFired(RETRY, T0 + 0.35)) == [write]
    assert net.handle(ev.LedgerNotWritten(1, "disk full", True, T0 + 0.4)) == [ArmTimer(RETRY, 0.5)]
    assert net.handle(ev.TimerFired(RETRY, T0 + 0.9)) == [write]
    actions = net.handle(ev.LedgerWritten(1, entry_hash(net.core.tip, 1, write.entry.value.to_xdr()), T0 + 1.0))
    assert net.core.storage.ok and net.core.tip.slot == 1
    assert actions[-1] == ArmTimer(CADENCE, 4.0)


def test_no_ledgers_are_asked_for_while_the_disk_fails() -> None:
    net = started()
    request = ask_for_ledgers(net, T0 + 1)
    [one] = chain_of(net, 1)
    net.handle(ev.MessageReceived(request.peer, Ledgers(4, (one,)), T0 + 1.1))
    assert net.handle(ev.LedgerNotWritten(1, "disk full", True, T0 + 1.2)) == [ArmTimer(RETRY, 0.25)]
    # The request is long overdue and the network is ahead, but nothing fetched could be written.
    actions = net.handle(ev.TimerFired(TimerKey(TimerKind.TICK), T0 + 30))
    assert not [a for a in actions if isinstance(a, Send) and isinstance(a.message, GetLedgers)]


def test_a_refused_catch_up_entry_gives_the_next_source_a_chance() -> None:
    net = started()
    request = ask_for_ledgers(net, T0 + 1)
    [one] = chain_of(net, 1)
    net.handle(ev.MessageReceived(request.peer, Ledgers(4, (one,)), T0 + 1.1))
    assert net.handle(ev.LedgerNotWritten(1, "chain refused", False, T0 + 1.2)) == []
    assert net.core.storage.ok and net.core.writer.caught_up == {}


def test_a_late_externalize_from_outside_our_quorum_costs_nothing() -> None:
    net = make_net(solo=True)
    [write] = [a for a in net.handle(ev.Started(T0)) if isinstance(a, WriteLedger)]
    net.handle(ev.LedgerWritten(1, entry_hash(net.core.tip, 1, write.entry.value.to_xdr()), T0 + 0.1))
    # Nobody but us is trusted in a solo quorum: a's EXTERNALIZE is refused before it costs anything.
    late = net.externalize(net.a, 1, write.entry.value.to_xdr())
    assert receive(net, net.a, late, T0 + 0.2) == []
    assert net.facts.seen[-1] == ("rejected", "untrusted")


def test_late_externalize_of_a_trusted_node_is_kept_as_a_proof_once() -> None:
    net = started()
    request = ask_for_ledgers(net, T0 + 1)
    [one] = chain_of(net, 1)
    net.handle(ev.MessageReceived(request.peer, Ledgers(4, (one,)), T0 + 1.1))
    net.handle(ev.LedgerWritten(1, entry_hash(net.core.tip, 1, one.value.to_xdr()), T0 + 1.2))
    late = net.externalize(net.a, 1, one.value.to_xdr())
    assert receive(net, net.b, late, T0 + 1.3) == [AddProofs(1, (late,))]
    assert receive(net, net.b, late, T0 + 1.4) == []


def test_a_slot_decided_before_a_crash_but_not_written_is_written_on_start() -> None:
    net = make_net(connect=False)
    tx_set = net.tx_set(b"decided")
    net.view.tx_sets[tx_set.hash()] = tx_set
    value = net.value(tx_set)
    ours = net.externalize(net.local, 1, value)
    net.view.own.append(ours)
    writes = [a for a in net.handle(ev.Started(T0)) if isinstance(a, WriteLedger)]
    # Our own EXTERNALIZE (restored from the store) is its proof.
    assert writes == [WriteLedger(LedgerEntry(1, ConsensusValue.from_xdr(value)), tx_set, (ours,))]
