"""One authenticated connection to a peer.

Theory of operation: after the handshake a ``Peer`` runs three tasks. The
reader reads frames, authenticates them (``Session.open``), answers PING and
hands every other message to the overlay, one at a time and in order. The
writer takes encoded messages from a bounded queue, seals them (sequence
number and MAC) and writes them; a drain that does not finish within the
write timeout means the peer stopped reading. The keep-alive pings at a fixed
interval and drops a connection that has been silent for too long (a live peer
always answers PINGs, so silence means a dead path).

``send`` never blocks: it puts the message in the queue or, when the queue is
full (in messages or in bytes, counted until the socket took them), drops
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
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from scpd.base.types import NodeID
from scpd.errors import XdrError
from scpd.node.overlay.budget import Allowance, BudgetSettings, ByteBudget
from scpd.node.overlay.framing import DEFAULT_MAX_FRAME, FrameError, encode_frame, read_frame
from scpd.node.overlay.messages import (
    ErrorMessage,
    Hello,
    OverlayMessage,
    PeerAddress,
    Ping,
    Pong,
    encode_message,
)
from scpd.node.overlay.session import MAC_SIZE, AuthenticationError, Session

__all__ = ["ANSWERING", "MALFORMED_POINTS", "Peer", "PeerSettings"]

log = structlog.get_logger(__name__)

# Misbehaviour points for an authentic message that does not decode.
MALFORMED_POINTS = 25
# At most this many queued messages are sealed and written in one system call.
WRITE_BATCH = 64
_SEALED_OVERHEAD = 8 + MAC_SIZE
_FRAMED_OVERHEAD = 4 + _SEALED_OVERHEAD

# The request being answered in this task (set by the overlay around a request's handler).
ANSWERING: contextvars.ContextVar[Allowance | None] = contextvars.ContextVar("scpd_answering", default=None)


@dataclass(frozen=True, slots=True)
class PeerSettings:
    max_frame: int = DEFAULT_MAX_FRAME
    send_queue_size: int = 1024
    send_queue_bytes: int = 16 * 1024 * 1024
    ping_interval: float = 5.0
    idle_timeout: float = 30.0
    write_timeout: float = 10.0
    write_buffer_high: int = 256 * 1024


MessageCallback = Callable[["Peer", OverlayMessage, bytes], Awaitable[None]]
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
        settings: PeerSettings,
        on_message: MessageCallback,
        on_close: CloseCallback,
        on_score: ScoreCallback,
        clock: Callable[[], float] = time.monotonic,
        answers: BudgetSettings | None = None,
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
        self._clock = clock
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(settings.send_queue_size)
        self.queued_bytes = 0  # queued or written but not yet drained, framing included
        # What answering this peer's requests may cost; default: a stranger's (2x what it sends).
        self.answers = ByteBudget(answers or BudgetSettings(rate=0.0, burst=8 * 1024 * 1024, ratio=1.0), clock)
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
        return self._queue.qsize()

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
        if len(encoded) + _SEALED_OVERHEAD > self.settings.max_frame:
            # Our own message is too big for any peer: a local problem, so it must not cost the peer anything.
            log.error("message too large to send", size=len(encoded), max_frame=self.settings.max_frame)
            return False
        size = len(encoded) + _FRAMED_OVERHEAD
        fits = self.queued_bytes + size <= self.settings.send_queue_bytes and not self._queue.full()
        allowance = ANSWERING.get()
        if allowance is not None and allowance.open and allowance.owner is self:
            if not fits or not allowance.take(size):
                self.answers_refused += 1
                return False
        elif not fits:
            self.close(
                f"send queue full ({self._queue.qsize()} messages, {self.queued_bytes} bytes): peer cannot keep up",
                abort=True,
            )
            return False
        self._queue.put_nowait(encoded)
        self.queued_bytes += size
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
            # No await between seal and write, so the sequence stays in step with the writer task.
            transport.write(encode_frame(self._session.seal(error), self.settings.max_frame))
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
                await self._queue.join()
                await self._writer.drain()
        except (TimeoutError, ConnectionError, OSError):
            pass

    async def _read_loop(self) -> None:
        try:
            while not self.closed:
                frame = await read_frame(self._reader, self.settings.max_frame)
                self.last_received = self._clock()
                self.bytes_received += len(frame) + 4  # with the 4-byte record mark
                self.answers.earn(len(frame) + 4)
                try:
                    message, encoded = self._session.open(frame)
                except XdrError as exc:
                    self.score(f"malformed message: {exc}", MALFORMED_POINTS)
                    continue
                self.messages_received += 1
                if isinstance(message, Ping):
                    self.send(Pong(message.nonce))
                elif isinstance(message, Pong):
                    pass
                elif isinstance(message, ErrorMessage):
                    self.close(f"peer sent error {message.code.name}: {message.text}")
                    return
                else:
                    await self._on_message(self, message, encoded)
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

    async def _write_loop(self) -> None:
        try:
            while True:
                batch = [await self._queue.get()]
                # Whatever else is already queued goes out in the same write: one
                # system call and one drain for a burst instead of one per message.
                while len(batch) < WRITE_BATCH and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                try:
                    frames = [encode_frame(self._session.seal_encoded(e), self.settings.max_frame) for e in batch]
                    data = b"".join(frames)
                    self._writer.write(data)
                    self.messages_sent += len(batch)
                    self.bytes_sent += len(data)
                    if self._writer.transport.get_write_buffer_size() > 0:
                        async with asyncio.timeout(self.settings.write_timeout):
                            await self._writer.drain()
                finally:
                    for encoded in batch:
                        self.queued_bytes -= len(encoded) + _FRAMED_OVERHEAD
                        self._queue.task_done()
        except TimeoutError:
            self.close(f"peer has not read for {self.settings.write_timeout}s", abort=True)
        except (ConnectionError, OSError) as exc:
            self.close(f"connection error: {exc}", abort=True)

    async def _keepalive_loop(self) -> None:
        interval = self.settings.ping_interval
        # The PING itself may close the peer (queue full) from this very task, so re-check each round.
        while not self.closed:
            await asyncio.sleep(interval)
            silent = self._clock() - self.last_received
            if silent > self.settings.idle_timeout:
                self.close(f"silent for {silent:.1f}s: dead connection", abort=True)
                return
            self.send(Ping(int.from_bytes(os.urandom(8), "big")))
