"""The overlay manager: who we are connected to, and flooding between them.

Theory of operation: the ``Overlay`` owns a listening socket, a set of
authenticated ``Peer`` objects (at most one per node id) and a maintenance
task. The maintenance task keeps configured ("preferred") addresses connected,
redialing each with exponential backoff and jitter, and fills up to
``target_connections`` from addresses learned through PEERS messages.

Connections are bounded in two pools, as stellar-core's pending and
authenticated peer lists: at most ``max_pending_handshakes`` inbound
handshakes at once (a new one evicts the oldest, so silent TCP connections
cannot starve real ones: an honest handshake takes milliseconds), and at most
``max_inbound`` established inbound peers. Preferred peers, the validators of
our quorum set (``preferred_nodes``) and the nodes behind configured
addresses, always find a slot: when the pool is full one of them evicts a
stranger, after its AUTH proved its key.

Every authenticated message other than keep-alives goes through
``_dispatch``. Flooded kinds (SCP envelopes, transactions) pass the
floodgate first, keyed by the hash of their bytes and before they are even
decoded (``_screen``), so a copy costs a hash and a lookup and the
consumer's handler sees each one exactly once; the
handler's ``Verdict`` decides whether it is relayed to every other peer
(ACCEPT), dropped quietly (IGNORE) or held against the sender (REJECT). A
handler that needs time (waiting for a quorum set) returns IGNORE and calls
``relay`` later; it must not wait inside the handler, because the sender's
next messages (including the quorum set it waits for) are read only after the
handler returns. Answers to ``fetch_quorum_set`` / ``fetch_tx_set`` are matched
here, by hash; unsolicited answers and all requests go to the handler.

Requests (``ANSWERED_TYPES``) are answered from byte budgets
(``budget``): a preferred peer's refills with time, a stranger's only with
the bytes it sends us, and all of them draw from a total; TX_SET and quorum
sets nobody asked for are dropped before any consumer sees them.

Misbehaviour points accumulate per node id; past ``ban_threshold`` the peer
is disconnected and banned (node id and address) for ``ban_seconds``, and
its host may then bring fresh keys only one per ``new_key_interval``
(``bans.KeyChurn``), so a ban is not undone by generating a key.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog

from scpd.base.keys import Keypair, network_id
from scpd.base.quorum import quorum_set_hash
from scpd.base.types import NodeID, SCPQuorumSet
from scpd.errors import OverlayError, ScpdError
from scpd.node.overlay.backoff import Backoff
from scpd.node.overlay.bans import BanList, KeyChurn
from scpd.node.overlay.budget import Allowance, BudgetSettings, ByteBudget
from scpd.node.overlay.floodgate import DEFAULT_FLOOD_MEMORY, Floodgate
from scpd.node.overlay.framing import DEFAULT_MAX_FRAME, encode_frame
from scpd.node.overlay.handshake import Handshake, HandshakeError, HandshakeResult, perform_handshake
from scpd.node.overlay.peer import ANSWERING, Peer, PeerSettings
from scpd.node.overlay.requests import PendingRequests
from scpd.nodecore.actions import Verdict
from scpd.nodecore.messages import (
    ANSWERED_TYPES,
    FLOODED_TYPES,
    MAX_NEIGHBORS,
    MAX_PEER_ADDRESSES,
    Auth,
    DontHave,
    ErrorCode,
    ErrorMessage,
    GetQuorumSet,
    GetScpState,
    GetTxSet,
    Hello,
    MessageType,
    Neighbors,
    OverlayMessage,
    PeerAddress,
    Peers,
    QuorumSetMessage,
    ScpMessage,
    TxSetMessage,
    encode_message,
    message_hash,
)

__all__ = ["LIMIT_COUNTERS", "Handler", "Overlay", "OverlayConfig", "OverlayStats", "PeerWatcher", "Verdict"]

log = structlog.get_logger(__name__)


# The consumer sees the sender's node id, never the connection: it answers through ``send`` and
# ``score``, which take a node id (a peer gone meanwhile is simply not there any more).
Handler = Callable[[NodeID, OverlayMessage], Verdict | Awaitable[Verdict | None] | None]
# Told of each peer that comes (True) or goes (False); a replacement connection is no new peer.
PeerWatcher = Callable[[NodeID, bool], None]

REJECT_POINTS = 25
PROTOCOL_POINTS = 50
# Peer-set changes within this many seconds are announced to the peers together (NEIGHBORS).
NEIGHBORS_DELAY = 0.1


@dataclass(frozen=True, slots=True)
class OverlayConfig:
    network_passphrase: str
    listen_host: str = "127.0.0.1"
    listen_port: int | None = 0  # None: do not accept inbound connections
    peers: tuple[PeerAddress, ...] = ()  # preferred: always kept connected
    preferred_nodes: frozenset[NodeID] = frozenset()  # validators of our quorum set: always find a slot
    target_connections: int = 8
    max_inbound: int = 64
    max_pending_handshakes: int = 32
    max_frame: int = DEFAULT_MAX_FRAME
    send_queue_size: int = 1024
    send_queue_bytes: int = 16 * 1024 * 1024
    # Answers to requests, in bytes: preferred peers earn with time, strangers
    # earn ``answer_ratio`` bytes per byte they send; everybody draws from the total.
    answer_rate: float = 8 * 1024 * 1024
    answer_burst: int = 16 * 1024 * 1024
    answer_ratio: float = 1.0
    answer_total_rate: float = 32 * 1024 * 1024
    answer_total_burst: int = 64 * 1024 * 1024
    new_key_interval: float = 60.0
    ping_interval: float = 5.0
    idle_timeout: float = 30.0
    write_timeout: float = 10.0
    handshake_timeout: float = 5.0
    connect_timeout: float = 5.0
    ban_threshold: int = 100
    ban_seconds: float = 600.0
    flood_memory: int = DEFAULT_FLOOD_MEMORY
    max_known_addresses: int = 1000
    max_pending_requests: int = 1024
    max_requests_per_peer: int = 64
    maintenance_interval: float = 1.0
    share_peers: bool = True
    backoff: Backoff = field(default_factory=Backoff)

    def peer_settings(self) -> PeerSettings:
        return PeerSettings(
            max_frame=self.max_frame,
            send_queue_size=self.send_queue_size,
            send_queue_bytes=self.send_queue_bytes,
            ping_interval=self.ping_interval,
            idle_timeout=self.idle_timeout,
            write_timeout=self.write_timeout,
        )


@dataclass(slots=True)
class OverlayStats:
    """Counters for metrics (and for tests that wait for flooding to settle)."""

    flood_sent: int = 0
    flood_received: int = 0
    flood_duplicates: int = 0
    handshakes_ok: int = 0
    handshakes_failed: int = 0
    peers_dropped: int = 0
    bans: int = 0
    misbehaviour_reports: int = 0
    misbehaviour_disconnects: int = 0  # connected peers dropped by a ban
    handshakes_evicted: int = 0  # pending handshakes dropped for a newer connection
    inbound_refused: int = 0  # authenticated strangers refused: the inbound pool was full
    peers_evicted: int = 0  # strangers dropped to make room for a preferred peer
    new_keys_refused: int = 0  # fresh keys refused from a host under a ban
    requests_throttled: int = 0  # requests dropped: the asker's (or the total) answer budget was spent
    answers_refused: int = 0  # answers not sent: larger than what was left of the budget
    answer_bytes: int = 0
    unrequested_answers: int = 0  # TX_SET / quorum sets nobody asked for, dropped
    # Traffic of connections already closed; ``Overlay.traffic`` adds the live ones.
    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


# The ``OverlayStats`` fields that count what a resource limit refused (metric labels).
LIMIT_COUNTERS = (
    "handshakes_evicted",
    "inbound_refused",
    "peers_evicted",
    "new_keys_refused",
    "requests_throttled",
    "answers_refused",
    "unrequested_answers",
)


@dataclass(slots=True)
class _DialState:
    failures: int = 0
    next_attempt: float = 0.0


class Overlay:
    """Peer connections of one node; ``start`` it, give it a handler, ``stop`` it."""

    def __init__(
        self,
        keypair: Keypair,
        config: OverlayConfig,
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
        self._settings = config.peer_settings()
        self._peers: dict[NodeID, Peer] = {}
        self._floodgate = Floodgate(config.flood_memory)
        # What each peer says it is connected to (NEIGHBORS): relay hints, see ``_relay_targets``.
        self._neighbors: dict[NodeID, frozenset[NodeID]] = {}
        self._announce: asyncio.TimerHandle | None = None
        self._scp_slot = 0  # the highest slot of an SCP envelope accepted or sent: what a new peer is asked for
        self._bans = BanList(clock)
        self._churn = KeyChurn(config.new_key_interval, clock)
        self._answer_total = ByteBudget(BudgetSettings(config.answer_total_rate, config.answer_total_burst), clock)
        self._trusted_answers = BudgetSettings(config.answer_rate, config.answer_burst, config.answer_ratio)
        self._stranger_answers = BudgetSettings(0.0, config.answer_burst, config.answer_ratio)
        self._scores: OrderedDict[NodeID, int] = OrderedDict()
        limit, per_peer = config.max_pending_requests, config.max_requests_per_peer
        self._qsets: PendingRequests[SCPQuorumSet] = PendingRequests(limit, per_peer)
        self._txsets: PendingRequests[bytes] = PendingRequests(limit, per_peer)
        self._preferred: set[PeerAddress] = set(config.peers)
        self._known: OrderedDict[PeerAddress, None] = OrderedDict((a, None) for a in config.peers)
        self._dial: dict[PeerAddress, _DialState] = {}
        self._dialing: set[PeerAddress] = set()
        self._address_node: dict[PeerAddress, NodeID] = {}
        self._self_addresses: set[PeerAddress] = set()
        self._handshaking: dict[asyncio.StreamWriter, None] = {}  # inbound, oldest first
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
                self._on_inbound, self.config.listen_host, self.config.listen_port
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
        if self._announce is not None:
            self._announce.cancel()
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
        self._qsets.cancel_all()
        self._txsets.cancel_all()

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
        return list(self._known)

    def neighbors_of(self, node: NodeID) -> frozenset[NodeID]:
        """The nodes a peer last said it is connected to (empty until it said)."""
        return self._neighbors.get(node, frozenset())

    def dial_failures(self, address: PeerAddress) -> int:
        """Consecutive failed dials of an address (0 after a success)."""
        state = self._dial.get(address)
        return 0 if state is None else state.failures

    def is_banned(self, key: NodeID | PeerAddress) -> bool:
        return self._bans.is_banned(key)

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
        if preferred:
            self._preferred.add(address)
        if address not in self._known:
            if len(self._known) >= self.config.max_known_addresses:
                victim = next((a for a in self._known if a not in self._preferred), None)
                if victim is None:
                    return
                del self._known[victim]
                self._dial.pop(victim, None)
            self._known[address] = None
        self._wake.set()

    async def connect(self, address: PeerAddress) -> Peer:
        """Dial one address once and return the authenticated peer; raises ``OverlayError``."""
        self._dialing.add(address)
        writer: asyncio.StreamWriter | None = None
        try:
            try:
                async with asyncio.timeout(self.config.connect_timeout):
                    reader, writer = await asyncio.open_connection(address.host, address.port)
            except (OSError, TimeoutError) as exc:
                raise OverlayError(f"cannot connect to {address}: {exc or 'timed out'}") from None
            result = await self._handshake(reader, writer, initiator=True)
            self._address_node[address] = result.node_id
            return self._admit(result, reader, writer, outbound=True, address=address)
        except HandshakeError as exc:
            if exc.code == ErrorCode.SELF:
                self._self_addresses.add(address)
            raise
        except BaseException:
            if writer is not None:
                writer.transport.abort()
            raise
        finally:
            self._dialing.discard(address)

    def _address_connected(self, address: PeerAddress) -> bool:
        if address in self._dialing:
            return True
        node = self._address_node.get(address)
        if node is not None and node in self._peers:
            return True
        return any(p.address == address for p in self._peers.values())

    def _dialable(self, address: PeerAddress, now: float) -> bool:
        state = self._dial.get(address)
        return (
            address not in self._self_addresses
            and not self._address_connected(address)
            and not self._bans.is_banned(address)
            and (state is None or state.next_attempt <= now)
        )

    def _maintain(self) -> None:
        """One round: dial preferred addresses that are down, then top up to the target."""
        now = self._clock()
        for address in sorted(self._preferred):
            if self._dialable(address, now):
                self._spawn_dial(address)
        missing = self.config.target_connections - len(self._peers) - len(self._dialing)
        if missing <= 0:
            return
        candidates = [a for a in self._known if a not in self._preferred and self._dialable(a, now)]
        self._rng.shuffle(candidates)
        for address in candidates[:missing]:
            self._spawn_dial(address)

    def _spawn_dial(self, address: PeerAddress) -> None:
        self._dialing.add(address)
        self._spawn(self._dial_once(address), f"dial-{address}")

    async def _dial_once(self, address: PeerAddress) -> None:
        state = self._dial.setdefault(address, _DialState())
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
        if len(self._handshaking) >= self.config.max_pending_handshakes:
            # Full of handshakes in progress: the oldest has had the longest to finish.
            oldest = next(iter(self._handshaking))
            del self._handshaking[oldest]
            oldest.transport.abort()
            self.stats.handshakes_evicted += 1
        self._handshaking[writer] = None
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
            self._handshaking.pop(writer, None)

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, initiator: bool, host: str = ""
    ) -> HandshakeResult:
        handshake = Handshake(self.keypair, self.network_id, self.listen_port, initiator)

        def check_hello(hello: Hello) -> None:
            self._check_hello(hello, None if initiator else host)

        try:
            async with asyncio.timeout(self.config.handshake_timeout):
                result = await perform_handshake(
                    reader, writer, handshake, max_frame=self.config.max_frame, check_hello=check_hello
                )
        except TimeoutError:
            self.stats.handshakes_failed += 1
            raise HandshakeError("handshake timed out") from None
        except (ConnectionError, OSError) as exc:
            self.stats.handshakes_failed += 1
            raise HandshakeError(f"connection lost during handshake: {exc}") from None
        except OverlayError:
            self.stats.handshakes_failed += 1
            raise
        self.stats.handshakes_ok += 1
        return result

    def _check_hello(self, hello: Hello, inbound_host: str | None) -> None:
        """Refuse before any key material is spent: banned, fresh key from a banned host, or no room."""
        node = hello.node_id
        if self._bans.is_banned(node):
            raise HandshakeError(f"node {node} is banned", ErrorCode.BANNED)
        if inbound_host is None or self._node_preferred(node):
            return
        if not self._churn.admit(inbound_host, node):
            self.stats.new_keys_refused += 1
            raise HandshakeError(f"too many new keys from {inbound_host} after a ban", ErrorCode.BANNED)
        if node not in self._peers and self._inbound_count() >= self.config.max_inbound:
            self.stats.inbound_refused += 1
            raise HandshakeError("too many connections", ErrorCode.LOAD)

    def _inbound_count(self) -> int:
        return sum(1 for p in self._peers.values() if not p.outbound)

    def _node_preferred(self, node: NodeID) -> bool:
        """A validator of our quorum set, or the node behind a configured address."""
        if node in self.config.preferred_nodes:
            return True
        return any(self._address_node.get(a) == node for a in self._preferred)

    def is_preferred(self, peer: Peer) -> bool:
        return self._node_preferred(peer.node_id) or (peer.outbound and peer.address in self._preferred)

    def _make_room(self, node: NodeID) -> None:
        """The inbound pool is full: a preferred newcomer evicts a stranger; anyone else is refused."""
        if node in self._peers or self._inbound_count() < self.config.max_inbound:
            return
        if not self._node_preferred(node):
            self.stats.inbound_refused += 1
            raise HandshakeError("too many connections", ErrorCode.LOAD)
        victim = next((p for p in self._peers.values() if not p.outbound and not self.is_preferred(p)), None)
        if victim is not None:
            self.stats.peers_evicted += 1
            log.info("peer evicted for a preferred peer", peer=str(victim.node_id), preferred=str(node))
            victim.close("evicted for a preferred peer", error=ErrorMessage(ErrorCode.LOAD, "preferred peer selected"))

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
        if not outbound:
            try:
                self._make_room(node)
            except HandshakeError as exc:
                with contextlib.suppress(OSError, OverlayError):
                    writer.write(encode_frame(result.session.seal(ErrorMessage(exc.code, str(exc)))))
                writer.transport.close()
                raise
        existing = self._peers.get(node)
        if existing is not None:
            if not self._new_connection_wins(existing, outbound, node):
                error = ErrorMessage(ErrorCode.DUPLICATE, "already connected")
                with contextlib.suppress(OSError, OverlayError):
                    writer.write(encode_frame(result.session.seal(error), self.config.max_frame))
                writer.transport.close()
                raise HandshakeError(f"already connected to {node}", ErrorCode.DUPLICATE)
            existing.close("replaced by a newer connection", error=ErrorMessage(ErrorCode.DUPLICATE, "replaced"))
        peer = Peer(
            result.peer_hello,
            result.session,
            reader,
            writer,
            outbound=outbound,
            address=address,
            settings=self._settings,
            on_message=self._dispatch,
            on_close=self._on_peer_closed,
            on_score=self._on_score,
            clock=self._clock,
            answers=self._trusted_answers if self._is_trusted(node, outbound, address) else self._stranger_answers,
            screen=self._screen,
        )
        new = node not in self._peers
        self._peers[node] = peer
        if new and self._watcher is not None:
            self._watcher(node, True)
        peer.start()
        if self.config.share_peers:
            self._send_peers(peer)
        # What the peer sent before this connection (on one that was replaced, or while we were down) may
        # be lost, and with relay hints nobody else sends it: ask for its statements of the current slots.
        peer.send(GetScpState(max(self._scp_slot - 1, 0)))
        self._neighbors_changed()
        log.info("peer connected", peer=str(node), outbound=outbound, address=str(address))
        return peer

    def _is_trusted(self, node: NodeID, outbound: bool, address: PeerAddress | None) -> bool:
        return self._node_preferred(node) or (outbound and address in self._preferred)

    def _new_connection_wins(self, existing: Peer, new_outbound: bool, node: NodeID) -> bool:
        """Both sides must keep the same one of two crossing connections.

        Between an inbound and an outbound connection, keep the one dialed by
        the smaller node id (both ends compute the same answer). Two in the
        same direction mean the peer reconnected: the old one is stale.
        """
        if existing.outbound == new_outbound:
            return True
        new_initiator = self.node_id if new_outbound else node
        return new_initiator == min(self.node_id, node)

    def _on_peer_closed(self, peer: Peer, reason: str) -> None:
        if self._peers.get(peer.node_id) is peer:
            del self._peers[peer.node_id]
            if self._watcher is not None:
                self._watcher(peer.node_id, False)
            self._neighbors.pop(peer.node_id, None)
            self._neighbors_changed()
            self._floodgate.forget_peer(peer.node_id)
            self._qsets.peer_gone(peer.node_id)
            self._txsets.peer_gone(peer.node_id)
            self.stats.peers_dropped += 1
            self.stats.messages_in += peer.messages_received
            self.stats.messages_out += peer.messages_sent
            self.stats.bytes_in += peer.bytes_received
            self.stats.bytes_out += peer.bytes_sent
            log.info("peer disconnected", peer=str(peer.node_id), reason=reason)
        self._wake.set()

    # ----- misbehaviour ----------------------------------------------------

    def _on_score(self, peer: Peer, reason: str, points: int) -> None:
        total = self._scores.pop(peer.node_id, 0) + points
        self._scores[peer.node_id] = total
        while len(self._scores) > 4096:
            self._scores.popitem(last=False)
        self.stats.misbehaviour_reports += 1
        log.warning("peer misbehaved", peer=str(peer.node_id), reason=reason, points=points, total=total)
        if total >= self.config.ban_threshold:
            self.ban(peer.node_id, peer.address)

    def ban(self, node: NodeID, address: PeerAddress | None = None, seconds: float | None = None) -> None:
        """Ban a node (and its address) and drop its connection."""
        duration = self.config.ban_seconds if seconds is None else seconds
        self._bans.ban(node, duration)
        if address is not None:
            self._bans.ban(address, duration)
        peer = self._peers.get(node)
        host = peer.host if peer is not None else address.host if address is not None else ""
        if host:
            self._churn.note_ban(host, node, duration)
        self._scores.pop(node, None)
        self.stats.bans += 1
        if peer is not None:
            self.stats.misbehaviour_disconnects += 1
            peer.close("banned for misbehaviour", error=ErrorMessage(ErrorCode.BANNED, "banned for misbehaviour"))

    # ----- messages --------------------------------------------------------

    async def _dispatch(self, peer: Peer, message: OverlayMessage, encoded: bytes) -> None:
        kind = message.TYPE
        if kind in FLOODED_TYPES:
            await self._dispatch_flooded(peer, message, encoded)
        elif kind in ANSWERED_TYPES:
            await self._answer(peer, message)
        elif isinstance(message, QuorumSetMessage):
            if self._qsets.resolve(quorum_set_hash(message.quorum_set), message.quorum_set) is None:
                self._unrequested(peer, message)
        elif isinstance(message, TxSetMessage):
            answered = self._txsets.resolve(message.item_hash, message.payload)
            if answered is None:
                self._unrequested(peer, message)
            elif answered is False:
                # The payload fails the requester's hash check: a lie, and no answer from this peer.
                peer.score("TX_SET does not match its hash", REJECT_POINTS)
                self._txsets.refuse(message.item_hash, peer.node_id)
        elif isinstance(message, DontHave):
            table = self._qsets if message.request_type == MessageType.GET_SCP_QUORUMSET else self._txsets
            table.refuse(message.item_hash, peer.node_id)
        elif isinstance(message, Neighbors):
            if self._peers.get(peer.node_id) is peer:
                self._neighbors[peer.node_id] = frozenset(message.nodes)
        elif isinstance(message, Peers):
            own = PeerAddress(self.config.listen_host, self.listen_port) if self.listen_port else None
            for address in message.addresses:
                if address != own:
                    self.add_address(address)
        elif isinstance(message, (Hello, Auth)):
            peer.score(f"{MessageType(kind).name} after the handshake", PROTOCOL_POINTS)
        else:
            await self._call_handler(peer, message)

    def _screen(self, peer: Peer, kind: int, encoded: bytes) -> bool:
        """Before decoding: True drops a flooded message the floodgate already knows (a hash and a lookup).

        The floodgate's key is the hash of the message's bytes, so a copy is
        known without decoding it; the peer is recorded as holding it either way.
        """
        if kind not in FLOODED_TYPES:
            return False
        self.stats.flood_received += 1
        if self._floodgate.add(message_hash(encoded), peer.node_id):
            return False
        self.stats.flood_duplicates += 1
        return True

    async def _dispatch_flooded(self, peer: Peer, message: OverlayMessage, encoded: bytes) -> None:
        """A flooded message new to the floodgate (``_screen`` recorded it): judge it, relay it if accepted."""
        digest = message_hash(encoded)
        verdict = await self._call_handler(peer, message)
        if verdict is Verdict.ACCEPT:
            self._flood(encoded, self._relay_targets(digest, message))
        elif verdict is Verdict.IGNORE:
            # Not used now (too far ahead, waiting for a fetch) is not
            # "seen": the same message asked for again later must arrive.
            self._floodgate.discard(digest)

    def _unrequested(self, peer: Peer, message: OverlayMessage) -> None:
        """An answer nobody waits for (never asked, or too late): it never reaches memory for long, nor the disk."""
        self.stats.unrequested_answers += 1
        log.debug("unrequested answer dropped", peer=str(peer.node_id), message=type(message).__name__)

    async def _answer(self, peer: Peer, request: OverlayMessage) -> None:
        """Let the handler answer ``request``, paying from the peer's and the total answer budgets."""
        allowance = Allowance(peer, (peer.answers, self._answer_total))
        if allowance.left <= 0:
            self.stats.requests_throttled += 1
            self._dont_have(peer, request)
            return
        token = ANSWERING.set(allowance)
        try:
            await self._call_handler(peer, request)
        finally:
            ANSWERING.reset(token)
            allowance.close()
            self.stats.answer_bytes += allowance.spent
            self.stats.answers_refused += allowance.refused
        if allowance.refused:
            self._dont_have(peer, request)

    @staticmethod
    def _dont_have(peer: Peer, request: OverlayMessage) -> None:
        """Tell an asker we will not answer, so it asks another peer now: no larger than its request."""
        if isinstance(request, (GetTxSet, GetQuorumSet)):
            peer.send(DontHave(MessageType(request.TYPE), request.item_hash))

    async def _call_handler(self, peer: Peer, message: OverlayMessage) -> Verdict:
        try:
            result = self._handler(peer.node_id, message)
            if inspect.isawaitable(result):
                result = await result
        except ScpdError as exc:
            peer.score(f"invalid {type(message).__name__}: {exc}", REJECT_POINTS)
            return Verdict.REJECT
        verdict = Verdict.IGNORE if result is None else result
        if verdict is Verdict.REJECT:
            peer.score(f"rejected {type(message).__name__}", REJECT_POINTS)
        return verdict

    def _flood(self, encoded: bytes, targets: Iterable[NodeID]) -> int:
        sent = 0
        for node in targets:
            peer = self._peers.get(node)
            if peer is not None and peer.send_encoded(encoded):
                sent += 1
        self.stats.flood_sent += sent
        return sent

    def _relay_targets(self, digest: bytes, message: OverlayMessage) -> list[NodeID]:
        """The peers a flooded message goes to: those that do not have it and will not get it anyway.

        Besides the floodgate's holders (who sent it to us, or got it from us),
        an SCP envelope is not relayed to its signer, nor to a peer that says
        (NEIGHBORS) it is connected to the signer: a node sends its own
        envelopes to every peer itself, so that peer hears it first hand. On a
        full mesh nothing is relayed at all; on a sparse graph every node that
        is not the signer's neighbour is still reached through relays
        (docs/protocol.md §4).
        """
        peers: Iterable[NodeID] = self._peers
        if isinstance(message, ScpMessage):
            self._scp_slot = max(self._scp_slot, message.envelope.statement.slot_index)
            signer = message.envelope.statement.node_id
            if signer != self.node_id:
                peers = [p for p in self._peers if p != signer and signer not in self._neighbors.get(p, ())]
        return self._floodgate.targets(digest, peers)

    def relay(self, message: OverlayMessage, origin: NodeID | None = None) -> int:
        """Send a flooded message to every peer that does not have it and will not get it anyway; returns how many."""
        encoded = encode_message(message)
        digest = message_hash(encoded)
        self._floodgate.add(digest, origin if origin is not None and origin in self._peers else None)
        return self._flood(encoded, self._relay_targets(digest, message))

    def _neighbors_changed(self) -> None:
        """Our peer set changed: tell every peer shortly (changes in a burst make one announcement)."""
        if self._announce is None and self._running:
            self._announce = asyncio.get_running_loop().call_later(NEIGHBORS_DELAY, self._announce_neighbors)

    def _announce_neighbors(self) -> None:
        self._announce = None
        nodes = tuple(self._peers)[:MAX_NEIGHBORS]
        for peer in list(self._peers.values()):
            peer.send(Neighbors(nodes))

    def broadcast(self, message: OverlayMessage, *, force: bool = False) -> int:
        """Flood a message of our own; ``force`` resends even to peers that have it."""
        if not force:
            return self.relay(message)
        encoded = encode_message(message)
        digest = message_hash(encoded)
        self._floodgate.targets(digest, self._peers)
        return self._flood(encoded, list(self._peers))

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

    def _send_peers(self, peer: Peer) -> None:
        addresses: list[PeerAddress] = []
        for other in self._peers.values():
            if other is not peer and other.address is not None:
                addresses.append(other.address)
        for address in self._known:
            if len(addresses) >= MAX_PEER_ADDRESSES:
                break
            if address not in addresses and address != peer.address:
                addresses.append(address)
        if addresses:
            peer.send(Peers(tuple(addresses[:MAX_PEER_ADDRESSES])))

    # ----- fetching by hash ----------------------------------------------

    async def fetch_quorum_set(self, qset_hash: bytes, node: NodeID, timeout: float) -> SCPQuorumSet | None:
        """Ask peer ``node`` for a quorum set and wait up to ``timeout``; None if it never came."""
        return await self._qsets.wait(qset_hash, node, lambda: self.send(node, GetQuorumSet(qset_hash)), timeout)

    async def fetch_tx_set(
        self,
        tx_set_hash: bytes,
        node: NodeID,
        timeout: float,
        verify: Callable[[bytes], bool] | None = None,
        *,
        ask_if_pending: bool = True,
    ) -> bytes | None:
        """Ask peer ``node`` for a tx set payload; ``verify`` (the herder's hash check) filters answers.

        With ``ask_if_pending=False`` a set already requested from another peer is only waited
        for: a set is megabytes under load, and every peer that echoes a vote would otherwise
        send it again.
        """
        if not ask_if_pending and tx_set_hash in self._txsets:
            return await self._txsets.wait(tx_set_hash, node, lambda: False, timeout, verify)
        return await self._txsets.wait(
            tx_set_hash, node, lambda: self.send(node, GetTxSet(tx_set_hash)), timeout, verify
        )

    # ----- operator accessors (admin API) ---------------------------------

    def pending_handshakes(self) -> tuple[int, list[PeerAddress]]:
        """Connections not yet authenticated: how many inbound, and the addresses being dialed."""
        return len(self._handshaking), sorted(self._dialing, key=str)

    def bans(self) -> list[tuple[NodeID | PeerAddress, float]]:
        """Every ban in force (a node id or an address) with its seconds left."""
        return [(key, left) for key, left in self._bans.entries() if isinstance(key, NodeID | PeerAddress)]

    def unban(self, key: NodeID | PeerAddress) -> None:
        self._bans.unban(key)
