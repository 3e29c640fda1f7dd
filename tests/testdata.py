"""Where the shared real-world test data lives: ../shared/testdata beside the checkout."""

from __future__ import annotations

from pathlib import Path

TESTDATA = Path(__file__).resolve().parent.parent.parent / "shared" / "testdata"
PUBNET_ENVELOPES = TESTDATA / "pubnet-scp-envelopes.json"
FBAS = TESTDATA / "fbas"
