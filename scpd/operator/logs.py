"""Structured logs: JSON lines in production, readable lines on a terminal.

``configure`` is called once by the daemon before anything logs. Every line
carries an ``event`` name; the daemon binds ``node`` (the public key) so each
line says which node wrote it. Secrets never reach a logger: the seed lives
only inside ``Keypair``, whose repr shows the public key.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

__all__ = ["configure"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure(
    fmt: Literal["auto", "json", "console"] = "auto", level: str = "info", *, node: str | None = None
) -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if use_json:
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    if node is not None:
        structlog.contextvars.bind_contextvars(node=node)
