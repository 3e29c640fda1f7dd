"""The data directory lock: one process per data directory (rule 3 of docs/architecture.md).

Two live processes on one data directory would sign with one key from two
states: exactly how a validator contradicts itself. The node therefore takes
an exclusive ``flock`` on ``scpd.lock`` in its data directory before it opens
the ledger and holds it until it exits. The kernel drops the lock when the
process dies, however it dies (kill -9 included), so a stale lock file never
blocks a restart; only a live holder does. The holder writes its PID into the
file so that the process refused can say who holds it.

Readers (``scpd ledger verify``/``show``) do not take the lock: they only
read, and SQLite's WAL mode lets them read beside the writer. Anything that
writes to a data directory outside the node takes it, like the node.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import Self

from scpd.errors import LedgerError

__all__ = ["LOCK_FILENAME", "DataDirInUse", "DataDirLock"]

LOCK_FILENAME = "scpd.lock"


class DataDirInUse(LedgerError):
    """Another live process holds the data directory."""


class DataDirLock:
    """An exclusive, kernel-released lock on a data directory; create with :meth:`acquire`."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, data_dir: Path) -> DataDirLock:
        """Lock ``data_dir`` (created if missing) or raise :class:`DataDirInUse` naming the holder."""
        path = data_dir / LOCK_FILENAME
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            # Not O_TRUNC: the file may be another process's, with its PID in it.
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise LedgerError(f"{path}: cannot open the data directory lock: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = "another process" if holder is None else f"process {holder}"
            raise DataDirInUse(
                f"{data_dir}: the data directory is in use by {who} (lock {path}); one node per data directory"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise LedgerError(f"{path}: cannot lock the data directory: {exc.strerror}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        """Unlock (closing the file drops the flock); the file stays, empty of meaning without a holder."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    """The PID the holder wrote, if it has written one yet."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
