"""A hostile peer for integration tests: the real handshake with any key, then anything.

``HostilePeer`` is a blocking client (plain ``socket``, no event loop, so it
drops into the synchronous tests that drive ``tests/netutil.Network``). It
runs the production handshake pieces (``Handshake``: X25519, Ed25519 AUTH,
HKDF; ``Session``: sequence numbers and HMACs) against a running ``scpd``
process, under a freshly generated key unless told otherwise, and then sends
whatever the test wants:

    with Network(tmp_path, 4) as net:
        net.wait_slot(2)
        peer = HostilePeer.to_node(net.nodes[0], rcvbuf=4096)  # a key in nobody's quorum set
        peer.send(GetTxSet(some_hash))                         # any OverlayMessage
        peer.send(peer.envelope(slot, SCPNomination(...)))     # SCP, signed by the peer's key
        peer.send_raw(b"...")                                  # bytes as they are, no MAC
        answers = peer.read_for(1.0)                           # or never read at all
        print(peer.bytes_out, peer.bytes_in, peer.closed_by_remote)

Every byte crossing the socket is counted in ``bytes_out`` / ``bytes_in``
(frames, MACs and the handshake included), and what was read is also counted
per message type in ``bytes_in_by_type``, so a test can assert the
amplification the node allows: the answers' bytes over the attacker's
(flooded SCP messages the node relays meanwhile are not answers).
``rcvbuf`` shrinks the socket's receive buffer before connecting, so a peer
that never reads stops the node's writes after a few kilobytes instead of the
kernel's default megabytes.

``node_process_rss`` reads a process's resident memory from
``/proc/PID/status``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from scpd.base.keys import Keypair, network_id, sign_statement
from scpd.base.types import NodeID, Pledges, SCPStatement
from scpd.errors import OverlayError, XdrError
from scpd.node.overlay.framing import encode_frame
from scpd.node.overlay.handshake import Handshake, HandshakeError
from scpd.node.overlay.session import Session
from scpd.nodecore.messages import (
    MAX_OPAQUE,
    Auth,
    Hello,
    OverlayMessage,
    Ping,
    Pong,
    ScpMessage,
    decode_message,
    encode_message,
)

__all__ = ["HostilePeer", "NodeEndpoint", "node_endpoint", "process_rss"]

_LENGTH = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class NodeEndpoint:
    """Where a node listens for peers and which network it is on (from its TOML file)."""

    port: int
    passphrase: str
    public_key: str
    host: str = "127.0.0.1"


class HasConfig(Protocol):
    """A ``tests.netutil.Node``, or anything else that knows its node's TOML file."""

    config: Path


def node_endpoint(config: Path) -> NodeEndpoint:
    data = tomllib.loads(config.read_text())
    return NodeEndpoint(
        port=int(data["overlay"]["listen_port"]),
        passphrase=str(data["network"]["passphrase"]),
        public_key=str(data["node"]["public_key"]),
    )


