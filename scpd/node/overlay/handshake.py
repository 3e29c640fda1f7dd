"""The authenticated handshake: HELLO both ways, then AUTH both ways.

Theory of operation (docs/protocol.md has the byte-level version):

1. Each side sends HELLO in a plain frame: overlay version, network id
   (SHA-256 of the passphrase), its node public key, a fresh X25519 ephemeral
   public key, a fresh 32-byte nonce and its listening port. The initiator
   sends first; the responder answers only after checking the initiator's
   HELLO, so a peer on another network (or ourselves) is refused with an ERROR
   before any key material is spent on it.
2. Both derive per-direction session keys with HKDF-SHA256: the input key is
   the X25519 shared secret, the salt is both nonces, and the info binds the
   direction, the network and both ephemeral keys. Fresh ephemerals and nonces
   on both sides make every session's keys unique.
3. Each side sends AUTH as its first authenticated message (sequence 0, with
   an HMAC under its send key): an Ed25519 signature by its node key over a
   transcript of both HELLOs and its role. Verifying it proves the peer holds
   the key it announced and saw the same HELLOs (our nonce, its ephemeral key);
   the MAC proves it derived the same session keys.

``Handshake`` is the sans-I/O state of one side; ``perform_handshake`` drives
it over asyncio streams. Tests use the same pieces to act as broken peers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions
import nacl.public

from scpd.base.keys import Keypair, verify_signature
from scpd.base.types import PublicKey
from scpd.errors import OverlayError, XdrError
from scpd.node.overlay.framing import encode_frame, read_frame
from scpd.node.overlay.session import Session
from scpd.nodecore.messages import (
    DEFAULT_MAX_MESSAGE_SIZE,
    NONCE_SIZE,
    Auth,
    ErrorCode,
    ErrorMessage,
    Hello,
    OverlayMessage,
    decode_message,
    encode_message,
)

__all__ = [
    "OVERLAY_VERSION",
    "Handshake",
    "HandshakeError",
    "HandshakeResult",
    "auth_transcript",
    "derive_session_keys",
    "perform_handshake",
]

OVERLAY_VERSION = 1
_AUTH_TAG = b"scpd overlay auth v1\x00"
_KEY_TAG = b"scpd overlay keys v1\x00"


class HandshakeError(OverlayError):
    """The handshake failed; ``code`` is what we tell the peer (or what it told us)."""

    def __init__(self, message: str, code: ErrorCode = ErrorCode.AUTH, *, from_peer: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.from_peer = from_peer


def hkdf_sha256(salt: bytes, ikm: bytes, info: bytes, length: int = 32) -> bytes:
    """RFC 5869 HKDF with SHA-256 (extract, then expand)."""
    prk = hmac.digest(salt, ikm, hashlib.sha256)
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), hashlib.sha256)
        out += block
        counter += 1
    return out[:length]


def derive_session_keys(
    shared_secret: bytes, network_id: bytes, initiator: Hello, responder: Hello
) -> tuple[bytes, bytes]:
    """Return (initiator-to-responder key, responder-to-initiator key)."""
    salt = initiator.nonce + responder.nonce
    context = network_id + initiator.ephemeral_key + responder.ephemeral_key
    i2r = hkdf_sha256(salt, shared_secret, _KEY_TAG + b"initiator to responder" + context)
    r2i = hkdf_sha256(salt, shared_secret, _KEY_TAG + b"responder to initiator" + context)
    return i2r, r2i


def auth_transcript(initiator_hello: bytes, responder_hello: bytes, signer_is_initiator: bool) -> bytes:
    """What a side signs: both HELLOs as sent (so the peer's nonce and our ephemeral key) and our role."""
    role = b"I" if signer_is_initiator else b"R"
    return _AUTH_TAG + role + hashlib.sha256(initiator_hello + responder_hello).digest()


@dataclass(frozen=True, slots=True)
class HandshakeResult:
    peer_hello: Hello
    session: Session

    @property
    def node_id(self) -> PublicKey:
        return self.peer_hello.node_id


class Handshake:
    """One side's handshake state; ``local_hello`` may be replaced before it is sent (tests)."""

    def __init__(self, keypair: Keypair, network_id: bytes, listening_port: int, initiator: bool) -> None:
        self.keypair = keypair
        self.network_id = network_id
        self.initiator = initiator
        self._ephemeral = nacl.public.PrivateKey.generate()
        self.local_hello = Hello(
            version=OVERLAY_VERSION,
            network_id=network_id,
            node_id=keypair.public_key,
            ephemeral_key=bytes(self._ephemeral.public_key),
            nonce=os.urandom(NONCE_SIZE),
            listening_port=listening_port,
        )
        self.peer_hello: Hello | None = None
        self._peer_hello_bytes = b""
        self._session: Session | None = None

    def receive_hello(self, hello: Hello) -> None:
        """Check the peer's HELLO; raises ``HandshakeError`` with the code to send back."""
        if hello.network_id != self.network_id:
            raise HandshakeError("peer is on another network (network id differs)", ErrorCode.WRONG_NETWORK)
        if hello.version != OVERLAY_VERSION:
            raise HandshakeError(
                f"peer speaks overlay version {hello.version}, not {OVERLAY_VERSION}", ErrorCode.VERSION
            )
        if hello.node_id == self.keypair.public_key:
            raise HandshakeError("connection to self", ErrorCode.SELF)
        if hello.nonce == self.local_hello.nonce or hello.ephemeral_key == self.local_hello.ephemeral_key:
            raise HandshakeError("peer echoed our nonce or ephemeral key")
        self.peer_hello = hello
        self._peer_hello_bytes = encode_message(hello)

    def _hellos(self) -> tuple[Hello, Hello, bytes, bytes]:
        if self.peer_hello is None:
            raise HandshakeError("no HELLO from the peer yet")
        mine = encode_message(self.local_hello)
        if self.initiator:
            return self.local_hello, self.peer_hello, mine, self._peer_hello_bytes
        return self.peer_hello, self.local_hello, self._peer_hello_bytes, mine

    def session(self) -> Session:
        """Derive (once) the session keys from the X25519 exchange."""
        if self._session is None:
            init, resp, _, _ = self._hellos()
            peer = resp if self.initiator else init
            try:
                shared = nacl.bindings.crypto_scalarmult(bytes(self._ephemeral), peer.ephemeral_key)
            except nacl.exceptions.CryptoError:
                raise HandshakeError("peer's ephemeral key is a low-order point") from None
            if shared == bytes(len(shared)):
                raise HandshakeError("peer's ephemeral key is a low-order point")
            i2r, r2i = derive_session_keys(shared, self.network_id, init, resp)
            self._session = Session(i2r, r2i) if self.initiator else Session(r2i, i2r)
        return self._session

    def auth_message(self) -> Auth:
        _, _, init_bytes, resp_bytes = self._hellos()
        return Auth(self.keypair.sign(auth_transcript(init_bytes, resp_bytes, self.initiator)))

    def verify_auth(self, auth: Auth) -> None:
        _, _, init_bytes, resp_bytes = self._hellos()
        assert self.peer_hello is not None
        transcript = auth_transcript(init_bytes, resp_bytes, not self.initiator)
        if not verify_signature(self.peer_hello.node_id, transcript, auth.signature):
            raise HandshakeError(f"AUTH signature does not match the announced key {self.peer_hello.node_id}")


async def _send(writer: asyncio.StreamWriter, body: bytes, max_message_size: int) -> None:
    writer.write(encode_frame(body, max_message_size))
    await writer.drain()


async def _send_error_quietly(
    writer: asyncio.StreamWriter, error: HandshakeError, session: Session | None, max_message_size: int
) -> None:
    """Tell the peer why we hang up; it may already be gone, which is fine."""
    message = ErrorMessage(error.code, str(error))
    body = session.seal(message) if session is not None else encode_message(message)
    with contextlib.suppress(ConnectionError, OSError, OverlayError):
        await _send(writer, body, max_message_size)


def _refusal(message: OverlayMessage, expected: str) -> HandshakeError:
    if isinstance(message, ErrorMessage):
        return HandshakeError(f"peer refused: {message.text}", message.code, from_peer=True)
    return HandshakeError(f"expected {expected}, got message type {message.TYPE}", ErrorCode.DATA)


async def perform_handshake(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    handshake: Handshake,
    *,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    check_hello: Callable[[Hello], None] | None = None,
) -> HandshakeResult:
    """Run the handshake over a fresh connection; raises ``OverlayError`` on any failure.

    ``check_hello`` lets the overlay refuse a peer by its HELLO (banned node,
    too many connections) by raising ``HandshakeError``. The caller owns the
    timeout and closing the connection.
    """
    session: Session | None = None
    try:
        if handshake.initiator:
            await _send(writer, encode_message(handshake.local_hello), max_message_size)
        try:
            hello = decode_message(await read_frame(reader, max_message_size))
        except XdrError as exc:
            raise HandshakeError(f"malformed HELLO: {exc}", ErrorCode.DATA) from None
        if not isinstance(hello, Hello):
            raise _refusal(hello, "HELLO")
        handshake.receive_hello(hello)
        if check_hello is not None:
            check_hello(hello)
        if not handshake.initiator:
            await _send(writer, encode_message(handshake.local_hello), max_message_size)
        session = handshake.session()
        await _send(writer, session.seal(handshake.auth_message()), max_message_size)
        try:
            auth, _ = session.open(await read_frame(reader, max_message_size))
        except XdrError as exc:
            raise HandshakeError(f"malformed AUTH: {exc}", ErrorCode.DATA) from None
        if not isinstance(auth, Auth):
            raise _refusal(auth, "AUTH")
        handshake.verify_auth(auth)
    except HandshakeError as exc:
        if not exc.from_peer:
            await _send_error_quietly(writer, exc, session, max_message_size)
        raise
    return HandshakeResult(hello, session)
