"""The configuration file's shape: one pydantic v2 model per TOML section.

The models hold every rule that concerns one key or one section: strict TOML
types (``threshold = "3"`` is an error, not a coercion), ``extra="forbid"``
(a misspelt key is an error, with a suggestion: ``config_messages``), ranges,
and the shape of host names, keys and validator names. Rules between keys of
different sections, and everything that needs the file system or the
environment (the seed), are the resolver's (``config_resolve``).

The field names are the TOML keys, and the node keeps them: the daemon passes
``[overlay]`` to the overlay under the same names
(``scpd.node.overlay.settings.OverlaySettings``).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from scpd.base.types import PublicKey
from scpd.errors import KeyFormatError
from scpd.nodecore.messages import DEFAULT_MAX_MESSAGE_SIZE, MAX_OPAQUE
from scpd.nodecore.values import MAX_TX_SIZE
from scpd.operator.config_addresses import DEFAULT_PEER_PORT, parse_address, validate_host
from scpd.scp.driver import DEFAULT_TIMEOUT_INCREMENT, DEFAULT_TIMEOUT_INITIAL, MAX_TIMEOUT

__all__ = [
    "DEFAULT_HTTP_PORT",
    "MAX_NAME_LEN",
    "ConfigFile",
    "HttpSection",
    "IntakeSection",
    "LedgerSection",
    "LogSection",
    "MetricsSection",
    "NetworkSection",
    "NodeSection",
    "OverlaySection",
    "QuorumSetSection",
    "TimersSection",
    "TopQuorumSetSection",
    "ValidatorEntry",
]

DEFAULT_HTTP_PORT = 11626
MAX_NAME_LEN = 32

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_address(text: str) -> str:
    parse_address(text)
    return text


def _check_public_key(text: str) -> str:
    try:
        PublicKey.from_strkey(text)
    except KeyFormatError as exc:
        raise ValueError(str(exc)) from None
    return text


def _check_name(text: str) -> str:
    if len(text) > MAX_NAME_LEN or not _NAME_RE.match(text):
        raise ValueError(f"must be 1-{MAX_NAME_LEN} letters, digits, '_', '-' or '.', starting with a letter or digit")
    return text


# A ``host:port`` string, checked where it appears so errors name the element.
Address = Annotated[str, AfterValidator(_check_address)]


class _Section(BaseModel):
    """Common rules: strict TOML types, no unknown keys, immutable, finite floats."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False, hide_input_in_errors=True)


