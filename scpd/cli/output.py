"""What the CLI prints besides one-line errors: strict JSON, and progress on a terminal.

JSON documents go to stdout and must parse with a strict parser (RFC 8259
has no ``Infinity`` or ``NaN``): a float that is not finite is printed as
``null``, which each command documents for the fields that can have it
(``heal_time`` of a scenario that never heals, for example).

Long work shows a progress bar (rich) on stderr, only when stderr is a
terminal: piped or captured output stays exactly the JSON or text it was.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

__all__ = ["Advance", "print_json", "progress", "strict_json"]


class Advance(Protocol):
    """Moves a progress bar: the work done so far; optionally what is being done now, and out of how much."""

    def __call__(self, done: int, what: str | None = None, total: int | None = None) -> None: ...


def strict_json(doc: Any, indent: int | None = 2, sort_keys: bool = False) -> str:
    """``doc`` as JSON any strict parser accepts: non-finite floats become null."""
    return json.dumps(_finite(doc), indent=indent, sort_keys=sort_keys, allow_nan=False)


def print_json(doc: Any, indent: int | None = 2, sort_keys: bool = False, flush: bool = False) -> None:
    print(strict_json(doc, indent, sort_keys), flush=flush)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


@contextmanager
def progress(description: str, total: int, stream: TextIO | None = None) -> Iterator[Advance | None]:
    """A transient progress bar on ``stream`` (default stderr) if it is a terminal, else None.

    The caller passes the returned callable (when not None) to the work,
    which calls it with the amount done so far.
    """
    out = sys.stderr if stream is None else stream
    if not out.isatty():
        yield None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(file=out), transient=True) as bar:
        task = bar.add_task(description, total=total)

        def advance(done: int, what: str | None = None, total: int | None = None) -> None:
            bar.update(task, completed=done, total=total, description=description if what is None else what)

        yield advance
