"""SQLite connections for the embedded backends (queue, store, limiter) in the data dir."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path

BUSY_TIMEOUT_SECONDS = 30


def connect(path: str | Path, synchronous: str = "FULL") -> sqlite3.Connection:
    """A WAL-mode connection usable from the one thread that owns it; autocommit mode, so every
    transaction is an explicit ``BEGIN``."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_SECONDS
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


def sqlite_path(rest: str) -> str:
    """The file of ``sqlite:///relative.db`` or ``sqlite:////absolute.db`` (after the scheme)."""
    return rest[1:] if rest.startswith("/") else rest


class FileLease:
    """An exclusive lease on a file (``flock``): one holder per data dir, released on death.

    The embedded processor runs in whichever process holds the lease, so `serve --workers N`
    and a stray `trackd worker` on the same data dir never process twice, and when the holder
    dies (even by `kill -9`) another process takes over at its next try.
    """

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
