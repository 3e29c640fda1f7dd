"""The overlay manager: who we are connected to, and what passes between them.

Theory of operation: the ``Overlay`` owns a listening socket, a set of
authenticated ``Peer`` objects (at most one per node id) and a maintenance
task. The maintenance task keeps configured ("preferred") addresses connected,
redialing each with exponential backoff and jitter, and fills up to
``target_outbound_peers`` from addresses learned through PEERS messages
(``addresses``). Which connections become peers is ``admission``'s rule.

Every authenticated message other than keep-alives goes through
``_dispatch``: flooded kinds through ``relay`` (the floodgate, then the
handler's ``Verdict``, then relaying), requests and answers by hash through
``answers``, NEIGHBORS and PEERS here; the rest go to the handler. A handler
that needs time (waiting for a quorum set) returns IGNORE and calls ``relay``
later; it must not wait inside the handler, because the sender's next
messages (including the quorum set it waits for) are read only after the
handler returns.

Misbehaviour points accumulate per node id; past ``ban_threshold`` the peer
is disconnected and banned (node id and address) for ``ban_duration``, and
its host may then bring fresh keys only one per ``new_key_interval``
(``bans.KeyChurn``), so a ban is not undone by generating a key.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import structlog

from scpd.base.keys import Keypair, network_id
from scpd.base.types import NodeID, SCPQuorumSet
from scpd.errors import OverlayError
from scpd.node.overlay.addresses import AddressBook
from scpd.node.overlay.admission import Admission
from scpd.node.overlay.answers import Answers
from scpd.node.overlay.bans import BanList, KeyChurn, Scores
from scpd.node.overlay.handler import PROTOCOL_POINTS, Handler, PeerWatcher, Verdict, call_handler
from scpd.node.overlay.handshake import Handshake, HandshakeError, HandshakeResult
from scpd.node.overlay.peer import Peer
from scpd.node.overlay.relay import Relay
from scpd.node.overlay.settings import OverlaySettings
from scpd.node.overlay.stats import LIMIT_COUNTERS, OverlayStats
from scpd.nodecore.messages import (
    ANSWERED_TYPES,
    FLOODED_TYPES,
    Auth,
    DontHave,
    ErrorCode,
    ErrorMessage,
    GetScpState,
    Hello,
    MessageType,
    Neighbors,
    OverlayMessage,
    PeerAddress,
    Peers,
    QuorumSetMessage,
    TxSetMessage,
)

__all__ = ["LIMIT_COUNTERS", "Handler", "Overlay", "OverlayStats", "PeerWatcher", "Verdict"]

log = structlog.get_logger(__name__)


class Overlay:
    """Peer connections of one node; ``start`` it, give it a handler, ``stop`` it."""

    def __init__(
        self,
        keypair: Keypair,
        config: OverlaySettings,
        handler: Handler,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        watcher: PeerWatcher | None = None,
    ) -> None:
        self.keypair = keypair
        self.node_id: NodeID = keypair.public_key
        self.config = config
        self.network_id = network_id(config.network_passphrase)
        self.stats = OverlayStats()
        self._handler = handler
        self._watcher = watcher
        self._clock = clock
        self._rng = rng or random.Random()
        self._peers: dict[NodeID, Peer] = {}
        self._relay = Relay(self.node_id, self._peers, self.stats, config.flood_memory)
        self._bans = BanList(clock)
        self._churn = KeyChurn(config.new_key_interval, clock)
        self._scores = Scores()
        self._answers = Answers(config, self.stats, clock)
        self._book = AddressBook(config.peers, config.max_known_addresses)
        self._admission = Admission(self.node_id, config, self.stats, self._peers, self._book, self._bans, self._churn)
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._maintenance: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._running = False
        self.listen_port = 0

    # ----- lifecycle -----------------------------------------------------

    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        if self.config.listen_port is not None:
            self._server = await asyncio.start_server(
                self._on_inbound, self.config.listen_address, self.config.listen_port
            )
            self.listen_port = self._server.sockets[0].getsockname()[1]
        self._maintenance = asyncio.create_task(self._maintain_loop(), name="overlay-maintenance")
        log.info("overlay started", node=str(self.node_id), port=self.listen_port)

    async def stop(self, flush_timeout: float = 1.0) -> None:
        """Stop accepting, flush what is queued (bounded), close every peer, end every task."""
        if not self._running:
            return
        self._running = False
        if self._server is not None:
            self._server.close()
        if self._maintenance is not None:
            self._maintenance.cancel()
        self._relay.stop()
        for task in list(self._tasks):
            task.cancel()
        peers = list(self._peers.values())
        await asyncio.gather(*(p.flush(flush_timeout) for p in peers))
        for peer in peers:
            peer.close("overlay shutting down", error=ErrorMessage(ErrorCode.MISC, "shutting down"))
        await asyncio.gather(*(p.wait_closed() for p in peers), return_exceptions=True)
        pending = [t for t in (self._maintenance, *self._tasks) if t is not None]
        await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        self._answers.cancel_all()

    async def __aenter__(self) -> Overlay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ----- queries -------------------------------------------------------

    @property
    def peers(self) -> list[Peer]:
        return list(self._peers.values())

    def peer(self, node_id: NodeID) -> Peer | None:
        return self._peers.get(node_id)

    @property
    def known_addresses(self) -> list[PeerAddress]:
        return list(self._book.known)

    def neighbors_of(self, node: NodeID) -> frozenset[NodeID]:
        """The nodes a peer last said it is connected to (empty until it said)."""
        return self._relay.neighbors_of(node)

    def dial_failures(self, address: PeerAddress) -> int:
        """Consecutive failed dials of an address (0 after a success)."""
        return self._book.dial_failures(address)

    def is_banned(self, key: NodeID | PeerAddress) -> bool:
        return self._bans.is_banned(key)

    def is_preferred(self, peer: Peer) -> bool:
        return self._admission.is_preferred(peer)

    def traffic(self) -> dict[str, int]:
        """Messages and bytes in and out since start, over closed and live connections."""
        s = self.stats
        live = list(self._peers.values())
        return {
            "messages_in": s.messages_in + sum(p.messages_received for p in live),
            "messages_out": s.messages_out + sum(p.messages_sent for p in live),
            "bytes_in": s.bytes_in + sum(p.bytes_received for p in live),
            "bytes_out": s.bytes_out + sum(p.bytes_sent for p in live),
        }

    # ----- addresses and dialing ----------------------------------------

    def add_address(self, address: PeerAddress, *, preferred: bool = False) -> None:
        """Learn an address; preferred ones are always kept connected."""
        self._book.add(address, preferred=preferred)
        self._wake.set()

    async def connect(self, address: PeerAddress) -> Peer:
        """Dial one address once and return the authenticated peer; raises ``OverlayError``."""
        self._book.dialing.add(address)
        writer: asyncio.StreamWriter | None = None
        try:
            try:
                async with asyncio.timeout(self.config.connect_timeout):
                    reader, writer = await asyncio.open_connection(address.host, address.port)
            except (OSError, TimeoutError) as exc:
                raise OverlayError(f"cannot connect to {address}: {exc or 'timed out'}") from None
            result = await self._handshake(reader, writer, initiator=True)
            self._book.node_of[address] = result.node_id
            return self._admit(result, reader, writer, outbound=True, address=address)
        except HandshakeError as exc:
            if exc.code == ErrorCode.SELF:
                self._book.ourselves.add(address)
            raise
        except BaseException:
            if writer is not None:
                writer.transport.abort()
            raise
        finally:
            self._book.dialing.discard(address)

    def _maintain(self) -> None:
        """One round: dial preferred addresses that are down, then top up to the target."""
        now = self._clock()
        for address in self._book.to_dial(now, self._peers, self._bans, self.config.target_outbound_peers, self._rng):
            self._spawn(self._dial_once(address), f"dial-{address}")

    async def _dial_once(self, address: PeerAddress) -> None:
        state = self._book.dial_state(address)
        try:
            await self.connect(address)
        except OverlayError as exc:
            state.failures += 1
            state.next_attempt = self._clock() + self.config.backoff.delay(state.failures)
            # The first failure is often a peer still starting: a warning once it fails again.
            (log.warning if state.failures > 1 else log.info)(
                "dial failed",
                address=str(address),
                error=str(exc),
                failures=state.failures,
                retry_in=round(state.next_attempt - self._clock(), 3),
            )
        else:
            state.failures = 0
            state.next_attempt = 0.0

    async def _maintain_loop(self) -> None:
        while True:
            self._maintain()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.maintenance_interval):
                    await self._wake.wait()
            self._wake.clear()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        # The coroutine itself becomes the task: a task cancelled before it
        # first runs then closes it, instead of leaving it never awaited.
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ----- accepting and admitting --------------------------------------

    async def _on_inbound(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if not self._running or self.config.max_pending_handshakes < 1:
            writer.transport.close()
            return
        self._admission.begin_handshake(writer)
        peername = writer.get_extra_info("peername")
        host = str(peername[0]) if peername else ""
        try:
            result = await self._handshake(reader, writer, initiator=False, host=host)
            port = result.peer_hello.listening_port
            address = PeerAddress(host, port) if port and host else None
            self._admit(result, reader, writer, outbound=False, address=address)
            if address is not None:
                self.add_address(address)
        except OverlayError as exc:
            log.debug("inbound refused", error=str(exc))
            writer.transport.abort()
        except BaseException:
            writer.transport.abort()
            raise
        finally:
            self._admission.end_handshake(writer)

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, initiator: bool, host: str = ""
    ) -> HandshakeResult:
        handshake = Handshake(self.keypair, self.network_id, self.listen_port, initiator)
        return await self._admission.handshake(reader, writer, handshake, None if initiator else host)

    def _admit(
        self,
        result: HandshakeResult,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        outbound: bool,
        address: PeerAddress | None,
    ) -> Peer:
        node = result.node_id
        self._admission.admit(result, writer, outbound=outbound)
        peer = Peer(
            result.peer_hello,
            result.session,
            reader,
            writer,
            outbound=outbound,
            address=address,
            settings=self.config,
            on_message=self._dispatch,
            on_close=self._on_peer_closed,
            on_score=self._on_score,
            clock=self._clock,
            answers=self._answers.budget(self._admission.is_trusted(node, outbound, address)),
            screen=self._relay.screen,
        )
        new = node not in self._peers
        self._peers[node] = peer
        self._relay.peers_changed()
        if new and self._watcher is not None:
            self._watcher(node, True)
        peer.start()
        if self.config.share_peers:
            shared = self._book.peers_message(peer, self._peers)
            if shared is not None:
                peer.send(shared)
        # What the peer sent before this connection (on one that was replaced, or while we were down) may
        # be lost, and with relay hints nobody else sends it: ask for its statements of the current slots.
        peer.send(GetScpState(max(self._relay.scp_slot - 1, 0)))
        self._neighbors_changed()
        log.info("peer connected", peer=str(node), outbound=outbound, address=str(address))
        return peer

    def _neighbors_changed(self) -> None:
        if self._running:
            self._relay.neighbors_changed()

    def _on_peer_closed(self, peer: Peer, reason: str) -> None:
        if self._peers.get(peer.node_id) is peer:
            del self._peers[peer.node_id]
            if self._watcher is not None:
                self._watcher(peer.node_id, False)
            self._relay.peer_gone(peer.node_id)
            self._neighbors_changed()
            self._answers.peer_gone(peer.node_id)
            self.stats.peers_dropped += 1
            self.stats.messages_in += peer.messages_received
            self.stats.messages_out += peer.messages_sent
            self.stats.bytes_in += peer.bytes_received
            self.stats.bytes_out += peer.bytes_sent
            log.info("peer disconnected", peer=str(peer.node_id), reason=reason)
        self._wake.set()

    # ----- misbehaviour ----------------------------------------------------

    def _on_score(self, peer: Peer, reason: str, points: int) -> None:
        total = self._scores.add(peer.node_id, points)
        self.stats.misbehaviour_reports += 1
        log.warning("peer misbehaved", peer=str(peer.node_id), reason=reason, points=points, total=total)
        if total >= self.config.ban_threshold:
            self.ban(peer.node_id, peer.address)

    def ban(self, node: NodeID, address: PeerAddress | None = None, seconds: float | None = None) -> None:
        """Ban a node (and its address) and drop its connection."""
        duration = self.config.ban_duration if seconds is None else seconds
        self._bans.ban(node, duration)
        if address is not None:
            self._bans.ban(address, duration)
        peer = self._peers.get(node)
        host = peer.host if peer is not None else address.host if address is not None else ""
        if host:
            self._churn.note_ban(host, node, duration)
        self._scores.forget(node)
        self.stats.bans += 1
        if peer is not None:
            self.stats.misbehaviour_disconnects += 1
            peer.close("banned for misbehaviour", error=ErrorMessage(ErrorCode.BANNED, "banned for misbehaviour"))

    # ----- messages --------------------------------------------------------

    async def _dispatch(self, peer: Peer, message: OverlayMessage, encoded: bytes) -> None:
        kind = message.TYPE
        if kind in FLOODED_TYPES:
            self._relay.judged(message, encoded, await self._call_handler(peer, message))
        elif kind in ANSWERED_TYPES:
            await self._answers.answer(peer, message, self._call_handler)
        elif isinstance(message, QuorumSetMessage):
            self._answers.on_quorum_set(peer, message)
        elif isinstance(message, TxSetMessage):
            self._answers.on_tx_set(peer, message)
        elif isinstance(message, DontHave):
            self._answers.on_dont_have(peer, message)
        elif isinstance(message, Neighbors):
            self._relay.on_neighbors(peer, message)
            if self._peers.get(peer.node_id) is peer:  # the node core steers transaction batches by it too
                await self._call_handler(peer, message)
        elif isinstance(message, Peers):
            own = PeerAddress(self.config.listen_address, self.listen_port) if self.listen_port else None
            for address in message.addresses:
                if address != own:
                    self.add_address(address)
        elif isinstance(message, (Hello, Auth)):
            peer.score(f"{MessageType(kind).name} after the handshake", PROTOCOL_POINTS)
        else:
            await self._call_handler(peer, message)

    async def _call_handler(self, peer: Peer, message: OverlayMessage) -> Verdict:
        return await call_handler(self._handler, peer, message)

    def relay(self, message: OverlayMessage, origin: NodeID | None = None) -> int:
        """Send a flooded message to every peer that does not have it and will not get it anyway; returns how many."""
        return self._relay.relay(message, origin)

    def broadcast(self, message: OverlayMessage, *, force: bool = False) -> int:
        """Flood a message of our own; ``force`` resends even to peers that have it."""
        return self._relay.broadcast(message, force=force)

    def send(self, node: NodeID, message: OverlayMessage) -> bool:
        """Queue ``message`` for the connected peer ``node``; False if it is not connected or its queue is full."""
        peer = self._peers.get(node)
        return peer is not None and peer.send(message)

    def send_encoded(self, node: NodeID, messages: Iterable[bytes]) -> int:
        """Queue encoded messages for ``node`` in order, up to the first its queue refuses; returns how many."""
        peer = self._peers.get(node)
        sent = 0
        if peer is not None:
            for message in messages:
                if not peer.send_encoded(message):
                    break
                sent += 1
        return sent

    def score(self, node: NodeID, reason: str, points: int) -> None:
        """Hold misbehaviour against the connected peer ``node`` (past the threshold it is banned)."""
        peer = self._peers.get(node)
        if peer is not None:
            peer.score(reason, points)

    # ----- fetching by hash ----------------------------------------------

    async def fetch_quorum_set(self, qset_hash: bytes, node: NodeID, timeout: float) -> SCPQuorumSet | None:
        """Ask peer ``node`` for a quorum set and wait up to ``timeout``; None if it never came."""
        return await self._answers.fetch_quorum_set(qset_hash, node, lambda m: self.send(node, m), timeout)

    async def fetch_tx_set(
        self,
        tx_set_hash: bytes,
        node: NodeID,
        timeout: float,
        verify: Callable[[bytes], bool] | None = None,
        *,
        ask_if_pending: bool = True,
    ) -> bytes | None:
        """Ask peer ``node`` for a tx set payload; ``verify`` (the herder's hash check) filters answers."""
        return await self._answers.fetch_tx_set(
            tx_set_hash, node, lambda m: self.send(node, m), timeout, verify, ask_if_pending=ask_if_pending
        )

    # ----- operator accessors (admin API) ---------------------------------

    def pending_handshakes(self) -> tuple[int, list[PeerAddress]]:
        """Connections not yet authenticated: how many inbound, and the addresses being dialed."""
        return len(self._admission.handshaking), sorted(self._book.dialing, key=str)

    def bans(self) -> list[tuple[NodeID | PeerAddress, float]]:
        """Every ban in force (a node id or an address) with its seconds left."""
        return [(key, left) for key, left in self._bans.entries() if isinstance(key, NodeID | PeerAddress)]

    def unban(self, key: NodeID | PeerAddress) -> None:
        self._bans.unban(key)
