"""Own envelopes (rule 3 of docs/architecture.md), driven directly: nothing is sent before the shell says it is
stored; a write the disk fails is retried after a pause and still nothing is sent meanwhile; a
write the store refuses is never sent at all."""

from __future__ import annotations

from dataclasses import replace

from nodecore_harness import T0, Net, make_net

from scpd.base.types import SCPEnvelope, SCPNomination
from scpd.nodecore import events as ev
from scpd.nodecore.actions import ArmTimer, Broadcast, PersistOwnEnvelopes, Send, TimerKey, TimerKind
from scpd.nodecore.messages import GetScpState, ScpMessage
from scpd.nodecore.values import ConsensusValue, TxSet

RETRY = TimerKey(TimerKind.OWN_ENVELOPE_RETRY)


def started() -> tuple[Net, PersistOwnEnvelopes]:
    net = make_net()
    [persist] = [a for a in net.handle(ev.Started(T0)) if isinstance(a, PersistOwnEnvelopes)]
    return net, persist


def own(persist: PersistOwnEnvelopes) -> list[SCPEnvelope]:
    return [envelope for envelope, _sets in persist.items]


def test_our_nomination_is_stored_with_the_tx_set_we_proposed_before_it_is_sent() -> None:
    net, persist = started()
    [(nomination, sets)] = persist.items
    assert nomination.statement.node_id == net.local.public_key and nomination.statement.slot_index == 1
    # The tx set we proposed may exist nowhere else: it is stored beside the envelope.
    [proposed] = sets
    assert proposed.previous_ledger_hash == net.core.tip.hash
    # Asked for our state before the write is done: nothing of ours is said.
    assert net.handle(ev.MessageReceived(net.a.public_key, GetScpState(0), T0 + 0.01)) == []
    assert net.handle(ev.OwnEnvelopesPersisted(persist.batch_id, T0 + 0.02)) == [Broadcast(ScpMessage(nomination))]
    assert net.handle(ev.MessageReceived(net.a.public_key, GetScpState(0), T0 + 0.03)) == [
        Send(net.a.public_key, ScpMessage(nomination))
    ]


def test_a_failed_write_is_retried_after_a_pause_and_nothing_is_sent_meanwhile() -> None:
    net, persist = started()
    actions = net.handle(ev.OwnEnvelopesNotPersisted(persist.batch_id, "disk full", True, T0 + 0.01))
    assert actions == [ArmTimer(RETRY, 0.25)]
    assert not net.core.storage.ok and ("storage_failed", "own_envelope") in net.facts.seen
    assert net.handle(ev.MessageReceived(net.a.public_key, GetScpState(0), T0 + 0.1)) == []
    [again] = net.handle(ev.TimerFired(RETRY, T0 + 0.26))
    assert isinstance(again, PersistOwnEnvelopes) and own(again) == own(persist)
    # Failing again: the pause grows.
    assert net.handle(ev.OwnEnvelopesNotPersisted(again.batch_id, "disk full", True, T0 + 0.3)) == [
        ArmTimer(RETRY, 0.5)
    ]
    [third] = net.handle(ev.TimerFired(RETRY, T0 + 0.8))
    assert isinstance(third, PersistOwnEnvelopes)
    assert net.handle(ev.OwnEnvelopesPersisted(third.batch_id, T0 + 0.9)) == [
        Broadcast(ScpMessage(e)) for e in own(persist)
    ]
    assert net.core.storage.ok and ("storage_recovered", "own_envelope") in net.facts.seen


def test_envelopes_the_store_refuses_are_never_sent() -> None:
    net, persist = started()
    assert net.handle(ev.OwnEnvelopesNotPersisted(persist.batch_id, "slot too large", False, T0 + 0.01)) == []
    assert net.core.storage.ok
    assert net.handle(ev.MessageReceived(net.a.public_key, GetScpState(0), T0 + 0.1)) == []
    # A late report for a batch the core no longer waits for changes nothing.
    assert net.handle(ev.OwnEnvelopesPersisted(persist.batch_id, T0 + 0.2)) == []


def test_every_tx_set_an_own_envelope_names_is_stored_with_it_once() -> None:
    net, persist = started()
    [(nomination, sets)] = persist.items
    sets_of = net.core.sets.own_sets_of
    assert sets_of(nomination) == sets  # not on disk yet: a newer envelope naming it carries it too
    net.handle(ev.OwnEnvelopesPersisted(persist.batch_id, T0 + 0.02))
    assert sets_of(nomination) == ()  # written once
    # Another node's set our statement names is stored too: after a restart our restored statement
    # must be judged again, and a value whose set we lack would only be "maybe valid".
    theirs = TxSet.canonical(net.core.tip.hash, [b"their transaction"])
    assert net.core.sets.learn_payload(theirs.hash(), theirs.to_xdr())
    pledges = nomination.statement.pledges
    assert isinstance(pledges, SCPNomination)
    vote = ConsensusValue(int(T0) + 1, theirs.hash()).to_xdr()
    ours = net.core.sign_envelope(replace(nomination.statement, pledges=replace(pledges, votes=(*pledges.votes, vote))))
    assert sets_of(ours) == (theirs,)
