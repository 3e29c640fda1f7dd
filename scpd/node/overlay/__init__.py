"""The overlay: authenticated TCP connections between validators, and flooding.

Modules, bottom up (the XDR message union is ``scpd.nodecore.messages``): ``framing``
(length-prefixed frames), ``session`` (sequence numbers and HMACs),
``handshake`` (HELLO/AUTH and key derivation), ``peer`` (one connection's
tasks and queue), ``floodgate``, ``backoff``, ``bans``, ``budget`` and
``requests`` (small policies); ``settings`` (the operator's ``[overlay]``
knobs under the file's names), ``stats`` (counters),
``handler`` (the consumer's ``Verdict``), ``addresses`` (address book and
dial states), ``admission`` (who becomes a peer), ``relay`` (flooding and
NEIGHBORS), ``answers`` (fetches and answer budgets); and ``overlay`` (the
manager the herder drives, which wires them together).
"""

from scpd.node.overlay.overlay import Handler, Overlay, OverlayStats, PeerWatcher, Verdict
from scpd.node.overlay.peer import Peer
from scpd.node.overlay.settings import OverlaySettings
from scpd.nodecore.messages import OverlayMessage, PeerAddress

__all__ = [
    "Handler",
    "Overlay",
    "OverlayMessage",
    "OverlaySettings",
    "OverlayStats",
    "Peer",
    "PeerAddress",
    "PeerWatcher",
    "Verdict",
]
