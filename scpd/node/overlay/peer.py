"""One authenticated connection to a peer.

Theory of operation: after the handshake a ``Peer`` runs three tasks. The
reader reads the stream in large chunks, cuts them into frames
(``framing.Deframer``) and authenticates each (``Session.authenticate``: MAC
and sequence number). A frame the overlay's ``screen`` recognises from its
bytes (a flooded message it has already seen) is dropped there, before it is
decoded; every other message is decoded, PING is answered, and the rest goes
to the overlay, one at a time and in order. The keep-alive pings at a fixed
interval and drops a connection that has been silent for too long (a live peer
always answers PINGs, so silence means a dead path).

Writing needs no task hop per message: ``send`` appends the encoded message to
an outbox and, once per event-loop turn, everything sent meanwhile is sealed
(sequence number and MAC) and written in one call. When the socket stops
taking bytes (the transport's buffer is above its high-water mark) the
outbox keeps filling and the writer task waits for the drain; a drain that
does not finish within the write timeout means the peer stopped reading.

``send`` never blocks: it puts the message in the outbox or, when the outbox is
full (in messages, or in bytes counted until the socket took them), drops
the peer, so one slow peer cannot hold back the others or fill our memory.
An answer to a request is the exception: while the overlay runs a request's
handler it sets ``ANSWERING`` to that request's ``Allowance``, and what the
handler sends to this peer is charged to it; an answer that does not fit the
allowance or the queue is refused (not sent), and the peer stays. Broken or
hostile peers are aborted (``transport.abort``): their buffered bytes are
thrown away instead of waiting for a reader that is not there.

What is the peer's fault is scored through ``score``; what may be a stranger on
the path (a bad MAC, a mangled frame length) only drops the connection, so an
attacker cannot get honest peers banned by corrupting their traffic.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable

import structlog

from scpd.base.types import NodeID
from scpd.errors import XdrError
from scpd.node.overlay.budget import Allowance, BudgetSettings, ByteBudget
from scpd.node.overlay.framing import Deframer, FrameError, encode_frame
from scpd.node.overlay.session import MAC_SIZE, AuthenticationError, Session
from scpd.node.overlay.settings import OverlaySettings
from scpd.nodecore.messages import (
    ErrorMessage,
    Hello,
    OverlayMessage,
    PeerAddress,
    Ping,
    Pong,
    decode_message,
    encode_message,
)

__all__ = ["ANSWERING", "MALFORMED_POINTS", "Peer"]

log = structlog.get_logger(__name__)

# Misbehaviour points for an authentic message that does not decode.
MALFORMED_POINTS = 25
# Bytes asked of the socket per read: many frames at once under load.
READ_CHUNK = 256 * 1024
_TYPE = struct.Struct(">i")
_SEALED_OVERHEAD = 8 + MAC_SIZE
_FRAMED_OVERHEAD = 4 + _SEALED_OVERHEAD

# The request being answered in this task (set by the overlay around a request's handler).
ANSWERING: contextvars.ContextVar[Allowance | None] = contextvars.ContextVar("scpd_answering", default=None)


MessageCallback = Callable[["Peer", OverlayMessage, bytes], Awaitable[None]]
# Called with an authentic message's type and encoding before it is decoded; True drops it.
ScreenCallback = Callable[["Peer", int, bytes], bool]
CloseCallback = Callable[["Peer", str], None]
ScoreCallback = Callable[["Peer", str, int], None]


class Peer:
    """A live, authenticated connection; create with the handshake's result, then ``start``."""

    def __init__(
        self,
        hello: Hello,
        session: Session,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        outbound: bool,
        address: PeerAddress | None,
        settings: OverlaySettings,
        answers: BudgetSettings,
        on_message: MessageCallback,
        on_close: CloseCallback,
        on_score: ScoreCallback,
        clock: Callable[[], float] = time.monotonic,
        screen: ScreenCallback | None = None,
    ) -> None:
        self.hello = hello
        self.node_id: NodeID = hello.node_id
        self.outbound = outbound
        self.address = address
        peername = writer.get_extra_info("peername")
        self.host = str(peername[0]) if peername else ""  # even when the peer does not listen
        self.settings = settings
        self._session = session
        self._reader = reader
        self._writer = writer
        self._on_message = on_message
        self._on_close = on_close
        self._on_score = on_score
        self._screen = screen
        self._clock = clock
        self._outbox: deque[bytes] = deque()  # encoded, not sealed yet: sealed in write order
        self._outbox_bytes = 0  # framing included
        self._flush_pending = False  # a write is scheduled for the end of this loop turn
        self._blocked = False  # the socket's buffer is over its high-water mark: the writer task drains
        self._wake_writer = asyncio.Event()
        self._idle = asyncio.Event()  # nothing waits to be written
        self._idle.set()
        # What answering this peer's requests may cost: the overlay's budget for its kind of peer.
        self.answers = ByteBudget(answers, clock)
        self.answers_refused = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = asyncio.Event()
        self.close_reason: str | None = None
        self.last_received = clock()
        self.messages_received = 0
        self.messages_sent = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        self.misbehaviour = 0
        writer.transport.set_write_buffer_limits(high=settings.write_buffer_high)

    def __repr__(self) -> str:
        direction = "out" if self.outbound else "in"
        return f"Peer({self.node_id}, {direction}, {self.address})"

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def queued(self) -> int:
        """Messages waiting to be written."""
        return len(self._outbox)

    @property
    def queued_bytes(self) -> int:
        """Bytes queued or written but not yet taken by the socket, framing included."""
        return self._outbox_bytes + self._writer.transport.get_write_buffer_size()

    def start(self) -> None:
        name = str(self.node_id)[:8]
        self._tasks = [
            asyncio.create_task(self._read_loop(), name=f"peer-read-{name}"),
            asyncio.create_task(self._write_loop(), name=f"peer-write-{name}"),
            asyncio.create_task(self._keepalive_loop(), name=f"peer-keepalive-{name}"),
        ]

    def send(self, message: OverlayMessage) -> bool:
        return self.send_encoded(encode_message(message))

    def send_encoded(self, encoded: bytes) -> bool:
        """Queue an encoded message; False if it is too large or the peer cannot keep up (then it is dropped)."""
        if self.closed:
            return False
        if len(encoded) + _SEALED_OVERHEAD > self.settings.max_message_size:
            # Our own message is too big for any peer: a local problem, so it must not cost the peer anything.
            log.error("message too large to send", size=len(encoded), max_message_size=self.settings.max_message_size)
            return False
        size = len(encoded) + _FRAMED_OVERHEAD
        fits = (
            self.queued_bytes + size <= self.settings.send_queue_bytes
            and len(self._outbox) < self.settings.send_queue_size
        )
        allowance = ANSWERING.get()
        if allowance is not None and allowance.open and allowance.owner is self:
            if not fits or not allowance.take(size):
                self.answers_refused += 1
                return False
        elif not fits:
            self.close(
                f"send queue full ({len(self._outbox)} messages, {self.queued_bytes} bytes): peer cannot keep up",
                abort=True,
            )
            return False
        self._outbox.append(encoded)
        self._outbox_bytes += size
        self._idle.clear()
        if not self._flush_pending and not self._blocked:
            # Everything sent to this peer until the loop turns goes out in one write.
            self._flush_pending = True
            asyncio.get_running_loop().call_soon(self._flush)
        return True

    def score(self, reason: str, points: int = 1) -> None:
        """Report misbehaviour; the overlay bans the peer past its threshold."""
        if not self.closed:
            self.misbehaviour += points
            self._on_score(self, reason, points)

    def close(self, reason: str, *, error: ErrorMessage | None = None, abort: bool = False) -> None:
        """Stop the connection now (idempotent); ``error`` is sent first, best effort."""
        if self.closed:
            return
        self.close_reason = reason
        self._closed.set()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        transport = self._writer.transport
        if error is not None and not abort and not transport.is_closing():
            # What this loop turn queued goes first (unless the peer is not reading), then the error;
            # sealing and writing happen together, so the sequence numbers stay in write order.
            self._flush(closing=True)
            transport.write(encode_frame(self._session.seal(error), self.settings.max_message_size))
        if abort:
            transport.abort()
        else:
            transport.close()
        log.debug("peer closed", peer=str(self.node_id), reason=reason)
        self._on_close(self, reason)

    async def wait_closed(self) -> None:
        await self._closed.wait()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def flush(self, timeout: float) -> None:
        """Wait (bounded) until everything queued has been handed to the socket."""
        if self.closed:
            return
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
                await self._writer.drain()
        except (TimeoutError, ConnectionError, OSError):
            pass

    async def _read_loop(self) -> None:
        deframer = Deframer(self.settings.max_message_size)
        try:
            while not self.closed:
                chunk = await self._reader.read(READ_CHUNK)
                if not chunk:
                    raise deframer.end_of_stream()
                self.last_received = self._clock()
                for frame in deframer.feed(chunk):
                    if self.closed or not await self._receive(frame):
                        return
        except AuthenticationError as exc:
            self.close(f"authentication failed: {exc}", abort=True)
        except FrameError as exc:
            self.close(f"framing: {exc}", abort=True)
        except (ConnectionError, OSError) as exc:
            self.close(f"connection error: {exc}", abort=True)
        except Exception:
            # A bug in message handling must not leave a half-dead connection behind.
            log.exception("peer reader failed", peer=str(self.node_id))
            self.close("internal error while handling a message", abort=True)

    async def _receive(self, frame: bytes) -> bool:
        """Authenticate, screen, decode and hand on one frame; False once the peer said goodbye."""
        self.bytes_received += len(frame) + 4  # with the 4-byte record mark
        self.answers.earn(len(frame) + 4)
        encoded = self._session.authenticate(frame)
        self.messages_received += 1
        screen = self._screen
        if screen is not None and len(encoded) >= _TYPE.size and screen(self, _TYPE.unpack_from(encoded)[0], encoded):
            return True
        try:
            message = decode_message(encoded)
        except XdrError as exc:
            self.score(f"malformed message: {exc}", MALFORMED_POINTS)
            return True
        if isinstance(message, Ping):
            self.send(Pong(message.nonce))
        elif isinstance(message, Pong):
            pass
        elif isinstance(message, ErrorMessage):
            self.close(f"peer sent error {message.code.name}: {message.text}")
            return False
        else:
            await self._on_message(self, message, encoded)
        return True

    def _flush(self, *, closing: bool = False) -> None:
        """Seal and write everything in the outbox in one call (sequence numbers in write order)."""
        self._flush_pending = False
        if (self.closed and not closing) or self._blocked:
            return
        if not self._outbox:
            self._idle.set()
            return
        seal, max_size = self._session.seal_encoded, self.settings.max_message_size
        frames = [encode_frame(seal(encoded), max_size) for encoded in self._outbox]
        self._outbox.clear()
        data = b"".join(frames)
        self._outbox_bytes -= len(data)
        transport = self._writer.transport
        try:
            transport.write(data)
        except (ConnectionError, OSError, RuntimeError) as exc:
            self.close(f"connection error: {exc}", abort=True)
            return
        self.messages_sent += len(frames)
        self.bytes_sent += len(data)
        if transport.get_write_buffer_size() > self.settings.write_buffer_high:
            self._blocked = True
            self._wake_writer.set()
        else:
            self._idle.set()

    async def _write_loop(self) -> None:
        """Wait out a socket that stopped taking bytes, then write what queued up meanwhile."""
        try:
            while True:
                await self._wake_writer.wait()
                self._wake_writer.clear()
                async with asyncio.timeout(self.settings.write_timeout):
                    await self._writer.drain()
                self._blocked = False
                self._flush()
        except TimeoutError:
            self.close(f"peer has not read for {self.settings.write_timeout}s", abort=True)
        except (ConnectionError, OSError) as exc:
            self.close(f"connection error: {exc}", abort=True)

    async def _keepalive_loop(self) -> None:
        interval = self.settings.keepalive_interval
        # The PING itself may close the peer (queue full) from this very task, so re-check each round.
        while not self.closed:
            await asyncio.sleep(interval)
            silent = self._clock() - self.last_received
            if silent > self.settings.peer_timeout:
                self.close(f"silent for {silent:.1f}s: dead connection", abort=True)
                return
            self.send(Ping(int.from_bytes(os.urandom(8), "big")))
