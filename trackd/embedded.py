"""SQLite connections for the embedded backends (queue, store, limiter) in the data dir.

The data dir holds every event, user and key hash: it is trackd's alone. The folder of each
embedded SQLite file is made `0700` (created so, or tightened when found wider) and the files
`0600`, whatever the umask: a database file is created `0600` before SQLite opens it, and
SQLite gives its `-wal` and `-shm` files the database file's mode; files left wider by an older
trackd are tightened at each open. The one folder never tightened is the working directory (a
relative ``sqlite:///name.db`` puts a file there: the folder is the user's, the file still
`0600`).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import stat
import time
from pathlib import Path

log = logging.getLogger(__name__)

BUSY_TIMEOUT_SECONDS = 30
WAL_RETRY_SECONDS = 0.005
#: `begin_immediate`'s first pause while another connection writes, and its longest.
BEGIN_FIRST_PAUSE_SECONDS, BEGIN_MAX_PAUSE_SECONDS = 0.00005, 0.001
DIR_MODE = 0o700
FILE_MODE = 0o600
#: The files SQLite keeps beside a WAL-mode database.
SIDE_FILES = ("-wal", "-shm", "-journal")


def connect(path: str | Path, synchronous: str = "FULL") -> sqlite3.Connection:
    """A WAL-mode connection usable from the one thread that owns it; autocommit mode, so every
    transaction is an explicit ``BEGIN``."""
    on_disk = str(path) != ":memory:"
    if on_disk:
        private_dir(Path(path).parent)
        private_file(Path(path))
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_SECONDS
    )
    _wal(conn)
    conn.execute(f"PRAGMA synchronous={synchronous}")
    if on_disk:
        for suffix in SIDE_FILES:
            with contextlib.suppress(FileNotFoundError):  # SQLite removes them as it likes
                _tighten(Path(f"{path}{suffix}"), FILE_MODE)
    return conn


def begin_immediate(conn: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE`` (the write lock, at once), waiting out another connection's write in
    short pauses, 50 µs doubling to 1 ms, for up to `BUSY_TIMEOUT_SECONDS`.

    SQLite's own busy handler (the ``timeout`` of `connect`) sleeps 1, 2, 5, 10, 15 ms and so on
    between its tries: the edge's group commit, finding the processor's 0.3 ms acknowledgement
    on the queue file, slept 8 to 18 ms behind it (issue 14's p99 at half rate: 99-136 such
    waits over 1 ms in 10 s, 7-10 with this). So the connection's busy timeout is off for this
    one statement, and the retries are ours. Only the writes a request waits for use it (the
    queue's group commit, the limiter); the processor's keep SQLite's handler, so that it
    yields the lock to the edge rather than race it for it."""
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        pause = BEGIN_FIRST_PAUSE_SECONDS
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
                if time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(2 * pause, BEGIN_MAX_PAUSE_SECONDS)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")


def _wal(conn: sqlite3.Connection) -> None:
    """Put the file in WAL mode, waiting out the other processes opening it.

    Two connections turning a new file to WAL at once can deadlock on the lock upgrade, and
    SQLite answers one of them ``SQLITE_BUSY`` at once rather than calling its busy handler
    (the ``timeout`` above); so the busy answer is retried here, for as long as that timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
        time.sleep(WAL_RETRY_SECONDS)


def private_dir(path: Path) -> None:
    """`path` exists and only its owner may enter it (but the working directory is left as
    it is)."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if path.resolve() != Path.cwd().resolve():
        _tighten(path, DIR_MODE)


def private_file(path: Path) -> None:
    """`path` exists and only its owner may read or write it.

    An existing file is never opened here: closing any descriptor of a file drops every POSIX
    lock this process holds on it, SQLite's included (its connections would lose their locks)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        _tighten(path, FILE_MODE)


def _tighten(path: Path, mode: int) -> None:
    if stat.S_IMODE(path.stat().st_mode) == mode:
        return
    try:
        os.chmod(path, mode)
    except PermissionError:  # not ours: say so, and keep going with what the owner chose
        log.warning("cannot make %s mode %o: it belongs to another user", path, mode)


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
        private_dir(self._path.parent)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        _tighten(self._path, FILE_MODE)
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
