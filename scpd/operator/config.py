"""Node configuration: the TOML file an operator writes, checked and resolved.

Theory of operation
-------------------
``load_config(path)`` is the only reader of a node's configuration file. It
works in three steps, and each refuses bad input with one ``ConfigError`` line
of the form ``FILE: key.path: problem`` (no traceback, no pydantic dump):

1. **Read and parse** the file with ``tomllib`` (missing file, unreadable
   file, TOML syntax error).
2. **Validate the shape** with the pydantic v2 models below: strict types
   (TOML already has types, so ``threshold = "3"`` is an error, not a
   coercion), ``extra="forbid"`` (a misspelt key is an error, with a
   suggestion), ranges. ``_translate`` turns pydantic's ``ValidationError``
   into the one line: its first error, plus ``(and N more)``.
3. **Resolve**: load the node seed, turn validator names into keys, build the
   ``SCPQuorumSet`` (``threshold_percent`` rounded up), run the base layer's
   sanity rules on it, and check the keys that constrain each other.

The result is ``NodeConfig``, an immutable value the daemon consumes; nothing
else in scpd parses the file. Problems that do not stop a node but that an
operator should fix (a validator missing from its own quorum set, a seed file
readable by others, a threshold that is not a strict majority) are returned as
``NodeConfig.warnings``; ``strict=True`` (``scpd check-config --strict``)
turns them into errors.

The seed is a secret. It is held as ``SecretStr`` while validating, goes
straight into a ``Keypair`` (whose repr shows only the public key), and no
error message ever quotes it or any value of a key whose name starts with
``seed``.

Key paths in messages count array elements from 0:
``quorum_set.inner_sets[1].threshold`` is the second inner set's threshold.
Relative paths in the file (``node.seed_file``, ``node.data_dir``) are relative
to the directory holding the configuration file, not to the working directory,
so a node behaves the same whoever starts it.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
import stat
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from scpd.analysis.local import check_local_quorum
from scpd.base import quorum
from scpd.base.keys import Keypair, network_id
from scpd.base.types import MAX_QSET_DEPTH, MAX_QSET_NODES, NodeID, PublicKey, SCPQuorumSet
from scpd.errors import ConfigError, KeyFormatError
from scpd.nodecore.messages import DEFAULT_MAX_MESSAGE_SIZE, MAX_OPAQUE
from scpd.nodecore.values import MAX_TX_SIZE, TxSetLimits, max_tx_set_xdr_size
from scpd.operator.localnet_config import DEFAULT_LOCALNET_PASSPHRASE
from scpd.scp.driver import DEFAULT_TIMEOUT_INCREMENT, DEFAULT_TIMEOUT_INITIAL, MAX_TIMEOUT
from scpd.scp.nomination import possible_leaders

__all__ = [
    "DEFAULT_HTTP_PORT",
    "DEFAULT_PEER_PORT",
    "MESSAGE_OVERHEAD",
    "ConfigFile",
    "ConfigWarning",
    "HttpSection",
    "IntakeSection",
    "KnownValidator",
    "LedgerSection",
    "LogSection",
    "MetricsSection",
    "NetworkSection",
    "NodeConfig",
    "NodeSection",
    "OverlaySection",
    "PeerAddress",
    "QuorumSetSection",
    "TopQuorumSetSection",
    "TimersSection",
    "ValidatorEntry",
    "format_quorum_set",
    "load_config",
    "parse_address",
    "quorum_intersection_warnings",
    "quorum_safety_problems",
    "redact_secrets",
]

DEFAULT_PEER_PORT = 11625
DEFAULT_HTTP_PORT = 11626
# Room a network message needs beyond the largest transaction set it carries
# (message type, slot, hashes, framing); see overlay.max_message_size.
MESSAGE_OVERHEAD = 1024
# A configuration or seed file larger than this is certainly a mistake (for
# example a path pointing at a device), so we refuse it rather than read it.
MAX_CONFIG_BYTES = 1 << 20
MAX_SEED_FILE_BYTES = 1024
MAX_NAME_LEN = 32

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$"
)
_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::"})
# Public keys of the seeds printed in scpd's example configurations: anyone
# can sign as them, so they are refused except on the localnet passphrase.
PUBLISHED_EXAMPLE_KEYS = {
    "GD55JX6T42NMGL352ZHAGOSHA6RJ3JYYFIQ56YVYKX3P33YRZ2ANI7ZL": "config/validator.toml",
    "GB26GGLNLWUWJMPLEDGRNOGILBQOVTFP4NW77LHDRXP7KWOKXJKJ67O6": "config/watcher.toml",
}
# A seed is 'S' and 55 more base32 characters; also catch truncated or
# lower-cased copies. Legitimate values this long and shaped like that do not
# occur in a configuration (public keys start with G).
_SEED_LIKE = re.compile(r"(?<![A-Za-z0-9])[Ss][A-Za-z2-7]{19,}")


# -- addresses ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerAddress:
    """A TCP endpoint: a host name or IP literal, and a port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def validate_host(text: str) -> str:
    """Accept an IPv4/IPv6 literal or a DNS name; raise ValueError otherwise."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if not _HOSTNAME_RE.match(text):
            raise ValueError(f"{text!r} is not a host name or IP address") from None
    return text


def parse_address(text: str, *, allow_port_zero: bool = False) -> PeerAddress:
    """Parse ``host:port`` (IPv6 as ``[::1]:11625``); raise ValueError if malformed."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"{text!r} is not host:port (IPv6 is written [::1]:{DEFAULT_PEER_PORT})")
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} is not an IPv6 address") from None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f"{text!r} is not host:port")
        if ":" in host:
            raise ValueError(f"{text!r}: write an IPv6 address in brackets, as [::1]:{DEFAULT_PEER_PORT}")
        validate_host(host)
    if not port_text.isascii() or not port_text.isdigit():
        raise ValueError(f"{text!r}: port {port_text!r} is not a number")
    port = int(port_text)
    low = 0 if allow_port_zero else 1
    if not low <= port <= 65535:
        raise ValueError(f"{text!r}: port {port} is out of range ({low}..65535)")
    return PeerAddress(host, port)


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


