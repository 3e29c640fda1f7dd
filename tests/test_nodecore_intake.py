"""The node core's intake, driven directly: each refusal costs no action but an observation,
signatures are verified once, future slots wait for their turn, and what an envelope names is
fetched before the consensus core judges it."""

from __future__ import annotations

from dataclasses import replace

from nodecore_harness import T0, Net, make_net

from scpd.base.keys import Keypair
from scpd.nodecore import events as ev
from scpd.nodecore.actions import FetchQuorumSet, FetchTxSet, Relay, SaveQuorumSet, Verdict
from scpd.nodecore.messages import ScpMessage
from scpd.nodecore.settings import CoreSettings


def started(settings: CoreSettings | None = None) -> Net:
    net = make_net(settings)
    net.handle(ev.Started(T0))
    net.facts.seen.clear()
    return net


def receive(net: Net, sender: Keypair, envelope: object, now: float = T0) -> tuple[Verdict, list[object]]:
    step = net.core.handle(ev.MessageReceived(sender.public_key, ScpMessage(envelope), now))  # type: ignore[arg-type]
    return step.verdict, list(step.actions)


def test_an_untrusted_signer_is_refused_before_its_signature_is_checked() -> None:
    net = started()
    stranger = Keypair.random()
    envelope = net.nominate(stranger, 1, net.value(net.tx_set(b"x")))
    assert receive(net, net.a, envelope) == (Verdict.IGNORE, [])
    assert net.facts.seen == [("rejected", "untrusted")]


def test_our_own_statement_echoed_back_is_refused() -> None:
    net = started()
    envelope = net.nominate(net.local, 1, net.value(net.tx_set(b"x")))
    assert receive(net, net.a, envelope) == (Verdict.IGNORE, [])
    assert net.facts.seen == [("rejected", "own_envelope")]


def test_slots_too_far_behind_or_ahead_are_refused() -> None:
    net = started(CoreSettings(max_slots_ahead=3))
    ahead = net.nominate(net.a, 5, net.value(net.tx_set(b"x")))
    assert receive(net, net.a, ahead) == (Verdict.IGNORE, [])
    # Signed and trusted, so it was verified (a claim that the network is ahead), then refused.
    assert net.facts.seen == [("verified", True), ("rejected", "slot_out_of_range")]
    assert net.core.pending.slots() == []


def test_a_bad_signature_is_rejected_and_never_verified_twice() -> None:
    net = started()
    good = net.nominate(net.a, 1, net.value(net.tx_set(b"x")))
    forged = replace(good, signature=bytes(64))
    assert receive(net, net.b, forged) == (Verdict.REJECT, [])
    assert receive(net, net.b, forged) == (Verdict.REJECT, [])
    assert net.facts.seen == [
        ("verified", False),
        ("rejected", "bad_signature"),
        ("bad_signature", 1),
        ("remembered", None),
        ("rejected", "bad_signature"),
        ("bad_signature", 1),
    ]


def test_a_signature_is_verified_once_however_often_the_envelope_comes() -> None:
    net = started()
    tx_set = net.tx_set(b"x")
    net.view.tx_sets[tx_set.hash()] = tx_set
    envelope = net.nominate(net.a, 1, net.value(tx_set))
    for _ in range(3):
        receive(net, net.b, envelope)
    assert [f for f in net.facts.seen if f[0] in ("verified", "remembered")] == [
        ("verified", True),
        ("remembered", None),
        ("remembered", None),
    ]


def test_a_current_slot_envelope_naming_an_unknown_tx_set_waits_for_it_then_reaches_the_core() -> None:
    net = started()
    tx_set = net.tx_set(b"x")
    envelope = net.nominate(net.a, 1, net.value(tx_set))
    assert receive(net, net.b, envelope) == (
        Verdict.IGNORE,
        [FetchTxSet(1, net.b.public_key, tx_set.hash(), 5.0, ask_if_pending=False)],
    )
    assert net.core.scp.get_latest_message(net.a.public_key) is None
    # A copy from another peer while it waits costs nothing more.
    assert receive(net, net.a, envelope) == (Verdict.IGNORE, [])
    actions = net.handle(ev.TxSetAnswered(1, tx_set.to_xdr(), T0 + 0.1))
    assert actions == [Relay(ScpMessage(envelope), net.b.public_key)]
    assert net.core.scp.get_latest_message(net.a.public_key) == envelope
    assert net.core.heard_at[net.a.public_key] == T0 + 0.1


def test_an_envelope_whose_fetch_failed_is_dropped() -> None:
    net = started()
    tx_set = net.tx_set(b"x")
    envelope = net.nominate(net.a, 1, net.value(tx_set))
    receive(net, net.a, envelope)
    assert net.handle(ev.FetchFailed(1, T0 + 5)) == []
    assert ("rejected", "fetch_failed") in net.facts.seen
    assert net.core.scp.get_latest_message(net.a.public_key) is None
    # Sent again, it is fetched again (the failed wait left nothing behind).
    _, actions = receive(net, net.a, envelope, T0 + 6)
    assert actions == [FetchTxSet(2, net.a.public_key, tx_set.hash(), 5.0, ask_if_pending=False)]


