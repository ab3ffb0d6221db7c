"""SQLite connections for the embedded backends (queue, store, limiter) in the data dir."""

from __future__ import annotations

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