# -- the file's shape (pydantic v2) ------------------------------------------


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


# -- the resolved configuration ---------------------------------------------


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


# -- loading -----------------------------------------------------------------


def load_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None, strict: bool = False
) -> NodeConfig:
    """Read, validate and resolve a node configuration, or raise ConfigError.

    ``environ`` (default ``os.environ``) is where ``node.seed_env`` is looked
    up. With ``strict``, any warning is an error too.
    """
    source = Path(path)
    label = str(path)
    try:
        cfg = _load(source, label, os.environ if environ is None else environ)
    except ConfigError as exc:
        raise ConfigError(redact_secrets(str(exc))) from None
    found = tuple(
        ConfigWarning(w.key, redact_secrets(w.message)) for w in cfg.warnings + tuple(quorum_intersection_warnings(cfg))
    )
    if strict and found:
        raise ConfigError(f"{label}: {'; '.join(str(w) for w in found)}")
    return dataclasses.replace(cfg, warnings=found)


def redact_secrets(text: str) -> str:
    """Hide anything shaped like a seed strkey.

    The loader never quotes ``node.seed``, but an operator may paste a seed
    where another value belongs (``seed_env = "S..."``, a file name, a log
    level) and we do quote those; this is the last line of defence.
    """
    return _SEED_LIKE.sub("S<redacted>", text)


def _load(source: Path, label: str, environ: Mapping[str, str]) -> NodeConfig:
    raw = _read_toml(source, label)
    try:
        parsed = ConfigFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{label}: {_translate(exc)}") from None
    try:
        return _Resolver(source, environ).resolve(parsed)
    except _Problem as problem:
        raise ConfigError(f"{label}: {problem}") from None