class NodeSection(_Section):
    """``[node]``: who this node is and where it keeps its state."""

    seed: SecretStr | None = None
    seed_file: str | None = Field(default=None, min_length=1)
    seed_env: str | None = None
    public_key: str | None = None
    name: str | None = None
    is_validator: bool = True
    data_dir: str = Field(default="data", min_length=1)

    @field_validator("public_key")
    @classmethod
    def _strkey(cls, value: str | None) -> str | None:
        return None if value is None else _check_public_key(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else _check_name(value)

    @field_validator("seed_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME_RE.match(value):
            raise ValueError("must be an environment variable name (letters, digits and _, not starting with a digit)")
        return value

    @model_validator(mode="after")
    def _one_seed_source(self) -> NodeSection:
        given = [k for k in ("seed", "seed_file", "seed_env") if getattr(self, k) is not None]
        if len(given) != 1:
            found = f" (found {', '.join(given)})" if given else ""
            raise ValueError(f"set exactly one of seed, seed_file, seed_env{found}")
        return self


class NetworkSection(_Section):
    """``[network]``: which network this node belongs to."""

    passphrase: str = Field(min_length=1)


class OverlaySection(_Section):
    """``[overlay]``: TCP connections to other nodes. Durations in seconds."""

    listen_address: str = "0.0.0.0"
    listen_port: int = Field(default=DEFAULT_PEER_PORT, ge=0, le=65535)
    peers: list[Address] = Field(default_factory=list)
    max_inbound_peers: int = Field(default=64, ge=0, le=10_000)
    target_outbound_peers: int = Field(default=8, ge=0, le=1_000)
    max_message_size: int = Field(default=DEFAULT_MAX_MESSAGE_SIZE, ge=4096, le=MAX_OPAQUE)
    handshake_timeout: float = Field(default=5.0, gt=0, le=600)
    keepalive_interval: float = Field(default=5.0, gt=0, le=3600)
    peer_timeout: float = Field(default=30.0, gt=0, le=3600)
    reconnect_initial: float = Field(default=1.0, gt=0, le=3600)
    reconnect_max: float = Field(default=10.0, gt=0, le=86_400)
    send_queue_size: int = Field(default=1000, ge=1, le=1_000_000)
    ban_duration: float = Field(default=600.0, ge=0, le=30 * 86_400)
    # -- Bounds on what a peer can make us spend (docs/security.md, "Resource limits"). --
    max_pending_handshakes: int = Field(default=32, ge=1, le=10_000)
    send_queue_bytes: int = Field(default=16 << 20, ge=64 << 10, le=4 << 30)
    answer_rate: int = Field(default=8 << 20, ge=0, le=1 << 30)
    answer_burst: int = Field(default=16 << 20, ge=4096, le=4 << 30)
    answer_ratio: float = Field(default=1.0, ge=0, le=2)
    answer_total_rate: int = Field(default=32 << 20, ge=0, le=4 << 30)
    answer_total_burst: int = Field(default=64 << 20, ge=4096, le=16 << 30)
    new_key_interval: float = Field(default=60.0, ge=0, le=86_400)

    @field_validator("listen_address")
    @classmethod
    def _host(cls, value: str) -> str:
        return validate_host(value)

    def with_room_for_two_messages(self) -> OverlaySection:
        """The section with its per-peer queue and answer bursts raised to two of the largest messages.

        A queue or a burst below that could never carry the largest message, so a
        lower value is raised rather than refused (docs/security.md, "Resource limits").
        """
        floor = 2 * self.max_message_size
        keys = ("send_queue_bytes", "answer_burst", "answer_total_burst")
        raised = {key: max(getattr(self, key), floor) for key in keys}
        return self.model_copy(update=raised)


class ValidatorEntry(_Section):
    """One ``[[validators]]`` entry: a validator this node knows about."""

    public_key: str
    name: str | None = None
    address: str | None = None
    organization: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("public_key")
    @classmethod
    def _strkey(cls, value: str) -> str:
        return _check_public_key(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else _check_name(value)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else _check_address(value)


class QuorumSetSection(_Section):
    """``[quorum_set]`` and each ``[[...inner_sets]]``: a k-of-n set."""

    threshold: int | None = Field(default=None, ge=1)
    threshold_percent: int | None = Field(default=None, ge=1, le=100)
    validators: list[str] = Field(default_factory=list)
    inner_sets: list[QuorumSetSection] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_threshold(self) -> QuorumSetSection:
        if (self.threshold is None) == (self.threshold_percent is None):
            raise ValueError("set exactly one of threshold, threshold_percent")
        return self


class TopQuorumSetSection(QuorumSetSection):
    """``[quorum_set]`` itself: a k-of-n set, plus the operator's waiver of the safety rules."""

    unsafe_quorum: bool = False


class TimersSection(_Section):
    """``[timers]``: consensus cadence and timeouts, in seconds."""

    slot_interval: float = Field(default=5.0, gt=0, le=3600)
    nomination_timeout_initial: float = Field(default=DEFAULT_TIMEOUT_INITIAL, gt=0, le=MAX_TIMEOUT)
    nomination_timeout_increment: float = Field(default=DEFAULT_TIMEOUT_INCREMENT, ge=0, le=MAX_TIMEOUT)
    ballot_timeout_initial: float = Field(default=DEFAULT_TIMEOUT_INITIAL, gt=0, le=MAX_TIMEOUT)
    ballot_timeout_increment: float = Field(default=DEFAULT_TIMEOUT_INCREMENT, ge=0, le=MAX_TIMEOUT)
    max_timeout: float = Field(default=MAX_TIMEOUT, gt=0, le=86_400)


class LedgerSection(_Section):
    """``[ledger]``: what one slot may carry. Sizes in bytes, drift in seconds."""

    max_tx_count: int = Field(default=1000, ge=1, le=1_000_000)
    max_tx_set_size: int = Field(default=1 << 20, ge=1024, le=128 << 20)
    max_tx_size: int = Field(default=64 << 10, ge=1, le=MAX_TX_SIZE)
    max_close_time_drift: float = Field(default=60.0, gt=0, le=86_400)
    max_queue_txs: int = Field(default=100_000, ge=1, le=10_000_000)
    max_queue_bytes: int = Field(default=64 << 20, ge=1024, le=4 << 30)
    # -- Shares of the tx queue (docs/security.md, "Resource limits"). --
    peer_queue_share: float = Field(default=0.5, gt=0, le=1)
    client_queue_reserve: float = Field(default=0.25, ge=0, lt=1)
    record_envelopes: bool = False


class IntakeSection(_Section):
    """How much SCP intake may hold for others (docs/security.md): bounds on what peers can make us keep."""

    max_slots_ahead: int = Field(default=12, ge=1, le=1000)
    max_waiting_envelopes: int = Field(default=1000, ge=1, le=1_000_000)
    pending_per_node: int = Field(default=64, ge=1, le=1_000_000)
    pending_per_node_bytes: int = Field(default=1 << 20, ge=4096, le=1 << 30)
    pending_total: int = Field(default=4096, ge=1, le=10_000_000)
    pending_total_bytes: int = Field(default=16 << 20, ge=4096, le=4 << 30)
    signature_cache: int = Field(default=65_536, ge=1, le=10_000_000)
    max_trusted_nodes: int = Field(default=10_000, ge=1, le=1_000_000)


class HttpSection(_Section):
    """``[http]``: the admin HTTP server (status, and /metrics by default)."""

    enabled: bool = True
    address: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_HTTP_PORT, ge=0, le=65535)

    @field_validator("address")
    @classmethod
    def _host(cls, value: str) -> str:
        return validate_host(value)


class MetricsSection(_Section):
    """``[metrics]``: Prometheus /metrics, on the admin server unless ``port`` is set."""

    enabled: bool = True
    address: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=0, le=65535)

    @field_validator("address")
    @classmethod
    def _host(cls, value: str) -> str:
        return validate_host(value)


class LogSection(_Section):
    """``[log]``: ``auto`` is console on a terminal, JSON otherwise."""

    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class ConfigFile(_Section):
    """The whole file, exactly as written (before resolution)."""

    node: NodeSection
    network: NetworkSection
    overlay: OverlaySection = Field(default_factory=OverlaySection)
    validators: list[ValidatorEntry] = Field(default_factory=list)
    quorum_set: TopQuorumSetSection
    timers: TimersSection = Field(default_factory=TimersSection)
    ledger: LedgerSection = Field(default_factory=LedgerSection)
    intake: IntakeSection = Field(default_factory=IntakeSection)
    http: HttpSection = Field(default_factory=HttpSection)
    metrics: MetricsSection = Field(default_factory=MetricsSection)
    log: LogSection = Field(default_factory=LogSection)
