"""``scpd keygen``: make a node key."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from scpd.base.keys import Keypair
from scpd.errors import UsageError


def register(sub: Any) -> None:
    p = sub.add_parser("keygen", help="generate a node key (seed and public key)")
    p.add_argument("--out", type=Path, help="write the seed to this file (mode 0600) instead of stdout")
    p.set_defaults(handler=run_keygen)


def run_keygen(args: argparse.Namespace) -> int:
    kp = Keypair.random()
    if args.out is None:
        print(f"seed: {kp.seed_strkey}")
    else:
        write_secret_file(args.out, kp.seed_strkey + "\n")
        print(f"seed: written to {args.out}")
    print(f"public key: {kp.public_key}")
    return 0


def write_secret_file(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only, refusing to overwrite."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{path}: already exists, not overwriting a key") from None
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    with os.fdopen(fd, "w") as f:
        f.write(text)
