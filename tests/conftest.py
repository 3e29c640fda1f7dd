"""Project-wide pytest options.

``--slow`` (or ``SCPD_SLOW=1`` in the environment) asks long tests to do
more work, e.g. the simulator's property tests run many more seeds. Nothing
is skipped without it: tests read the ``slow`` fixture and size themselves.
"""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", default=False, help="run long tests at full size (or SCPD_SLOW=1)")


@pytest.fixture(scope="session")
def slow(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--slow")) or os.environ.get("SCPD_SLOW", "") not in ("", "0")
