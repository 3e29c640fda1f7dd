"""Catch-up, the node's side: when to ask for ledgers, what to believe of the answer, whom to serve.

The rules live in ``scpd.nodecore.catchup`` (``Catchup``: claims, requests,
serving rate; ``check_entry``). This module decides when: a trusted, signed
statement for a slot ahead of us (a v-blocking set of them) says the network
is there; while we are behind, a request goes out at most as often as
``Catchup`` allows, to a node we trust when one is connected. Nothing is asked
while the disk fails (nothing fetched could be written), nor when we are one
slot behind and the slot is still moving (the normal race at a slot's end).
Each served entry is checked against the chain as it will be once what we
hold is written (``LedgerWriter.pending_tip``) and handed to the writer.
Serving reads the store, so the shell does it (``ServeLedgers``), bounded
per peer in rate and count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scpd.base.types import NodeID
from scpd.nodecore.actions import Send, ServeLedgers, Verdict
from scpd.nodecore.catchup import GetLedgers, Ledgers, check_entry
from scpd.nodecore.messages import GetScpState
from scpd.nodecore.values import ChainTip, LedgerEntry, ledger_hash

if TYPE_CHECKING:
    from scpd.nodecore.core import NodeCore

__all__ = ["CatchupClient"]


class CatchupClient:
    def __init__(self, core: NodeCore) -> None:
        self._core = core
        self._just_caught_up = False

    def note_network_slot(self, node: NodeID, slot: int) -> None:
        """A trusted, signed statement for ``slot``: the network may be ahead (v-blocking claims count)."""
        catchup = self._core.catchup
        before = catchup.highest_seen
        catchup.note_claim(node, slot)
        if catchup.highest_seen > before:
            self.maybe_catch_up()

    def maybe_catch_up(self) -> None:
        """Send the next request if we are behind and one is due (``Catchup`` bounds it)."""
        core = self._core
        if not core.running or not core.storage.ok:
            return  # nothing fetched could be written; ask again once writes go through
        # Slots already waiting to be written count as had.
        have = core.writer.pending_tip().slot + 1
        now = core.now
        if (
            core.catchup.highest_seen == have + 1
            and now - core.cadence.last_progress < core.settings.rebroadcast_interval
        ):
            return  # one slot behind is the normal race at a slot's end: let consensus finish it first
        # Ask the nodes we trust when any is connected: a stranger's answer is checked, but costs a timeout.
        trusted = [n for n in core.peers if n in core.trust]
        request = core.catchup.next_request(trusted or core.peers, have, now)
        if request is not None:
            node, message = request
            core.observer.catching_up(node, message.from_slot, message.count)
            core.emit(Send(node, message))

    def ledger_written(self) -> None:
        core = self._core
        if core.catchup.behind(core.current_slot):
            self.maybe_catch_up()
        elif self._just_caught_up:
            # Caught up: ask for the current slot's statements we ignored while behind.
            self._just_caught_up = False
            for peer in core.peers:
                core.emit(Send(peer, GetScpState(max(core.current_slot - 1, 0))))

    def serve(self, peer: NodeID, request: GetLedgers) -> None:
        """GET_LEDGERS: the shell reads and sends, bounded in count here and in rate by ``Catchup``."""
        core = self._core
        if not core.catchup.may_serve(peer, core.now):
            return
        count = max(0, min(request.count, core.settings.catchup.batch_size))
        core.emit(ServeLedgers(peer, request.from_slot, count))

    def received(self, peer: NodeID, message: Ledgers) -> Verdict:
        """Check each served entry against the trust rule and hand the good ones to the writer."""
        core = self._core
        catchup = core.catchup
        if not catchup.expects(peer):
            return Verdict.IGNORE
        if peer in core.trust:
            catchup.note_claim(peer, message.tip_slot + 1)
        # Entries already queued for writing extend our view of the chain (the view we asked from).
        tip = core.writer.pending_tip()
        accepted = 0
        for entry in message.entries:
            if entry.slot <= tip.slot:
                continue
            problem = check_entry(entry, tip, core.scp.quorum_set, core.net_id)
            if problem is not None:
                catchup.failed(peer)
                catchup.entries_refused += 1
                core.observer.catchup_entry_refused(peer, entry.slot, problem)
                if "v-blocking" in problem:
                    return Verdict.IGNORE  # too few proofs is not a lie; ask someone else
                return Verdict.REJECT
            core.writer.add_caught_up(entry)
            tip = ChainTip(
                entry.slot, ledger_hash(tip.hash, LedgerEntry(entry.slot, entry.value)), entry.value.close_time
            )
            accepted += 1
        catchup.answered(peer, message)
        if accepted:
            catchup.entries_accepted += accepted
            self._just_caught_up = True
            core.writer.write_next()
        else:
            self.maybe_catch_up()
        return Verdict.IGNORE
