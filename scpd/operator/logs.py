"""Structured logs: JSON lines in production, readable lines on a terminal.

``configure`` is called once by the daemon before anything logs. Every line
carries an ``event`` name and the ``logger`` that wrote it (the module, e.g.
``scpd.node.overlay.overlay``); the daemon binds ``node`` (the public key) so
each line says which node wrote it. Secrets never reach a logger: the seed
lives only inside ``Keypair``, whose repr shows the public key.

Levels can change at run time, per logger (stellar-core's ``ll``): a level set
for ``scpd.node`` applies to every logger below it unless a longer name has a
level of its own. ``set_level`` / ``levels`` are what the admin API calls.

Configured validator names (``[[validators]] name``) are added beside the
keys they name: a field holding a known ``G...`` key gets a ``<field>_name``
companion (``peer`` -> ``peer_name``), so an operator reads ``node3`` where
the key alone would need a lookup.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, TextIO

import structlog

from scpd.errors import ScpdError

__all__ = ["LEVELS", "configure", "levels", "set_level"]

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_METHOD_LEVELS = {**LEVELS, "warn": logging.WARNING, "exception": logging.ERROR, "critical": logging.CRITICAL}

# The default level under "", overrides by logger name. Module state: one process, one log configuration.
_levels: dict[str, int] = {"": logging.INFO}
_names: dict[str, str] = {}


class _NamedPrintLogger(structlog.PrintLogger):
    """A PrintLogger that remembers the name it was asked for, for per-logger levels."""

    def __init__(self, name: str, file: TextIO) -> None:
        super().__init__(file)
        self.name = name


class _NamedLoggerFactory:
    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _NamedPrintLogger:
        return _NamedPrintLogger(str(args[0]) if args else "", self._file)


def _effective_level(name: str) -> int:
    while True:
        level = _levels.get(name)
        if level is not None:
            return level
        if not name:
            return _levels.get("", logging.INFO)
        name = name.rpartition(".")[0]


def _filter_by_logger(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    name = str(getattr(logger, "name", ""))
    if _METHOD_LEVELS.get(method, logging.INFO) < _effective_level(name):
        raise structlog.DropEvent
    if name:
        event.setdefault("logger", name)
    return event


def _add_node_names(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if not _names:
        return event
    for key, value in list(event.items()):
        if isinstance(value, str) and value in _names:
            event.setdefault(f"{key}_name", _names[value])
    return event


def configure(
    fmt: Literal["auto", "json", "console"] = "auto",
    level: str = "info",
    *,
    node: str | None = None,
    names: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
) -> None:
    """Set up logging for the process; ``names`` maps ``G...`` keys to configured names."""
    stream = sys.stderr if stream is None else stream
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    processors: list[structlog.typing.Processor] = [
        _filter_by_logger,
        structlog.contextvars.merge_contextvars,
        _add_node_names,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if use_json:
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=stream.isatty()))
    _levels.clear()
    _levels[""] = LEVELS[level]
    _names.clear()
    _names.update(names or {})
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=_NamedLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    if node is not None:
        structlog.contextvars.bind_contextvars(node=node)


def set_level(level: str | None, logger: str = "") -> None:
    """Change the level of ``logger`` and the loggers below it ("" = the default); None drops an override."""
    if level is not None and level not in LEVELS:
        raise ScpdError(f"unknown log level {level!r}: use one of {', '.join(LEVELS)}")
    if level is None:
        if logger == "":
            raise ScpdError("the default log level cannot be removed")
        _levels.pop(logger, None)
    else:
        _levels[logger] = LEVELS[level]
    # The cheap first filter lets through what the most talkative logger needs.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(min(_levels.values())))


def levels() -> dict[str, str]:
    """The default level (under "") and every per-logger override, by name."""
    by_number = {number: name for name, number in LEVELS.items()}
    return {name: by_number[number] for name, number in sorted(_levels.items())}
