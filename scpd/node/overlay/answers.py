"""Requests and answers by hash: quorum sets and tx sets we fetch, and the ones peers ask of us.

Our fetches (``fetch_quorum_set`` / ``fetch_tx_set``) wait in bounded
``PendingRequests`` tables, matched by hash when the answer comes; an answer
nobody waits for is dropped before any consumer sees it, and DONT_HAVE
sends the fetch to another peer at once.

Requests (``ANSWERED_TYPES``) are answered from byte budgets (``budget``): a
preferred peer's refills with time, a stranger's only with the bytes it
sends us, and all of them draw from a total. An asker we will not answer is
told DONT_HAVE, so it asks somebody else now.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog

from scpd.base.quorum import quorum_set_hash
from scpd.base.types import NodeID, SCPQuorumSet
from scpd.node.overlay.budget import Allowance, BudgetSettings, ByteBudget
from scpd.node.overlay.handler import REJECT_POINTS
from scpd.node.overlay.peer import ANSWERING, Peer
from scpd.node.overlay.requests import PendingRequests
from scpd.node.overlay.settings import OverlaySettings
from scpd.node.overlay.stats import OverlayStats
from scpd.nodecore.messages import (
    DontHave,
    GetQuorumSet,
    GetTxSet,
    MessageType,
    OverlayMessage,
    QuorumSetMessage,
    TxSetMessage,
)

__all__ = ["Answers"]

log = structlog.get_logger(__name__)


class Answers:
    """Our pending fetches, and the answer budgets of the peers that ask us."""

    def __init__(
        self, config: OverlaySettings, stats: OverlayStats, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stats = stats
        self._total = ByteBudget(BudgetSettings(config.answer_total_rate, config.answer_total_burst), clock)
        self._trusted = BudgetSettings(config.answer_rate, config.answer_burst, config.answer_ratio)
        self._stranger = BudgetSettings(0.0, config.answer_burst, config.answer_ratio)
        limit, per_peer = config.max_pending_requests, config.max_requests_per_peer
        self._qsets: PendingRequests[SCPQuorumSet] = PendingRequests(limit, per_peer)
        self._txsets: PendingRequests[bytes] = PendingRequests(limit, per_peer)

    def budget(self, trusted: bool) -> BudgetSettings:
        """The answer budget of a new peer: earned with time if trusted, else only by what it sends."""
        return self._trusted if trusted else self._stranger

    # ----- answering requests ----------------------------------------------

    async def answer(
        self, peer: Peer, request: OverlayMessage, handle: Callable[[Peer, OverlayMessage], Awaitable[object]]
    ) -> None:
        """Let ``handle`` answer ``request``, paying from the peer's and the total answer budgets."""
        allowance = Allowance(peer, (peer.answers, self._total))
        if allowance.left <= 0:
            self._stats.requests_throttled += 1
            self._dont_have(peer, request)
            return
        token = ANSWERING.set(allowance)
        try:
            await handle(peer, request)
        finally:
            ANSWERING.reset(token)
            allowance.close()
            self._stats.answer_bytes += allowance.spent
            self._stats.answers_refused += allowance.refused
        if allowance.refused:
            self._dont_have(peer, request)

    @staticmethod
    def _dont_have(peer: Peer, request: OverlayMessage) -> None:
        """Tell an asker we will not answer, so it asks another peer now: no larger than its request."""
        if isinstance(request, (GetTxSet, GetQuorumSet)):
            peer.send(DontHave(MessageType(request.TYPE), request.item_hash))

    # ----- answers to our fetches ------------------------------------------

    def on_quorum_set(self, peer: Peer, message: QuorumSetMessage) -> None:
        if self._qsets.resolve(quorum_set_hash(message.quorum_set), message.quorum_set) is None:
            self._unrequested(peer, message)

    def on_tx_set(self, peer: Peer, message: TxSetMessage) -> None:
        answered = self._txsets.resolve(message.item_hash, message.payload)
        if answered is None:
            self._unrequested(peer, message)
        elif answered is False:
            # The payload fails the requester's hash check: a lie, and no answer from this peer.
            peer.score("TX_SET does not match its hash", REJECT_POINTS)
            self._txsets.refuse(message.item_hash, peer.node_id)

    def on_dont_have(self, peer: Peer, message: DontHave) -> None:
        table = self._qsets if message.request_type == MessageType.GET_SCP_QUORUMSET else self._txsets
        table.refuse(message.item_hash, peer.node_id)

    def _unrequested(self, peer: Peer, message: OverlayMessage) -> None:
        """An answer nobody waits for (never asked, or too late): it never reaches memory for long, nor the disk."""
        self._stats.unrequested_answers += 1
        log.debug("unrequested answer dropped", peer=str(peer.node_id), message=type(message).__name__)

    async def fetch_quorum_set(
        self, qset_hash: bytes, node: NodeID, send: Callable[[OverlayMessage], bool], timeout: float
    ) -> SCPQuorumSet | None:
        """Ask peer ``node`` (through ``send``) for a quorum set and wait up to ``timeout``; None if it never came."""
        return await self._qsets.wait(qset_hash, node, lambda: send(GetQuorumSet(qset_hash)), timeout)

    async def fetch_tx_set(
        self,
        tx_set_hash: bytes,
        node: NodeID,
        send: Callable[[OverlayMessage], bool],
        timeout: float,
        verify: Callable[[bytes], bool] | None = None,
        *,
        ask_if_pending: bool = True,
    ) -> bytes | None:
        """Ask peer ``node`` (through ``send``) for a tx set payload; ``verify`` (a hash check) filters answers.

        With ``ask_if_pending=False`` a set already requested from another peer is only waited
        for: a set is megabytes under load, and every peer that echoes a vote would otherwise
        send it again.
        """
        if not ask_if_pending and tx_set_hash in self._txsets:
            return await self._txsets.wait(tx_set_hash, node, lambda: False, timeout, verify)
        return await self._txsets.wait(tx_set_hash, node, lambda: send(GetTxSet(tx_set_hash)), timeout, verify)

    def peer_gone(self, node: NodeID) -> None:
        self._qsets.peer_gone(node)
        self._txsets.peer_gone(node)

    def cancel_all(self) -> None:
        self._qsets.cancel_all()
        self._txsets.cancel_all()
