"""Authenticated messages after the handshake: sequence numbers and HMACs.

Every frame after the HELLO exchange is ``uint64 sequence || message ||
opaque mac[32]`` with ``mac = HMAC-SHA256(direction key, sequence || message)``.
Each direction has its own key and its own counter, starting at 0 (the AUTH
message) and going up by one per message. The receiver checks the MAC first,
then that the sequence is exactly the next one it expects, so a stranger on
the path can neither forge nor replay nor reorder nor drop a message unnoticed.
The MAC and sequence are checked before the message is decoded: only authentic
bytes reach the XDR decoder, and a malformed but authentic message is the
peer's own fault (the caller scores it) while the stream stays in step.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from scpd.errors import OverlayError
from scpd.nodecore.messages import OverlayMessage, decode_message, encode_message

__all__ = ["MAC_SIZE", "AuthenticationError", "Session"]

MAC_SIZE = 32
_SEQ = struct.Struct(">Q")
_MIN_FRAME = _SEQ.size + 4 + MAC_SIZE


class AuthenticationError(OverlayError):
    """A frame whose MAC or sequence number is wrong: the stream cannot be trusted."""


class Session:
    """Both directions of one authenticated connection (keys and counters)."""

    __slots__ = ("_recv_key", "_recv_seq", "_send_key", "_send_seq")

    def __init__(self, send_key: bytes, recv_key: bytes) -> None:
        self._send_key = send_key
        self._recv_key = recv_key
        self._send_seq = 0
        self._recv_seq = 0

    @property
    def next_send_sequence(self) -> int:
        return self._send_seq

    @property
    def next_receive_sequence(self) -> int:
        return self._recv_seq

    def seal(self, message: OverlayMessage) -> bytes:
        return self.seal_encoded(encode_message(message))

    def seal_encoded(self, encoded: bytes) -> bytes:
        """Wrap an already encoded message; each call uses the next sequence number."""
        head = _SEQ.pack(self._send_seq) + encoded
        self._send_seq += 1
        return head + hmac.digest(self._send_key, head, hashlib.sha256)

    def open(self, frame: bytes) -> tuple[OverlayMessage, bytes]:
        """Authenticate and decode one frame; returns the message and its encoding.

        Raises ``AuthenticationError`` for a bad MAC or sequence number and
        ``XdrError`` for an authentic frame whose message does not decode.
        """
        encoded = self.authenticate(frame)
        return decode_message(encoded), encoded

    def authenticate(self, frame: bytes) -> bytes:
        """Check one frame's MAC and sequence number and return the message's encoding, not decoded.

        Every frame pays this, a known flooded copy too (docs/protocol.md): the
        sequence number is what keeps the stream in step, so skipping a frame's
        check would let a stranger on the path insert or replay frames.
        Raises ``AuthenticationError``.
        """
        if len(frame) < _MIN_FRAME:
            raise AuthenticationError(f"authenticated frame of {len(frame)} bytes is too short")
        mac_at = len(frame) - MAC_SIZE
        if not hmac.compare_digest(frame[mac_at:], hmac.digest(self._recv_key, frame[:mac_at], hashlib.sha256)):
            raise AuthenticationError(f"bad MAC on message {self._recv_seq}")
        (seq,) = _SEQ.unpack_from(frame)
        if seq != self._recv_seq:
            what = "replayed" if seq < self._recv_seq else "out of order"
            raise AuthenticationError(f"message {what}: sequence {seq}, expected {self._recv_seq}")
        self._recv_seq += 1
        return frame[_SEQ.size : mac_at]
