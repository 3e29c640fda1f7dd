"""The network model for quorum analysis, and the loaders that build it.

Theory of operation: a federated Byzantine agreement system (FBAS) is a list
of nodes, each with an optional quorum set (a recursive k-of-n predicate over
other nodes). Nodes are named by the text of their public key and numbered by
their position in the input list; every figure the analysis reports uses
those positions (or the keys), so results can be compared with other tools.

A validator named in a quorum set but absent from the node list is kept in the
quorum set as an *unknown* name: it never counts as present, exactly as if it
had no quorum set (the fbas_analyzer convention). A node without a quorum set
(``quorumSet: null`` in stellarbeat data) can never be part of a quorum.

This module is in the base layer: pure data and pure functions, except the
explicit ``load_*`` functions, which read the file they are given and nothing
else. Every problem with the input raises ``AnalysisInputError`` naming where
it is, never a ``KeyError`` or ``TypeError``.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scpd.base.keys import Keypair
from scpd.errors import KeyFormatError, ScpdError

__all__ = [
    "MAX_DEPTH",
    "AnalysisInputError",
    "Fbas",
    "Node",
    "Organizations",
    "QSet",
    "fbas_from_stellarbeat",
    "fbas_from_toml_configs",
    "load_fbas",
    "load_organizations",
    "organizations_from_stellarbeat",
    "qset_from_toml_table",
]

# Deeper than SCP's limit of 4 so that analysis can read what other software
# published, shallow enough that a hostile file cannot exhaust the stack.
MAX_DEPTH = 16
# As the node's own loader: a larger "seed file" is certainly a wrong path.
MAX_SEED_FILE_BYTES = 1024


class AnalysisInputError(ScpdError):
    """A network or organisations description that cannot be analysed."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class QSet:
    """A quorum set over node names: ``threshold`` of the validators and inner sets."""

    threshold: int
    validators: tuple[str, ...] = ()
    inner_sets: tuple[QSet, ...] = ()

    def names(self) -> set[str]:
        """Every validator named at any depth."""
        out = set(self.validators)
        for inner in self.inner_sets:
            out |= inner.names()
        return out


@dataclass(frozen=True, slots=True)
class Node:
    key: str
    qset: QSet | None
    name: str | None = None


@dataclass(frozen=True)
class Fbas:
    """Nodes in input order; ``index`` maps a key to its position."""

    nodes: tuple[Node, ...]
    index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, int] = {}
        for i, node in enumerate(self.nodes):
            if node.key in index:
                raise AnalysisInputError(f"node {i}: public key {node.key} already listed as node {index[node.key]}")
            index[node.key] = i
        object.__setattr__(self, "index", index)

    def __len__(self) -> int:
        return len(self.nodes)

    def unknown_validators(self) -> set[str]:
        """Names used in some quorum set that are not nodes of this network."""
        named: set[str] = set()
        for node in self.nodes:
            if node.qset is not None:
                named |= node.qset.names()
        return named - set(self.index)


@dataclass(frozen=True)
class Organizations:
    """Organisation names and, for each, the node indices it runs."""

    names: tuple[str, ...]
    members: tuple[frozenset[int], ...]

    def org_of(self, n_nodes: int) -> list[int | None]:
        """For each node index, the index of its organisation (None if it has none)."""
        out: list[int | None] = [None] * n_nodes
        for org, nodes in enumerate(self.members):
            for node in nodes:
                out[node] = org
        return out


# --- stellarbeat JSON -------------------------------------------------------


