"""The resolved configuration: ``NodeConfig``, what the daemon and the CLI consume.

Immutable and checked: every name is a key, every address parsed, every path
absolute, the quorum set built and sane. Only ``scpd.operator.config`` makes
one (``load_config``); the seed is inside its ``Keypair``, whose repr shows the
public key only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from scpd.base.keys import Keypair
from scpd.base.types import NodeID, SCPQuorumSet
from scpd.operator.config_addresses import PeerAddress
from scpd.operator.config_sections import IntakeSection, LedgerSection, LogSection, OverlaySection, TimersSection

__all__ = ["ConfigWarning", "KnownValidator", "NodeConfig"]


@dataclass(frozen=True, slots=True)
class ConfigWarning:
    """Something that does not stop the node but that an operator should fix."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" if self.key else self.message


@dataclass(frozen=True, slots=True)
class KnownValidator:
    """A ``[[validators]]`` entry, resolved."""

    node_id: NodeID
    name: str | None = None
    address: PeerAddress | None = None
    organization: str | None = None


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Everything the daemon needs, checked and immutable. Durations in seconds.

    ``http_listen`` is None when the admin server is off; ``metrics_listen`` is
    a separate listener for /metrics, or None to serve /metrics on the admin
    server (when ``metrics_enabled``). ``peers`` are always dialed;
    ``known_addresses`` are the other validators' addresses, candidates when
    the overlay wants more connections.
    """

    path: Path
    keypair: Keypair
    is_validator: bool
    network_passphrase: str
    network_id: bytes
    quorum_set: SCPQuorumSet
    quorum_set_hash: bytes
    validators: tuple[KnownValidator, ...]
    listen: PeerAddress
    peers: tuple[PeerAddress, ...]
    known_addresses: tuple[PeerAddress, ...]
    data_dir: Path
    overlay: OverlaySection
    timers: TimersSection
    ledger: LedgerSection
    intake: IntakeSection
    http_listen: PeerAddress | None
    metrics_enabled: bool
    metrics_listen: PeerAddress | None
    log: LogSection
    warnings: tuple[ConfigWarning, ...] = ()
    _names: Mapping[NodeID, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def node_id(self) -> NodeID:
        return self.keypair.public_key

    def name_of(self, node: NodeID) -> str | None:
        """The ``[[validators]]`` name of ``node``, if it has one."""
        return self._names.get(node)

    def label(self, node: NodeID) -> str:
        """``name (G...)`` when the node has a name, else its strkey."""
        name = self._names.get(node)
        return f"{name} ({node})" if name else str(node)