def process_rss(pid: int) -> int:
    """Resident set size of a process, in bytes (``VmRSS`` of ``/proc/PID/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class HostilePeer:
    """One authenticated connection to a node, driven by hand; see the module docstring."""

    def __init__(self, sock: socket.socket, keypair: Keypair, passphrase: str) -> None:
        self.sock = sock
        self.keypair = keypair
        self.net_id = network_id(passphrase)
        self.session: Session | None = None
        self.remote_hello: Hello | None = None
        self.bytes_out = 0
        self.bytes_in = 0
        self.bytes_in_by_type: Counter[int] = Counter()  # authenticated messages read, framing included
        self.closed_by_remote = False
        self._buffer = bytearray()
        self.max_frame = MAX_OPAQUE  # what we send is not bound by any limit of the node

    # ----- connecting -----------------------------------------------------

    @classmethod
    def open(
        cls,
        port: int,
        passphrase: str,
        keypair: Keypair | None = None,
        *,
        rcvbuf: int | None = None,
        timeout: float = 10.0,
    ) -> HostilePeer:
        """A TCP connection to 127.0.0.1:``port`` with no handshake yet (``handshake`` does it)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Our ephemeral port may be one a node under test must bind again after a restart:
        # with SO_REUSEADDR it can, even while this socket lingers in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
        return cls(sock, keypair or Keypair.random(), passphrase)

    @classmethod
    def connect(
        cls,
        port: int,
        passphrase: str,
        keypair: Keypair | None = None,
        *,
        rcvbuf: int | None = None,
        timeout: float = 10.0,
        listening_port: int = 0,
    ) -> HostilePeer:
        """Connect and complete the real handshake; raises ``HandshakeError`` if the node refuses."""
        peer = cls.open(port, passphrase, keypair, rcvbuf=rcvbuf, timeout=timeout)
        try:
            peer.handshake(listening_port)
        except BaseException:
            peer.close()
            raise
        return peer

    @classmethod
    def to_node(
        cls, node: HasConfig, keypair: Keypair | None = None, *, rcvbuf: int | None = None, timeout: float = 10.0
    ) -> HostilePeer:
        """``connect`` to a node of a ``tests.netutil.Network``."""
        endpoint = node_endpoint(node.config)
        return cls.connect(endpoint.port, endpoint.passphrase, keypair, rcvbuf=rcvbuf, timeout=timeout)

    def handshake(self, listening_port: int = 0) -> None:
        """HELLO both ways, then AUTH both ways, as the initiator."""
        hs = Handshake(self.keypair, self.net_id, listening_port, initiator=True)
        self.send_raw(encode_frame(encode_message(hs.local_hello)))
        hello = decode_message(self._read_frame())
        if not isinstance(hello, Hello):
            raise HandshakeError(f"node answered {hello!r} instead of HELLO", from_peer=True)
        hs.receive_hello(hello)
        session = hs.session()
        self.send_raw(encode_frame(session.seal(hs.auth_message())))
        auth, _ = session.open(self._read_frame())
        if not isinstance(auth, Auth):
            raise HandshakeError(f"node answered {auth!r} instead of AUTH", from_peer=True)
        hs.verify_auth(auth)
        self.session = session
        self.remote_hello = hello

    @property
    def node_id(self) -> NodeID:
        return self.keypair.public_key

    # ----- sending --------------------------------------------------------

    def envelope(self, slot: int, pledges: Pledges, keypair: Keypair | None = None) -> ScpMessage:
        """An SCP message for ``slot`` signed by ``keypair`` (default: this peer's own key)."""
        signer = keypair or self.keypair
        statement = SCPStatement(signer.public_key, slot, pledges)
        return ScpMessage(sign_statement(signer, self.net_id, statement))

    def sealed(self, message: OverlayMessage) -> bytes:
        """One framed, sequenced and MACed message (uses the next sequence number)."""
        assert self.session is not None, "handshake first"
        return encode_frame(self.session.seal(message), self.max_frame)

    def send(self, message: OverlayMessage) -> int:
        """Send one authenticated message; returns the bytes written."""
        return self.send_raw(self.sealed(message))

    def send_many(self, messages: Iterable[OverlayMessage]) -> int:
        """Send many messages in one write (a burst); returns the bytes written."""
        return self.send_raw(b"".join(self.sealed(m) for m in messages))

    def send_raw(self, data: bytes) -> int:
        """Write bytes as they are (a broken frame, a replayed one...); raises ``OSError`` on a dead socket."""
        self.sock.sendall(data)
        self.bytes_out += len(data)
        return len(data)

    def try_send(self, message: OverlayMessage) -> bool:
        """``send`` that reports a connection the node closed as False instead of raising."""
        try:
            self.send(message)
        except OSError:
            self.closed_by_remote = True
            return False
        return True

    # ----- receiving ------------------------------------------------------

    def recv(self, timeout: float = 5.0) -> OverlayMessage | None:
        """The next authenticated message, or None on timeout or when the node hung up."""
        assert self.session is not None, "handshake first"
        try:
            frame = self._read_frame(timeout)
        except (TimeoutError, OverlayError):
            return None
        try:
            message = self.session.open(frame)[0]
        except XdrError:
            return None
        self.bytes_in_by_type[message.TYPE] += len(frame) + _LENGTH.size
        return message

    def read_for(self, seconds: float) -> list[OverlayMessage]:
        """Everything the node sends during ``seconds`` (stops early if it hangs up)."""
        return self.read_until(lambda _: False, seconds)

    def read_until(self, done: Callable[[OverlayMessage], bool], timeout: float) -> list[OverlayMessage]:
        """Read until ``done(message)`` holds for a message, the node hangs up, or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        got: list[OverlayMessage] = []
        while not self.closed_by_remote:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            message = self.recv(left)
            if message is None:
                continue
            got.append(message)
            if done(message):
                break
        return got

    def sync(self, timeout: float = 10.0) -> bool:
        """PING and read until the PONG: the node has handled everything sent before (it reads in order)."""
        nonce = int.from_bytes(os.urandom(8), "big")
        self.send(Ping(nonce))
        got = self.read_until(lambda m: isinstance(m, Pong) and m.nonce == nonce, timeout)
        return bool(got) and got[-1] == Pong(nonce)

    def wait_closed(self, timeout: float = 10.0) -> bool:
        """Read (and discard) until the node closes the connection; True if it did within ``timeout``."""
        self.read_for(timeout)
        return self.closed_by_remote

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> HostilePeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_frame(self, timeout: float | None = None) -> bytes:
        header = self._read_exactly(_LENGTH.size, timeout)
        (length,) = _LENGTH.unpack(header)
        if not 0 < length <= self.max_frame:
            raise OverlayError(f"node sent a frame of {length} bytes")
        return self._read_exactly(length, timeout)

    def _read_exactly(self, n: int, timeout: float | None) -> bytes:
        deadline = None if timeout is None else time.monotonic() + timeout
        while len(self._buffer) < n:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(max(65536, n - len(self._buffer)))
            except (ConnectionError, OSError) as exc:
                if isinstance(exc, TimeoutError):
                    raise
                chunk = b""
            if not chunk:
                self.closed_by_remote = True
                raise OverlayError("node closed the connection")
            self.bytes_in += len(chunk)
            self._buffer += chunk
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data