def load_fbas(path: Path) -> Fbas:
    """Read a network: stellarbeat JSON, or scpd TOML configs (a ``.toml`` file or a directory of them)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".toml")
        if not files:
            raise AnalysisInputError(f"{path}: no .toml files in this directory")
        return fbas_from_toml_configs([(str(p), _read_config(p)) for p in files])
    if path.suffix == ".toml":
        return fbas_from_toml_configs([(str(path), _read_config(path))])
    return fbas_from_stellarbeat(_read_json(path), source=str(path))


def load_organizations(path: Path, fbas: Fbas) -> Organizations:
    """Read a stellarbeat organisations file and resolve its validators against ``fbas``."""
    return organizations_from_stellarbeat(_read_json(path), fbas, source=str(path))


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AnalysisInputError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise AnalysisInputError(f"{path}: not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnalysisInputError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise AnalysisInputError(f"{path}: JSON nested too deeply") from None


def fbas_from_stellarbeat(data: Any, source: str = "input") -> Fbas:
    """Build a network from parsed stellarbeat JSON: a list of nodes; extra fields are ignored."""
    if not isinstance(data, list):
        raise AnalysisInputError(f"{source}: expected a JSON list of nodes")
    nodes = []
    for i, raw in enumerate(data):
        where = f"{source}: node {i}"
        if not isinstance(raw, dict):
            raise AnalysisInputError(f"{where}: expected an object")
        key = raw.get("publicKey")
        if not isinstance(key, str) or not key:
            raise AnalysisInputError(f"{where}: publicKey missing or not a string")
        raw_qset = raw.get("quorumSet")
        qset = None if raw_qset is None else _qset_from_json(raw_qset, f"{where}: quorumSet", 1)
        name = raw.get("name")
        nodes.append(Node(key, qset, name if isinstance(name, str) and name else None))
    return Fbas(tuple(nodes))


def _qset_from_json(raw: Any, where: str, depth: int) -> QSet:
    if depth > MAX_DEPTH:
        raise AnalysisInputError(f"{where}: nested deeper than {MAX_DEPTH} levels")
    if not isinstance(raw, dict):
        raise AnalysisInputError(f"{where}: expected an object or null")
    threshold: Any = raw.get("threshold")
    if not _is_count(threshold):
        raise AnalysisInputError(f"{where}.threshold: expected a non-negative integer")
    validators = _validator_keys(raw, where)
    inner = raw.get("innerQuorumSets") or []
    if not isinstance(inner, list):
        raise AnalysisInputError(f"{where}.innerQuorumSets: expected a list")
    inner_sets = tuple(_qset_from_json(q, f"{where}.innerQuorumSets[{j}]", depth + 1) for j, q in enumerate(inner))
    return QSet(int(threshold), tuple(validators), inner_sets)


def _validator_keys(raw: dict[str, Any], where: str) -> list[str]:
    """The ``validators`` list of a stellarbeat object (a quorum set or an organisation)."""
    validators = raw.get("validators", [])
    if not isinstance(validators, list) or not all(isinstance(v, str) for v in validators):
        raise AnalysisInputError(f"{where}.validators: expected a list of public keys")
    return validators


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def organizations_from_stellarbeat(data: Any, fbas: Fbas, source: str = "input") -> Organizations:
    """Organisations from parsed stellarbeat JSON; validators not in ``fbas`` are ignored."""
    if not isinstance(data, list):
        raise AnalysisInputError(f"{source}: expected a JSON list of organisations")
    names: list[str] = []
    members: list[frozenset[int]] = []
    owner: dict[int, str] = {}
    for i, raw in enumerate(data):
        where = f"{source}: organisation {i}"
        if not isinstance(raw, dict):
            raise AnalysisInputError(f"{where}: expected an object")
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise AnalysisInputError(f"{where}: name missing or not a string")
        validators = _validator_keys(raw, where)
        nodes = frozenset(fbas.index[v] for v in validators if v in fbas.index)
        for node in nodes:
            if node in owner:
                raise AnalysisInputError(f"{where}: node {node} already belongs to {owner[node]}")
            owner[node] = name
        names.append(name)
        members.append(nodes)
    return Organizations(tuple(names), tuple(members))


# --- scpd TOML configs --------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise AnalysisInputError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise AnalysisInputError(f"{path}: not TOML ({exc})") from None


def _read_config(path: Path) -> dict[str, Any]:
    """An scpd config; without ``node.public_key``, the key of its ``node.seed`` or ``node.seed_file`` fills it in.

    The seed itself is only turned into its public key, never kept or quoted.
    """
    doc = _read_toml(path)
    node = doc.get("node")
    if not isinstance(node, dict) or node.get("public_key") or doc.get("public_key"):
        return doc
    seed, where = node.get("seed"), "node.seed"
    seed_file = node.get("seed_file")
    if isinstance(seed_file, str) and seed_file:
        seed, where = _read_seed_file(path.parent / Path(seed_file).expanduser(), path), "node.seed_file"
    if isinstance(seed, str) and seed.strip():
        try:
            node["public_key"] = str(Keypair.from_seed_strkey(seed.strip()).public_key)
        except KeyFormatError as exc:
            raise AnalysisInputError(f"{path}: {where}: not a valid seed: {exc}") from None
    return doc


def _read_seed_file(seed_path: Path, config: Path) -> str:
    try:
        with seed_path.open("rb") as f:
            data = f.read(MAX_SEED_FILE_BYTES + 1)
    except OSError as exc:
        raise AnalysisInputError(f"{config}: node.seed_file: {seed_path}: {exc.strerror or exc}") from None
    if len(data) > MAX_SEED_FILE_BYTES:
        raise AnalysisInputError(f"{config}: node.seed_file: {seed_path}: too large to be a seed file")
    return data.decode("ascii", "replace")


def fbas_from_toml_configs(configs: Sequence[tuple[str, Mapping[str, Any]]]) -> Fbas:
    """One node per scpd config: its own public key and its ``[quorum_set]``.

    Each config names its node with ``public_key`` (top level or under
    ``[node]``); names of ``[[validators]]`` entries may stand for their keys
    in the quorum set. Validators that no config describes become nodes
    without a quorum set, after the configured ones, so the configured nodes
    keep the positions of their files.
    """
    nodes: list[Node] = []
    for source, doc in configs:
        key = _toml_public_key(doc, source)
        names = _toml_validator_names(doc, source)
        raw = doc.get("quorum_set")
        if raw is None:
            raise AnalysisInputError(f"{source}: no [quorum_set] table")
        nodes.append(Node(key, qset_from_toml_table(raw, names, f"{source}: quorum_set"), _toml_node_name(doc)))
    listed = {n.key for n in nodes}
    extra = sorted(set().union(*(n.qset.names() for n in nodes if n.qset is not None)) - listed)
    return Fbas(tuple(nodes) + tuple(Node(k, None) for k in extra))


def _toml_public_key(doc: Mapping[str, Any], source: str) -> str:
    node = doc.get("node")
    key = node.get("public_key") if isinstance(node, dict) else None
    key = key or doc.get("public_key")
    if not isinstance(key, str) or not key:
        raise AnalysisInputError(
            f"{source}: no public_key for this node (top level or in [node]; or a node.seed or node.seed_file)"
        )
    return key


def _toml_node_name(doc: Mapping[str, Any]) -> str | None:
    node = doc.get("node")
    name = node.get("name") if isinstance(node, dict) else None
    return name if isinstance(name, str) and name else None


def _toml_validator_names(doc: Mapping[str, Any], source: str) -> dict[str, str]:
    entries = doc.get("validators", [])
    if not isinstance(entries, list):
        raise AnalysisInputError(f"{source}: validators must be an array of tables ([[validators]])")
    names: dict[str, str] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise AnalysisInputError(f"{source}: validators[{i}]: expected a table")
        name, key = entry.get("name"), entry.get("public_key")
        if not isinstance(key, str) or not key:
            raise AnalysisInputError(f"{source}: validators[{i}]: public_key missing")
        if isinstance(name, str) and name:
            names[name] = key
    return names


def qset_from_toml_table(raw: Any, names: Mapping[str, str], where: str, depth: int = 1) -> QSet:
    """A stellar-core style quorum-set table: ``threshold`` or ``threshold_percent``,
    ``validators`` (keys, or names of ``[[validators]]`` entries) and ``inner_sets``."""
    if depth > MAX_DEPTH:
        raise AnalysisInputError(f"{where}: nested deeper than {MAX_DEPTH} levels")
    if not isinstance(raw, dict):
        raise AnalysisInputError(f"{where}: expected a table")
    validators = raw.get("validators", [])
    if not isinstance(validators, list) or not all(isinstance(v, str) for v in validators):
        raise AnalysisInputError(f"{where}.validators: expected a list of public keys or validator names")
    inner_raw = raw.get("inner_sets", [])
    if not isinstance(inner_raw, list):
        raise AnalysisInputError(f"{where}.inner_sets: expected an array of tables")
    inner = tuple(
        qset_from_toml_table(q, names, f"{where}.inner_sets[{j}]", depth + 1) for j, q in enumerate(inner_raw)
    )
    keys = tuple(names.get(v, v) for v in validators)
    return QSet(_toml_threshold(raw, len(keys) + len(inner), where), keys, inner)


def _toml_threshold(raw: Mapping[str, Any], entries: int, where: str) -> int:
    has_abs, has_pct = "threshold" in raw, "threshold_percent" in raw
    if has_abs == has_pct:
        raise AnalysisInputError(f"{where}: give exactly one of threshold and threshold_percent")
    if has_abs:
        value = raw["threshold"]
        if not _is_count(value):
            raise AnalysisInputError(f"{where}.threshold: expected a non-negative integer")
        return int(value)
    pct = raw["threshold_percent"]
    if not _is_count(pct) or pct > 100:
        raise AnalysisInputError(f"{where}.threshold_percent: expected an integer from 0 to 100")
    # Round up, as stellar-core does: 67% of 3 entries needs all 3, 51% of 4 needs 3.
    return max(1, -(-entries * int(pct) // 100))
