"""Node configuration: the TOML file an operator writes, checked and resolved.

Theory of operation
-------------------
``load_config(path)`` is the only reader of a node's configuration file. It
works in three steps, and each refuses bad input with one ``ConfigError`` line
of the form ``FILE: key.path: problem`` (no traceback, no pydantic dump):

1. **Read and parse** the file with ``tomllib`` (missing file, unreadable
   file, TOML syntax error): this module.
2. **Validate the shape** with the pydantic v2 models of ``config_sections``:
   strict types (TOML already has types, so ``threshold = "3"`` is an error,
   not a coercion), ``extra="forbid"`` (a misspelt key is an error, with a
   suggestion), ranges. ``config_messages`` turns pydantic's
   ``ValidationError`` into the one line: up to ``MAX_ERRORS_SHOWN`` problems,
   plus ``(and N more)``.
3. **Resolve** (``config_resolve``): load the node seed, turn validator names
   into keys, build the ``SCPQuorumSet`` (``threshold_percent`` rounded up),
   run the base layer's sanity rules and stellar-core's safety rules
   (``config_quorum``) on it, and check the keys that constrain each other.

The result is ``NodeConfig`` (``config_node``), an immutable value the daemon
consumes; nothing else in scpd parses the file. Problems that do not stop a
node but that an operator should fix (a validator missing from its own quorum
set, a seed file readable by others, a threshold that is not a strict
majority, what the quorum analysis finds) are returned as
``NodeConfig.warnings``; ``strict=True`` (``scpd check-config --strict``)
turns them into errors.

The seed is a secret. It is held as ``SecretStr`` while validating, goes
straight into a ``Keypair`` (whose repr shows only the public key), and no
error message ever quotes it or any value of a key whose name starts with
``seed``; every message and warning passes ``redact_secrets`` on its way out.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from scpd.errors import ConfigError
from scpd.operator.config_messages import redact_secrets, translate
from scpd.operator.config_node import ConfigWarning, NodeConfig
from scpd.operator.config_quorum import quorum_intersection_warnings
from scpd.operator.config_resolve import resolve
from scpd.operator.config_sections import ConfigFile

__all__ = ["load_config"]

# A configuration file larger than this is certainly a mistake (for example a
# path pointing at a device), so we refuse it rather than read it.
MAX_CONFIG_BYTES = 1 << 20


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


def _load(source: Path, label: str, environ: Mapping[str, str]) -> NodeConfig:
    raw = _read_toml(source, label)
    try:
        parsed = ConfigFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{label}: {translate(exc)}") from None
    return resolve(parsed, source, label, environ)


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
