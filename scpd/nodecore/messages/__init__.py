"""The overlay messages: what peers say to each other, in XDR.

Theory of operation: every message is a small frozen dataclass with a
``TYPE`` discriminant, ``pack`` and ``unpack``, registered in one union
(``union``: the discriminants, the registry and the codec). The kinds live by
concept: ``peering`` (handshake and peer management: HELLO, AUTH, ERROR,
PEERS, NEIGHBORS, PING/PONG) and ``traffic`` (consensus traffic: SCP
envelopes, quorum sets, tx sets, transactions and the requests for them).
Importing this package registers every kind, so ``decode_message`` knows
them all.

Decoding is strict and bounded: every array and string has a maximum, checked
before anything is allocated, and trailing bytes are refused. The numbering of
the types shared with Stellar's overlay follows ``Stellar-overlay.x``; PING and
PONG (keep-alive), TRANSACTIONS (a batch) and NEIGHBORS (relay hints) are ours,
and ``CATCHUP_RANGE`` is left for catch-up.
"""

from scpd.nodecore.messages.peering import (
    MAX_ERROR_TEXT,
    MAX_HOST_LENGTH,
    MAX_NEIGHBORS,
    MAX_PEER_ADDRESSES,
    NONCE_SIZE,
    Auth,
    ErrorCode,
    ErrorMessage,
    Hello,
    Neighbors,
    PeerAddress,
    Peers,
    Ping,
    Pong,
)
from scpd.nodecore.messages.traffic import (
    ANSWERED_TYPES,
    FLOODED_TYPES,
    DontHave,
    GetQuorumSet,
    GetScpState,
    GetTxSet,
    QuorumSetMessage,
    ScpMessage,
    Transaction,
    TransactionBatch,
    TxSetMessage,
    encode_transaction_entries,
    encode_transactions_message,
)
from scpd.nodecore.messages.union import (
    CATCHUP_RANGE,
    DEFAULT_MAX_MESSAGE_SIZE,
    MAX_OPAQUE,
    MessageType,
    OverlayMessage,
    decode_message,
    encode_message,
    message_hash,
    register_message,
)

__all__ = [
    "ANSWERED_TYPES",
    "CATCHUP_RANGE",
    "FLOODED_TYPES",
    "MAX_ERROR_TEXT",
    "MAX_HOST_LENGTH",
    "MAX_NEIGHBORS",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MAX_OPAQUE",
    "MAX_PEER_ADDRESSES",
    "NONCE_SIZE",
    "Auth",
    "DontHave",
    "ErrorCode",
    "ErrorMessage",
    "GetQuorumSet",
    "GetScpState",
    "GetTxSet",
    "Hello",
    "MessageType",
    "Neighbors",
    "OverlayMessage",
    "PeerAddress",
    "Peers",
    "Ping",
    "Pong",
    "QuorumSetMessage",
    "ScpMessage",
    "Transaction",
    "TransactionBatch",
    "TxSetMessage",
    "decode_message",
    "encode_message",
    "encode_transaction_entries",
    "encode_transactions_message",
    "message_hash",
    "register_message",
]
