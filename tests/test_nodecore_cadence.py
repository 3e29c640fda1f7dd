"""The node core's cadence, with the clock in the test's hand: slot i+1 is nominated slot_interval
after slot i started, or at once when slot i took longer; a stuck slot is re-flooded."""

from __future__ import annotations

from nodecore_harness import T0, Net, entry_hash, make_net

from scpd.base.types import SCPNomination
from scpd.nodecore import events as ev
from scpd.nodecore.actions import (
    ArmTimer,
    Broadcast,
    Checkpoint,
    Externalized,
    PersistOwnEnvelopes,
    Send,
    TimerKey,
    TimerKind,
    WriteLedger,
)
from scpd.nodecore.messages import GetScpState, ScpMessage
from scpd.nodecore.settings import CoreSettings

CADENCE = TimerKey(TimerKind.CADENCE)
TICK = TimerKey(TimerKind.TICK)


def solo(interval: float = 30.0) -> tuple[Net, WriteLedger]:
    """A node that is its own quorum, started at T0: slot 1 is decided at once."""
    net = make_net(CoreSettings(slot_interval=interval), solo=True)
    actions = net.handle(ev.Started(T0))
    assert actions[0] == ArmTimer(TICK, 0.5)
    [write] = [a for a in actions if isinstance(a, WriteLedger)]
    assert write.entry.slot == 1
    return net, write


def written(net: Net, write: WriteLedger, now: float) -> list[object]:
    slot, value = write.entry.slot, write.entry.value.to_xdr()
    return list(net.handle(ev.LedgerWritten(slot, entry_hash(net.core.tip, slot, value), now)))


def test_a_quick_slot_is_followed_an_interval_after_it_started() -> None:
    net, write = solo()
    assert written(net, write, T0 + 1.5) == [Externalized(1, 0, 1.5), Checkpoint(), ArmTimer(CADENCE, 28.5)]
    assert net.core.current_slot == 2
    # Nothing is nominated for slot 2 before its time comes.
    assert 2 not in net.core.scp.known_slots()
    actions = net.handle(ev.TimerFired(CADENCE, T0 + 30))
    assert [a.entry.slot for a in actions if isinstance(a, WriteLedger)] == [2]
    # Slot 2's statements wait for slot 1's to be stored (one write at a time), then go to disk.
    actions = net.handle(ev.OwnEnvelopesPersisted(1, T0 + 30.1))
    [persist] = [a for a in actions if isinstance(a, PersistOwnEnvelopes)]
    assert {item[0].statement.slot_index for item in persist.items} == {2}


def test_a_slot_that_took_longer_than_the_interval_is_followed_at_once() -> None:
    net, write = solo()
    assert written(net, write, T0 + 100)[-1] == ArmTimer(CADENCE, 0.0)


def test_a_slot_we_never_nominated_counts_as_started_when_written() -> None:
    net = make_net(CoreSettings(slot_interval=5.0))
    net.handle(ev.Started(T0))
    # Slot 1 decided by a and b while we stay quiet: we did nominate it at T0 (Started), so the
    # next slot is due at T0 + 5 whatever the write time.
    one = net.tx_set(b"one")
    net.view.tx_sets[one.hash()] = one
    value = net.value(one)
    for kp in (net.a, net.b):
        net.handle(ev.MessageReceived(kp.public_key, ScpMessage(net.externalize(kp, 1, value)), T0 + 1))
    actions = net.handle(ev.LedgerWritten(1, entry_hash(net.core.tip, 1, value), T0 + 2))
    assert ArmTimer(CADENCE, 3.0) in actions


def test_a_stuck_slot_refloods_our_stored_statements_and_asks_for_others() -> None:
    net = make_net(CoreSettings(rebroadcast_interval=2.0))
    actions = net.handle(ev.Started(T0))
    [persist] = [a for a in actions if isinstance(a, PersistOwnEnvelopes)]
    nomination = persist.items[0][0]
    assert isinstance(nomination.statement.pledges, SCPNomination)
    # Before the interval: only the next tick.
    assert net.handle(ev.TimerFired(TICK, T0 + 0.5)) == [ArmTimer(TICK, 0.5)]
    # Not yet stored: a rebroadcast must not send it.
    assert net.handle(ev.TimerFired(TICK, T0 + 2.0)) == [
        Send(net.a.public_key, GetScpState(0)),
        Send(net.b.public_key, GetScpState(0)),
        ArmTimer(TICK, 0.5),
    ]
    assert net.handle(ev.OwnEnvelopesPersisted(persist.batch_id, T0 + 2.1)) == [Broadcast(ScpMessage(nomination))]
    assert net.handle(ev.TimerFired(TICK, T0 + 4.0)) == [
        Broadcast(ScpMessage(nomination), force=True),
        Send(net.a.public_key, GetScpState(0)),
        Send(net.b.public_key, GetScpState(0)),
        ArmTimer(TICK, 0.5),
    ]


def state_requests(actions: list[object]) -> list[object]:
    return [a.peer for a in actions if isinstance(a, Send) and isinstance(a.message, GetScpState)]


def test_a_stuck_slot_asks_two_peers_at_a_time_trusted_ones_first_and_each_in_turn() -> None:
    net = make_net(CoreSettings(rebroadcast_interval=2.0))
    strangers = [bytes([200 + i]) * 32 for i in range(3)]
    for stranger in strangers:
        net.handle(ev.PeerConnected(stranger, T0))
    net.handle(ev.Started(T0))
    # a and b are in our quorum set; the strangers are asked only when no trusted peer is connected.
    assert state_requests(net.handle(ev.TimerFired(TICK, T0 + 2.0))) == [net.a.public_key, net.b.public_key]
    net.handle(ev.PeerGone(net.a.public_key, T0 + 2.5))
    net.handle(ev.PeerGone(net.b.public_key, T0 + 2.5))
    asked = state_requests(net.handle(ev.TimerFired(TICK, T0 + 4.0)))
    asked += state_requests(net.handle(ev.TimerFired(TICK, T0 + 6.0)))
    assert len(asked) == 4 and set(asked) == set(strangers)


def test_waiting_for_our_own_cadence_is_not_a_stall() -> None:
    net, write = solo(interval=30.0)
    assert net.core.settings.rebroadcast_interval < 30.0
    assert written(net, write, T0 + 0.5)[-1] == ArmTimer(CADENCE, 29.5)
    net.handle(ev.PeerConnected(net.a.public_key, T0 + 0.5))
    # Slot 2 starts at T0 + 30: until then no tick re-floods or asks anyone, however long it waits.
    for second in range(1, 30):
        assert net.handle(ev.TimerFired(TICK, T0 + second)) == [ArmTimer(TICK, 0.5)]
    actions = net.handle(ev.TimerFired(CADENCE, T0 + 30))
    assert [a.entry.slot for a in actions if isinstance(a, WriteLedger)] == [2]
