"""The embedded backends' files (trackd/embedded.py): the data dir is `0700` and every SQLite
file in it (the database, its `-wal` and `-shm`) and the processor lease `0600`, whatever the
umask, also when an older trackd left them wider."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from trackd import embedded
from trackd.embedded import FileLease, begin_immediate, connect


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask 022", "umask 000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def write(path: Path) -> None:
    conn = connect(path)
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert Path(f"{path}-wal").exists() and Path(f"{path}-shm").exists()
        assert {mode(Path(f"{path}{s}")) for s in ("", "-wal", "-shm")} == {0o600}
    finally:
        conn.close()


def test_a_new_data_dir_is_0700_and_its_database_files_0600(tmp_path: Path, umask: int) -> None:
    data = tmp_path / "new" / "data"
    write(data / "queue.db")
    assert mode(data) == 0o700
    assert mode(data / "queue.db") == 0o600


def test_a_data_dir_and_files_left_wider_are_tightened_at_the_next_open(tmp_path: Path) -> None:
    """As an older trackd left them: SQLite's own modes (0644 under umask 022), with the
    `-wal` and `-shm` of a connection still open."""
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o755)
    old = os.umask(0o022)
    try:
        older = sqlite3.connect(data / "trackd.db")
        older.execute("PRAGMA journal_mode=WAL")
        older.execute("CREATE TABLE t (x)")
    finally:
        os.umask(old)
    try:
        assert {mode(data / f"trackd.db{s}") for s in ("", "-wal", "-shm")} == {0o644}
        write(data / "trackd.db")
        assert mode(data) == 0o700
    finally:
        older.close()


def test_the_processor_lease_is_0600_in_a_0700_dir(tmp_path: Path, umask: int) -> None:
    lease = FileLease(tmp_path / "data" / "processor.lease")
    assert lease.try_acquire()
    try:
        assert mode(tmp_path / "data") == 0o700
        assert mode(tmp_path / "data" / "processor.lease") == 0o600
    finally:
        lease.release()


def test_a_database_in_the_working_directory_leaves_the_directory_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    os.chmod(tmp_path, 0o755)
    monkeypatch.chdir(tmp_path)
    write(Path("relative.db"))
    connect(":memory:").close()
    assert mode(tmp_path) == 0o755
    assert mode(tmp_path / "relative.db") == 0o600


def test_connections_opening_a_new_file_at_once_all_get_it_in_wal_mode(tmp_path: Path) -> None:
    """Turning a new file to WAL from several connections at once deadlocks on the lock upgrade,
    and SQLite answers one of them `database is locked` without waiting (a limiter opened by two
    processes at once failed so); `connect` waits it out."""
    rounds, openers = 100, 4
    barrier = threading.Barrier(openers)
    errors: list[BaseException] = []
    modes: list[str] = []

    def open_each_file() -> None:
        for n in range(rounds):
            barrier.wait()
            try:
                conn = connect(tmp_path / f"{n}.db", "OFF")
            except sqlite3.Error as exc:
                errors.append(exc)
                continue
            modes.append(conn.execute("PRAGMA journal_mode").fetchone()[0])
            conn.close()

    threads = [threading.Thread(target=open_each_file) for _ in range(openers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert modes == ["wal"] * rounds * openers


def test_begin_immediate_waits_for_another_connections_write_then_takes_the_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "q.db"
    holder, waiter = connect(path), connect(path)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")
    release = threading.Timer(0.2, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        begin_immediate(waiter)  # busy while the holder writes, then the lock is ours
        assert waiter.in_transaction
        waiter.execute("INSERT INTO t VALUES (2)")
        waiter.execute("COMMIT")
    finally:
        release.join()
    assert waiter.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (2,)]
    assert waiter.execute("PRAGMA busy_timeout").fetchone() == (30_000,)  # restored


def test_begin_immediate_gives_up_after_the_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded, "BUSY_TIMEOUT_SECONDS", 0.2)
    path = tmp_path / "q.db"
    holder, waiter = connect(path), connect(path)
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        begin_immediate(waiter)
    assert not waiter.in_transaction
    assert waiter.execute("PRAGMA busy_timeout").fetchone() == (200,)
    holder.execute("ROLLBACK")