def test_a_tx_set_that_is_not_the_one_named_drops_the_envelope() -> None:
    net = started()
    tx_set = net.tx_set(b"x")
    envelope = net.nominate(net.a, 1, net.value(tx_set))
    receive(net, net.a, envelope)
    assert net.handle(ev.TxSetAnswered(1, net.tx_set(b"other").to_xdr(), T0 + 0.1)) == []
    assert net.facts.seen[-1] == ("rejected", "fetch_failed")
    assert net.core.scp.get_latest_message(net.a.public_key) is None


def test_an_unknown_quorum_set_is_fetched_first_and_kept() -> None:
    net = started()
    tx_set = net.tx_set(b"x")
    net.view.tx_sets[tx_set.hash()] = tx_set
    other_qset = replace(net.qset, threshold=3)
    from scpd.base.quorum import quorum_set_hash

    qhash = quorum_set_hash(other_qset)
    envelope = net.nominate(net.a, 1, net.value(tx_set), qset_hash=qhash)
    assert receive(net, net.a, envelope) == (Verdict.IGNORE, [FetchQuorumSet(1, net.a.public_key, qhash, 5.0)])
    actions = net.handle(ev.QuorumSetAnswered(1, other_qset, T0 + 0.1))
    assert actions == [SaveQuorumSet(other_qset), Relay(ScpMessage(envelope), net.a.public_key)]


def test_the_wait_list_is_bounded() -> None:
    net = started(CoreSettings(max_waiting_envelopes=1))
    first = net.nominate(net.a, 1, net.value(net.tx_set(b"x")))
    second = net.nominate(net.b, 1, net.value(net.tx_set(b"y")))
    assert len(receive(net, net.a, first)[1]) == 1
    assert receive(net, net.b, second) == (Verdict.IGNORE, [])
    assert net.facts.seen[-1] == ("rejected", "too_many_waiting")


def test_a_future_slot_envelope_waits_for_its_slot_then_is_released() -> None:
    net = started()
    later = net.tx_set(b"later")
    future = net.nominate(net.a, 2, net.value(later))
    assert receive(net, net.a, future) == (Verdict.IGNORE, [])
    assert net.facts.seen[-1] == ("pending", 1)
    assert net.core.pending.slots() == [2]
    # Slot 1 is decided by a and b and written: slot 2 is current, the waiting envelope goes on.
    one = net.tx_set(b"one")
    net.view.tx_sets[one.hash()] = one
    value = net.value(one)
    receive(net, net.a, net.externalize(net.a, 1, value))
    receive(net, net.b, net.externalize(net.b, 1, value))
    tip = net.core.tip
    from nodecore_harness import entry_hash

    actions = net.handle(ev.LedgerWritten(1, entry_hash(tip, 1, value), T0 + 1))
    # Its tx set (built on ledger 0 here, so unknown) is fetched from the peer that sent it.
    fetches = [a for a in actions if isinstance(a, FetchTxSet)]
    assert fetches == [FetchTxSet(fetches[0].fetch_id, net.a.public_key, later.hash(), 5.0, ask_if_pending=False)]
    assert net.core.pending.slots() == []


def test_a_node_that_contradicts_itself_is_reported_once() -> None:
    net = started()
    one, two = net.tx_set(b"one"), net.tx_set(b"two")
    for tx_set in (one, two):
        net.view.tx_sets[tx_set.hash()] = tx_set
    first = net.nominate(net.a, 1, net.value(one))
    second = net.nominate(net.a, 1, net.value(two))  # votes neither grow nor include the first's
    third = net.nominate(net.a, 1, net.value(one), net.value(two))
    for envelope in (first, second, third):
        receive(net, net.a, envelope)
    assert [f for f in net.facts.seen if f[0] == "equivocation"] == [("equivocation", 1)]


def test_a_member_is_heard_when_its_statements_advance_or_it_speaks_to_us_not_when_others_echo_it() -> None:
    net = started()
    tx_set = net.tx_set(b"x")
    net.view.tx_sets[tx_set.hash()] = tx_set
    envelope = net.nominate(net.a, 1, net.value(tx_set))
    a, b = net.a.public_key, net.b.public_key
    receive(net, net.b, envelope, T0 + 1)
    assert net.core.heard_at == {a: T0 + 1, b: T0 + 1}
    # The same statement re-flooded by b later says nothing new about a.
    receive(net, net.b, envelope, T0 + 2)
    assert net.core.heard_at == {a: T0 + 1, b: T0 + 2}
