"""Recording benchmark figures in docs/benchmarks.md, one section per script."""

from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"


def machine_header() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        "# Benchmarks\n\n"
        "Figures are produced by the scripts in `bench/`; each script prints its table\n"
        "and, with `--write`, replaces its own section below. Tests never assert on\n"
        "speed; this page is where speed is recorded.\n\n"
        f"Machine: {os.cpu_count()} cores (nproc), {cpu}, {platform.system()}, Python {platform.python_version()}.\n"
    )


def write_section(title: str, body: str, command: str | None = None) -> None:
    """Replace (or append) the ``## title`` section of docs/benchmarks.md."""
    heading = f"## {title}"
    text = DOC.read_text() if DOC.exists() else machine_header()
    measured = f"Measured {time.strftime('%Y-%m-%d')}" + (f" with `{command}`" if command else "") + "."
    section = f"{heading}\n\n{measured}\n\n{body}\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