def quorum_intersection_warnings(cfg: NodeConfig) -> list[ConfigWarning]:
    """The quorum analysis of this node's configuration, as warnings on ``quorum_set``.

    A configuration only knows its own quorum set, so the check assumes every
    validator in it uses the same set (the usual symmetric deployment;
    ``scpd quorum analyze`` checks a whole network with everyone's real
    sets). It warns when two disjoint quorums exist, when the node is in no
    quorum, and when a single node, or a single organisation (the
    ``organization`` of ``[[validators]]`` entries), failing halts this one. Warnings are
    printed by ``check-config`` and logged by the daemon at start;
    ``--strict`` refuses the configuration.
    """
    orgs = {v.node_id: v.organization for v in cfg.validators if v.organization is not None}
    report = check_local_quorum(cfg.node_id, cfg.quorum_set, {}, orgs=orgs, unknown_like_local=True)
    return [ConfigWarning("quorum_set", problem) for problem in report.problems(cfg.label)]


def _read_toml(source: Path, label: str) -> dict[str, Any]:
    try:
        with source.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{label}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{label}: is a directory, not a configuration file") from None
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{label}: larger than {MAX_CONFIG_BYTES} bytes, not a configuration file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{label}: not UTF-8 text (byte {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{label}: TOML syntax error: {exc}") from None


# -- pydantic errors to one line ---------------------------------------------

_TOML_TYPES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a float",
    bool: "a boolean",
    list: "an array",
    dict: "a table",
}
_EXPECTED = {
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "a boolean (true or false)",
    "list_type": "an array",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "dict_type": "a table",
}
_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
_SECRET_PREFIX = "seed"
# Errors listed in one message; a file with more is not worth reading further.
MAX_ERRORS_SHOWN = 20


def format_key_path(loc: Sequence[int | str]) -> str:
    """``('quorum_set', 'inner_sets', 1, 'threshold')`` -> ``quorum_set.inner_sets[1].threshold``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _translate(exc: ValidationError) -> str:
    """Every error as ``key.path: problem``, joined in one line.

    A missing key explained by a misspelling beside it (``[quorumset]``
    where ``[quorum_set]`` is required) is said once, at the misspelling,
    with its suggestion.
    """
    errors = exc.errors()
    suggested = {
        (*err["loc"][:-1], suggestion)
        for err in errors
        if err["type"] == "extra_forbidden" and (suggestion := _closest_field(err["loc"])) is not None
    }
    shown = [err for err in errors if not (err["type"] == "missing" and tuple(err["loc"]) in suggested)]
    problems = []
    for err in shown[:MAX_ERRORS_SHOWN]:
        key = format_key_path(err["loc"])
        problems.append(f"{key}: {_describe(err)}" if key else _describe(err))
    more = f" (and {len(shown) - MAX_ERRORS_SHOWN} more)" if len(shown) > MAX_ERRORS_SHOWN else ""
    return "; ".join(problems) + more


def _type_name(value: object) -> str:
    for kind, name in _TOML_TYPES.items():
        if type(value) is kind:
            return name
    return f"a {type(value).__name__}"


def _shown(err: ErrorDetails) -> str:
    """``, got X`` for a public scalar value; nothing for secrets or big values."""
    names = [p for p in err["loc"] if isinstance(p, str)]
    if names and names[-1].startswith(_SECRET_PREFIX):
        return ""
    value = err.get("input")
    if isinstance(value, bool):
        return f", got {str(value).lower()}"
    if isinstance(value, int | float):
        return f", got {value}"
    if isinstance(value, str) and len(value) <= 60:
        return f", got {value!r}"
    return ""


def _describe(err: ErrorDetails) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        return _unknown(err)
    if kind == "missing":
        return "required section is missing" if _is_section(err["loc"]) else "required key is missing"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_type_name(err.get('input'))}"
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return f"must be {_BOUNDS[kind]} {bound}{_shown(err)}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "finite_number":
        return "must be a finite number (not inf or nan)"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    msg = err["msg"]
    if msg.startswith("Input should be "):
        msg = "must be " + msg.removeprefix("Input should be ")
    return msg + _shown(err)


def _annotation_at(loc: Sequence[int | str]) -> Any:
    """The declared type at ``loc`` (walking models and lists), or None."""
    current: Any = ConfigFile
    for part in loc:
        current = _unwrap_optional(current)
        if isinstance(part, int):
            if typing.get_origin(current) is not list:
                return None
            current = typing.get_args(current)[0]
        else:
            if not (isinstance(current, type) and issubclass(current, BaseModel)):
                return None
            info = current.model_fields.get(part)
            if info is None:
                return None
            current = info.annotation
    return _unwrap_optional(current)


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _is_section(loc: Sequence[int | str]) -> bool:
    tp = _annotation_at(loc)
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _closest_field(loc: Sequence[int | str]) -> str | None:
    """The declared key closest to the unknown one at ``loc``, if one is close."""
    parent = _annotation_at(loc[:-1])
    if not (isinstance(parent, type) and issubclass(parent, BaseModel)) or not isinstance(loc[-1], str):
        return None
    close = difflib.get_close_matches(loc[-1], list(parent.model_fields), n=1, cutoff=0.6)
    return close[0] if close else None


def _unknown(err: ErrorDetails) -> str:
    """``unknown key`` or ``unknown section``, with a did-you-mean when a declared one is close."""
    close = _closest_field(err["loc"])
    value = err.get("input")
    if isinstance(value, dict) or (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)):
        # A table ([name]) or an array of tables ([[name]]): suggest it written the same way.
        left, right = ("[", "]") if isinstance(value, dict) else ("[[", "]]")
        where = format_key_path([*err["loc"][:-1], close]) if close else ""
        return "unknown section" + (f" (did you mean {left}{where}{right}?)" if close else "")
    return "unknown key" + (f" (did you mean {close!r}?)" if close else "")


# -- resolution --------------------------------------------------------------


class _Problem(Exception):
    """A resolution failure at a key path; becomes the ConfigError line."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)


class _Resolver:
    """Turns a validated ``ConfigFile`` into a ``NodeConfig``."""

    def __init__(self, source: Path, environ: Mapping[str, str]) -> None:
        self.source = source
        self.base_dir = source.absolute().parent
        self.environ = environ
        self.warnings: list[ConfigWarning] = []

    def resolve(self, f: ConfigFile) -> NodeConfig:
        keypair = self._keypair(f.node)
        self._not_published(f, keypair.public_key)
        if f.node.public_key is not None and PublicKey.from_strkey(f.node.public_key) != keypair.public_key:
            raise _Problem(
                "node.public_key",
                f"{f.node.public_key} does not match the seed, whose public key is {keypair.public_key}",
            )
        validators, names = self._validators(f.validators)
        labels = self._own_name(f.node, keypair.public_key, validators, names)
        qset = self._quorum_set(f.quorum_set, names)
        self._self_in_quorum_set(f.node, keypair.public_key, qset)
        self._others_can_lead(f.node, keypair.public_key, qset)
        if not f.quorum_set.unsafe_quorum:
            problems = quorum_safety_problems(qset, lambda n: labels.get(n, str(n)))
            if problems:
                raise _Problem(
                    "",
                    f"unsafe quorum set: {'; '.join(problems)} "
                    "(write unsafe_quorum = true in [quorum_set] to run it anyway)",
                )
        self._cross_checks(f)
        http_listen = PeerAddress(f.http.address, f.http.port) if f.http.enabled else None
        metrics_listen = PeerAddress(f.metrics.address, f.metrics.port) if f.metrics.port is not None else None
        peers = tuple(dict.fromkeys(parse_address(p) for p in f.overlay.peers))
        known = tuple(
            dict.fromkeys(
                v.address
                for v in validators
                if v.address is not None and v.node_id != keypair.public_key and v.address not in peers
            )
        )
        return NodeConfig(
            path=self.source,
            keypair=keypair,
            is_validator=f.node.is_validator,
            network_passphrase=f.network.passphrase,
            network_id=network_id(f.network.passphrase),
            quorum_set=qset,
            quorum_set_hash=quorum.quorum_set_hash(qset),
            validators=validators,
            listen=PeerAddress(f.overlay.listen_address, f.overlay.listen_port),
            peers=peers,
            known_addresses=known,
            data_dir=self._path(f.node.data_dir),
            overlay=f.overlay.with_room_for_two_messages(),
            timers=f.timers,
            ledger=f.ledger,
            intake=f.intake,
            http_listen=http_listen,
            metrics_enabled=f.metrics.enabled,
            metrics_listen=metrics_listen if f.metrics.enabled else None,
            log=f.log,
            warnings=tuple(self.warnings),
            _names=labels,
        )

    def _path(self, text: str) -> Path:
        return self.base_dir / Path(text).expanduser()

    # -- the node key

    def _keypair(self, node: NodeSection) -> Keypair:
        if node.seed is not None:
            self._warn_if_shared(self.source, "node.seed", f"the seed is inline in {self.source}, which is")
            return self._decode_seed(node.seed.get_secret_value(), "node.seed", "the inline seed")
        if node.seed_file is not None:
            return self._seed_from_file(node.seed_file)
        if node.seed_env is not None:
            value = self.environ.get(node.seed_env)
            if value is None:
                raise _Problem("node.seed_env", f"environment variable {node.seed_env} is not set")
            if not value.strip():
                raise _Problem("node.seed_env", f"environment variable {node.seed_env} is empty")
            return self._decode_seed(value, "node.seed_env", f"environment variable {node.seed_env}")
        raise AssertionError("NodeSection guarantees exactly one seed source")

    def _seed_from_file(self, name: str) -> Keypair:
        path = self._path(name)
        try:
            with path.open("rb") as f:
                data = f.read(MAX_SEED_FILE_BYTES + 1)
        except FileNotFoundError:
            raise _Problem("node.seed_file", f"{path}: file not found") from None
        except IsADirectoryError:
            raise _Problem("node.seed_file", f"{path}: is a directory") from None
        except OSError as exc:
            raise _Problem("node.seed_file", f"{path}: cannot read: {exc.strerror or exc}") from None
        if len(data) > MAX_SEED_FILE_BYTES:
            raise _Problem("node.seed_file", f"{path}: too large to be a seed file")
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise _Problem("node.seed_file", f"{path}: does not hold a seed (not ASCII text)") from None
        if not text.strip():
            raise _Problem("node.seed_file", f"{path}: is empty")
        self._warn_if_shared(path, "node.seed_file", f"{path} is")
        return self._decode_seed(text, "node.seed_file", f"{path}:")

    @staticmethod
    def _not_published(f: ConfigFile, me: NodeID) -> None:
        """A seed printed in scpd's example files signs for anyone who read them."""
        example = PUBLISHED_EXAMPLE_KEYS.get(str(me))
        if example is not None and f.network.passphrase != DEFAULT_LOCALNET_PASSPHRASE:
            key = next(k for k in ("seed", "seed_file", "seed_env") if getattr(f.node, k) is not None)
            raise _Problem(
                f"node.{key}",
                f"this is the example seed published in {example}: anyone can sign as this node; "
                "generate your own with `scpd keygen --out node.seed`",
            )

    @staticmethod
    def _decode_seed(text: str, key: str, what: str) -> Keypair:
        try:
            return Keypair.from_seed_strkey(text.strip())
        except KeyFormatError as exc:
            # The message names the problem (length, checksum...), never the text.
            raise _Problem(key, f"{what} does not hold a valid seed: {exc}") from None

    def _warn_if_shared(self, path: Path, key: str, subject: str) -> None:
        try:
            mode = path.stat().st_mode
        except OSError:
            return
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            self.warnings.append(
                ConfigWarning(key, f"{subject} readable by other users (mode {stat.S_IMODE(mode):04o}); chmod 600 it")
            )

    # -- validators and the quorum set

    def _validators(self, entries: Sequence[ValidatorEntry]) -> tuple[tuple[KnownValidator, ...], dict[NodeID, str]]:
        by_key: dict[NodeID, int] = {}
        by_name: dict[str, int] = {}
        out: list[KnownValidator] = []
        for i, entry in enumerate(entries):
            node = PublicKey.from_strkey(entry.public_key)
            if node in by_key:
                raise _Problem(f"validators[{i}].public_key", f"{node} is already listed as validators[{by_key[node]}]")
            by_key[node] = i
            if entry.name is not None:
                if entry.name in by_name:
                    raise _Problem(
                        f"validators[{i}].name", f"{entry.name!r} is already used by validators[{by_name[entry.name]}]"
                    )
                by_name[entry.name] = i
            address = None if entry.address is None else parse_address(entry.address)
            out.append(KnownValidator(node, entry.name, address, entry.organization))
        names = {v.node_id: v.name for v in out if v.name is not None}
        return tuple(out), names

    @staticmethod
    def _own_name(
        node: NodeSection, me: NodeID, validators: Sequence[KnownValidator], names: Mapping[NodeID, str]
    ) -> dict[NodeID, str]:
        """Labels for display: the [[validators]] names plus ``node.name`` for this node."""
        labels = dict(names)
        if node.name is None:
            return labels
        listed = names.get(me)
        if listed is not None and listed != node.name:
            i = next(i for i, v in enumerate(validators) if v.node_id == me)
            raise _Problem("node.name", f"{node.name!r}, but validators[{i}] names this node {listed!r}")
        for other, name in names.items():
            if name == node.name and other != me:
                raise _Problem("node.name", f"{node.name!r} is already the name of another validator ({other})")
        labels[me] = node.name
        return labels

    def _quorum_set(self, section: QuorumSetSection, names: Mapping[NodeID, str]) -> SCPQuorumSet:
        by_name = {name: node for node, name in names.items()}
        seen: dict[NodeID, str] = {}
        qset = self._qset_level(section, "quorum_set", 1, by_name, seen)
        if len(seen) > MAX_QSET_NODES:
            raise _Problem("quorum_set", f"names {len(seen)} validators, at most {MAX_QSET_NODES}")
        # The base layer's rules are the final word; the checks above only make
        # the common mistakes point at the exact key.
        violations = quorum.sanity_violations(qset)
        if violations:
            raise _Problem(violations[0].path, violations[0].message)
        for v in quorum.sanity_violations(qset, extra_checks=True):
            if v.name == "threshold-not-majority":
                self.warnings.append(
                    ConfigWarning(
                        f"{v.path}.threshold",
                        f"{v.message}: two disjoint groups could each reach a quorum (safety needs more than half)",
                    )
                )
        return qset

    def _qset_level(
        self,
        section: QuorumSetSection,
        path: str,
        depth: int,
        by_name: Mapping[str, NodeID],
        seen: dict[NodeID, str],
    ) -> SCPQuorumSet:
        if depth > MAX_QSET_DEPTH:
            raise _Problem(path, f"quorum sets nest at most {MAX_QSET_DEPTH} levels deep (this is level {depth})")
        validators: list[NodeID] = []
        for i, entry in enumerate(section.validators):
            key = f"{path}.validators[{i}]"
            node = self._validator_ref(entry, key, by_name)
            if node in seen:
                raise _Problem(key, f"{entry!r} already appears at {seen[node]}")
            seen[node] = key
            validators.append(node)
        inner = tuple(
            self._qset_level(s, f"{path}.inner_sets[{i}]", depth + 1, by_name, seen)
            for i, s in enumerate(section.inner_sets)
        )
        entries = len(validators) + len(inner)
        if entries == 0:
            raise _Problem(path, "empty quorum set: list at least one validator or inner set")
        if section.threshold is not None:
            threshold = section.threshold
            if threshold > entries:
                raise _Problem(
                    f"{path}.threshold",
                    f"{threshold} is out of range: this set has {entries} entries, so 1..{entries}",
                )
        else:
            assert section.threshold_percent is not None  # the model guarantees exactly one
            threshold = -(-entries * section.threshold_percent // 100)
        return SCPQuorumSet(threshold, tuple(validators), inner)

    @staticmethod
    def _validator_ref(entry: str, key: str, by_name: Mapping[str, NodeID]) -> NodeID:
        """A name of a ``[[validators]]`` entry, or a strkey (anything longer than a name)."""
        if len(entry) > MAX_NAME_LEN:
            try:
                return PublicKey.from_strkey(entry)
            except KeyFormatError as exc:
                raise _Problem(key, str(exc)) from None
        node = by_name.get(entry)
        if node is None:
            close = difflib.get_close_matches(entry, list(by_name), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _Problem(key, f"unknown validator name {entry!r}: no [[validators]] entry has it{hint}")
        return node

    def _self_in_quorum_set(self, node: NodeSection, me: NodeID, qset: SCPQuorumSet) -> None:
        if node.is_validator and me not in quorum.all_validators(qset):
            self.warnings.append(
                ConfigWarning(
                    "quorum_set",
                    f"this validator ({me}) is not in its own quorum set; its slices should include itself",
                )
            )

    @staticmethod
    def _others_can_lead(node: NodeSection, me: NodeID, qset: SCPQuorumSet) -> None:
        """Refuse a set in which nomination could only ever follow this node (stellar-core PR 4528)."""
        if node.is_validator and quorum.all_validators(qset) - {me} and not possible_leaders(qset, me):
            raise _Problem(
                "quorum_set",
                f"no other validator can ever lead nomination: with {qset.threshold} of "
                f"{len(qset.validators) + len(qset.inner_sets)} this node alone satisfies its quorum set; "
                "raise the threshold",
            )

    # -- keys that constrain each other

    def _cross_checks(self, f: ConfigFile) -> None:
        t, o, led = f.timers, f.overlay, f.ledger
        if t.max_timeout < max(t.nomination_timeout_initial, t.ballot_timeout_initial):
            raise _Problem(
                "timers.max_timeout",
                f"{t.max_timeout} s is below the initial timeouts "
                f"({t.nomination_timeout_initial} s nomination, {t.ballot_timeout_initial} s ballot)",
            )
        if o.peer_timeout <= o.keepalive_interval:
            raise _Problem(
                "overlay.peer_timeout",
                f"{o.peer_timeout} s must exceed overlay.keepalive_interval ({o.keepalive_interval} s), "
                "or live peers are dropped between keep-alives",
            )
        if o.reconnect_max < o.reconnect_initial:
            raise _Problem(
                "overlay.reconnect_max",
                f"{o.reconnect_max} s is below overlay.reconnect_initial ({o.reconnect_initial} s)",
            )
        if led.max_tx_size > led.max_tx_set_size:
            raise _Problem(
                "ledger.max_tx_size",
                f"{led.max_tx_size} bytes is more than ledger.max_tx_set_size ({led.max_tx_set_size} bytes)",
            )
        if led.max_queue_bytes < led.max_tx_size:
            raise _Problem(
                "ledger.max_queue_bytes",
                f"{led.max_queue_bytes} bytes cannot hold one transaction of "
                f"ledger.max_tx_size ({led.max_tx_size} bytes)",
            )
        needed = max_tx_set_xdr_size(TxSetLimits(led.max_tx_count, led.max_tx_set_size)) + MESSAGE_OVERHEAD
        if o.max_message_size < needed:
            raise _Problem(
                "overlay.max_message_size",
                f"{o.max_message_size} bytes cannot carry a full transaction set: it must be at least "
                f"{needed} bytes (the XDR of a set of ledger.max_tx_count transactions and "
                f"ledger.max_tx_set_size bytes, plus {MESSAGE_OVERHEAD})",
            )
        if f.metrics.enabled and f.metrics.port is None and not f.http.enabled:
            raise _Problem(
                "metrics", "enabled, but [http] is disabled and metrics.port is not set: nothing serves /metrics"
            )
        self._no_port_clash(f)
        data_dir = self._path(f.node.data_dir)
        if data_dir.exists() and not data_dir.is_dir():
            raise _Problem("node.data_dir", f"{data_dir} exists and is not a directory")

    def _no_port_clash(self, f: ConfigFile) -> None:
        listeners: list[tuple[str, str, int]] = [
            ("overlay.listen_port", f.overlay.listen_address, f.overlay.listen_port)
        ]
        if f.http.enabled:
            listeners.append(("http.port", f.http.address, f.http.port))
        if f.metrics.enabled and f.metrics.port is not None:
            listeners.append(("metrics.port", f.metrics.address, f.metrics.port))
        for i, (key, host, port) in enumerate(listeners):
            for other_key, other_host, other_port in listeners[:i]:
                overlap = host == other_host or host in _WILDCARD_HOSTS or other_host in _WILDCARD_HOSTS
                if port != 0 and port == other_port and overlap:
                    raise _Problem(key, f"port {port} is already used by {other_key}")


# -- quorum safety (stellar-core's FAILURE_SAFETY and UNSAFE_QUORUM) ---------


def quorum_safety_problems(qset: SCPQuorumSet, label: typing.Callable[[NodeID], str] = str) -> list[str]:
    """Why ``qset`` is unsafe by stellar-core's rules, as ``key: problem`` texts (empty when safe).

    With n top-level entries the set must tolerate f = floor((n - 1) / 3)
    failures, at least one (stellar-core's FAILURE_SAFETY = -1, its default):
    n >= 4, fewer than f + 1 failures never halt the node, the top-level
    threshold is at least n - f (about two thirds), and every inner set's
    threshold is a strict majority of its entries (stellar-core's checks
    behind UNSAFE_QUORUM = false).
    """
    n = len(qset.validators) + len(qset.inner_sets)
    f = (n - 1) // 3
    problems = []
    if f == 0:
        problems.append(
            f"quorum_set: {n} top-level {'entry tolerates' if n == 1 else 'entries tolerate'} no failure "
            "(tolerating one takes at least 4, as 3f + 1)"
        )
    else:
        blocking = quorum.closest_v_blocking(qset, quorum.all_validators(qset))
        if blocking is not None and len(blocking) <= f:
            names = ", ".join(label(v) for v in sorted(blocking))
            problems.append(
                f"quorum_set: {len(blocking)} failure(s) ({names}) halt this node, "
                f"but its {n} top-level entries should withstand {f}"
            )
    if qset.threshold < n - f:
        problems.append(
            f"quorum_set.threshold: {qset.threshold} of {n} is below {n - f} (two thirds): "
            "two disjoint groups could each reach a quorum"
        )
    for v in quorum.sanity_violations(qset, extra_checks=True):
        if v.name == "threshold-not-majority" and v.path != "quorum_set":
            problems.append(f"{v.path}.threshold: {v.message}")
    return problems


# -- presentation -------------------------------------------------------------


def format_quorum_set(qset: SCPQuorumSet, label: typing.Callable[[NodeID], str], indent: str = "  ") -> list[str]:
    """The set as indented lines: ``3 of 4:`` then its validators and inner sets."""
    lines: list[str] = []

    def walk(q: SCPQuorumSet, depth: int) -> None:
        pad = indent * depth
        lines.append(f"{pad}{q.threshold} of {len(q.validators) + len(q.inner_sets)}:")
        for v in q.validators:
            lines.append(f"{pad}{indent}{label(v)}")
        for inner in q.inner_sets:
            walk(inner, depth + 1)

    walk(qset, 0)
    return lines
