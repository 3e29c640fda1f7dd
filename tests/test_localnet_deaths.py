"""localnet reports every node's death before it stops, whatever order the kernel reaps them in.

Seen once in a clean-clone suite run: both nodes of a broken network died together, node 2's process was
reaped while node 1's log reader was still reporting, and localnet stopped without saying why node 2 died.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from scpd.operator.localnet import Localnet


class DeadProcess:
    """A node process that has exited with ``code`` after writing ``lines`` to stderr."""

    def __init__(self, lines: list[bytes], code: int) -> None:
        self.returncode = code
        self.stderr = self._lines(lines)

    @staticmethod
    async def _lines(lines: list[bytes]) -> AsyncIterator[bytes]:
        for line in lines:
            yield line

    async def wait(self) -> int:
        return self.returncode


def test_every_death_is_reported_when_all_nodes_were_reaped_before_any_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = Localnet(tmp_path, 2)
    procs: dict[str, Any] = {name: DeadProcess([f"{name} is broken\n".encode()], 2) for name in ("node1", "node2")}
    net.procs = procs

    async def readers() -> None:
        await asyncio.gather(*(net._read(name, proc) for name, proc in procs.items()))

    asyncio.run(readers())
    err = capsys.readouterr().err
    for name in procs:
        assert f"localnet: {name} exited with code 2; last lines of {name}.log:" in err
        assert f"  [{name}] {name} is broken" in err
    assert net.all_died
