"""Resolution: a validated ``ConfigFile`` becomes a ``NodeConfig``.

It loads the node seed (inline, from a file, or from the environment), turns
validator names into keys, builds the ``SCPQuorumSet`` (``threshold_percent``
rounded up) and runs the base layer's sanity rules and stellar-core's safety
rules on it, and checks the keys that constrain each other across sections.
Each refusal is one ``ConfigError`` line naming the file and the key. Problems
that do not stop a node (a validator missing from its own quorum set, a seed
file readable by others, a threshold that is not a strict majority) become
``NodeConfig.warnings``.

Relative paths in the file (``node.seed_file``, ``node.data_dir``) are
relative to the directory holding the configuration file, not to the working
directory, so a node behaves the same whoever starts it.
"""

from __future__ import annotations

import difflib
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from scpd.base import quorum
from scpd.base.keys import Keypair, network_id
from scpd.base.types import MAX_QSET_DEPTH, MAX_QSET_NODES, NodeID, PublicKey, SCPQuorumSet
from scpd.errors import ConfigError, KeyFormatError
from scpd.nodecore.values import TxSetLimits, max_tx_set_xdr_size
from scpd.operator.config_addresses import PeerAddress, parse_address
from scpd.operator.config_node import ConfigWarning, KnownValidator, NodeConfig
from scpd.operator.config_quorum import quorum_safety_problems
from scpd.operator.config_sections import MAX_NAME_LEN, ConfigFile, NodeSection, QuorumSetSection, ValidatorEntry
from scpd.operator.localnet_config import DEFAULT_LOCALNET_PASSPHRASE
from scpd.scp.nomination import possible_leaders

__all__ = ["MESSAGE_OVERHEAD", "PUBLISHED_EXAMPLE_KEYS", "resolve"]

# Room a network message needs beyond the largest transaction set it carries
# (message type, slot, hashes, framing); see overlay.max_message_size.
MESSAGE_OVERHEAD = 1024
# A seed file larger than this is certainly a mistake (for example a path
# pointing at a device), so we refuse it rather than read it.
MAX_SEED_FILE_BYTES = 1024
_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::"})
# Public keys of the seeds printed in scpd's example configurations: anyone
# can sign as them, so they are refused except on the localnet passphrase.
PUBLISHED_EXAMPLE_KEYS = {
    "GD55JX6T42NMGL352ZHAGOSHA6RJ3JYYFIQ56YVYKX3P33YRZ2ANI7ZL": "config/validator.toml",
    "GB26GGLNLWUWJMPLEDGRNOGILBQOVTFP4NW77LHDRXP7KWOKXJKJ67O6": "config/watcher.toml",
}


def resolve(parsed: ConfigFile, source: Path, label: str, environ: Mapping[str, str]) -> NodeConfig:
    """The node configuration ``parsed`` describes, or ConfigError: ``label: key.path: problem``."""
    try:
        return _Resolver(source, environ).resolve(parsed)
    except _Problem as problem:
        raise ConfigError(f"{label}: {problem}") from None


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
