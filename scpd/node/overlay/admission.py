"""Admission: which connections become peers.

Connections are bounded in two pools, as stellar-core's pending and
authenticated peer lists: at most ``max_pending_handshakes`` inbound
handshakes at once (a new one evicts the oldest, so silent TCP connections
cannot starve real ones: an honest handshake takes milliseconds), and at most
``max_inbound_peers`` established inbound peers. Preferred peers, the validators of
our quorum set (``preferred_nodes``) and the nodes behind configured
addresses, always find a slot: when the pool is full one of them evicts a
stranger, after its AUTH proved its key. Before any key material is spent,
HELLO is refused from a banned node, from a fresh key of a host under a ban
(``bans.KeyChurn``), and from a stranger when there is no room. Of two
connections to one node, both ends keep the same one.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from scpd.base.types import NodeID
from scpd.errors import OverlayError
from scpd.node.overlay.addresses import AddressBook
from scpd.node.overlay.bans import BanList, KeyChurn
from scpd.node.overlay.framing import encode_frame
from scpd.node.overlay.handshake import Handshake, HandshakeError, HandshakeResult, perform_handshake
from scpd.node.overlay.peer import Peer
from scpd.node.overlay.settings import OverlaySettings
from scpd.node.overlay.stats import OverlayStats
from scpd.nodecore.messages import ErrorCode, ErrorMessage, Hello, PeerAddress

__all__ = ["Admission"]

log = structlog.get_logger(__name__)


class Admission:
    """The handshake pool and the rules that admit (or refuse) an authenticated connection."""

    def __init__(
        self,
        node_id: NodeID,
        config: OverlaySettings,
        stats: OverlayStats,
        peers: dict[NodeID, Peer],
        book: AddressBook,
        bans: BanList,
        churn: KeyChurn,
    ) -> None:
        self._node_id = node_id
        self._config = config
        self._stats = stats
        self._peers = peers
        self._book = book
        self._bans = bans
        self._churn = churn
        self.handshaking: dict[asyncio.StreamWriter, None] = {}  # inbound, oldest first

    def begin_handshake(self, writer: asyncio.StreamWriter) -> None:
        """An inbound connection starts its handshake; the oldest one makes room when the pool is full."""
        if len(self.handshaking) >= self._config.max_pending_handshakes:
            # Full of handshakes in progress: the oldest has had the longest to finish.
            oldest = next(iter(self.handshaking))
            del self.handshaking[oldest]
            oldest.transport.abort()
            self._stats.handshakes_evicted += 1
        self.handshaking[writer] = None

    def end_handshake(self, writer: asyncio.StreamWriter) -> None:
        self.handshaking.pop(writer, None)

    async def handshake(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        handshake: Handshake,
        inbound_host: str | None,
    ) -> HandshakeResult:
        """Run ``handshake`` on a new connection (bounded in time), HELLO checked by ``check_hello``.

        ``inbound_host`` is the address of a connection the peer dialed, None for one we dialed.
        """

        def check_hello(hello: Hello) -> None:
            self.check_hello(hello, inbound_host)

        try:
            async with asyncio.timeout(self._config.handshake_timeout):
                result = await perform_handshake(
                    reader, writer, handshake, max_message_size=self._config.max_message_size, check_hello=check_hello
                )
        except TimeoutError:
            self._stats.handshakes_failed += 1
            raise HandshakeError("handshake timed out") from None
        except (ConnectionError, OSError) as exc:
            self._stats.handshakes_failed += 1
            raise HandshakeError(f"connection lost during handshake: {exc}") from None
        except OverlayError:
            self._stats.handshakes_failed += 1
            raise
        self._stats.handshakes_ok += 1
        return result

    def check_hello(self, hello: Hello, inbound_host: str | None) -> None:
        """Refuse before any key material is spent: banned, fresh key from a banned host, or no room."""
        node = hello.node_id
        if self._bans.is_banned(node):
            raise HandshakeError(f"node {node} is banned", ErrorCode.BANNED)
        if inbound_host is None or self.node_preferred(node):
            return
        if not self._churn.admit(inbound_host, node):
            self._stats.new_keys_refused += 1
            raise HandshakeError(f"too many new keys from {inbound_host} after a ban", ErrorCode.BANNED)
        if node not in self._peers and self._inbound_count() >= self._config.max_inbound_peers:
            self._stats.inbound_refused += 1
            raise HandshakeError("too many connections", ErrorCode.LOAD)

    def _inbound_count(self) -> int:
        return sum(1 for p in self._peers.values() if not p.outbound)

    def node_preferred(self, node: NodeID) -> bool:
        """A validator of our quorum set, or the node behind a configured address."""
        return node in self._config.preferred_nodes or self._book.behind_preferred(node)

    def is_trusted(self, node: NodeID, outbound: bool, address: PeerAddress | None) -> bool:
        return self.node_preferred(node) or (outbound and address in self._book.preferred)

    def is_preferred(self, peer: Peer) -> bool:
        return self.is_trusted(peer.node_id, peer.outbound, peer.address)

    def admit(self, result: HandshakeResult, writer: asyncio.StreamWriter, *, outbound: bool) -> None:
        """Make room for an authenticated connection, or refuse it (telling the peer why) with ``HandshakeError``."""
        node = result.node_id
        if not outbound:
            try:
                self._make_room(node)
            except HandshakeError as exc:
                self._refuse(result, writer, ErrorMessage(exc.code, str(exc)))
                raise
        existing = self._peers.get(node)
        if existing is not None:
            if not self._new_connection_wins(existing, outbound, node):
                self._refuse(result, writer, ErrorMessage(ErrorCode.DUPLICATE, "already connected"))
                raise HandshakeError(f"already connected to {node}", ErrorCode.DUPLICATE)
            existing.close("replaced by a newer connection", error=ErrorMessage(ErrorCode.DUPLICATE, "replaced"))

    def _refuse(self, result: HandshakeResult, writer: asyncio.StreamWriter, error: ErrorMessage) -> None:
        with contextlib.suppress(OSError, OverlayError):
            writer.write(encode_frame(result.session.seal(error), self._config.max_message_size))
        writer.transport.close()

    def _make_room(self, node: NodeID) -> None:
        """The inbound pool is full: a preferred newcomer evicts a stranger; anyone else is refused."""
        if node in self._peers or self._inbound_count() < self._config.max_inbound_peers:
            return
        if not self.node_preferred(node):
            self._stats.inbound_refused += 1
            raise HandshakeError("too many connections", ErrorCode.LOAD)
        victim = next((p for p in self._peers.values() if not p.outbound and not self.is_preferred(p)), None)
        if victim is not None:
            self._stats.peers_evicted += 1
            log.info("peer evicted for a preferred peer", peer=str(victim.node_id), preferred=str(node))
            victim.close("evicted for a preferred peer", error=ErrorMessage(ErrorCode.LOAD, "preferred peer selected"))

    def _new_connection_wins(self, existing: Peer, new_outbound: bool, node: NodeID) -> bool:
        """Both sides must keep the same one of two crossing connections.

        Between an inbound and an outbound connection, keep the one dialed by
        the smaller node id (both ends compute the same answer). Two in the
        same direction mean the peer reconnected: the old one is stale.
        """
        if existing.outbound == new_outbound:
            return True
        new_initiator = self._node_id if new_outbound else node
        return new_initiator == min(self._node_id, node)
