"""The embedded store's versioned migrations (trackd/store/sqlite_schema.py)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from trackd.embedded import connect
from trackd.store import sqlite_schema
from trackd.store.sqlite_schema import migrate, migrations, statements

NAMES = [name for _, name, _ in migrations()]


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


def test_a_new_file_gets_every_migration_once(tmp_path: Path) -> None:
    conn = connect(tmp_path / "trackd.db")
    assert migrate(conn) == NAMES
    assert migrate(conn) == []
    versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == [v for v, _, _ in migrations()]
    conn.close()
    assert {"workspaces", "meta", "users", "events", "processed"} <= tables(tmp_path / "trackd.db")


def test_a_data_dir_from_before_versioning_keeps_its_rows(tmp_path: Path) -> None:
    """0001 makes only what is missing: the rows an older trackd wrote stay."""
    path = tmp_path / "trackd.db"
    _, _, first = migrations()[0]
    with sqlite3.connect(path) as old:
        old.executescript(first)  # what an older trackd ran on every open
        old.execute("INSERT INTO workspaces VALUES ('WS1', '{}')")
        old.execute("UPDATE meta SET value = 7 WHERE key = 'revision'")
    conn = connect(path)
    assert migrate(conn) == NAMES
    assert conn.execute("SELECT id FROM workspaces").fetchall() == [("WS1",)]
    assert conn.execute("SELECT value FROM meta").fetchall() == [(7,)]
    conn.close()


def test_a_failing_migration_leaves_nothing_of_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = [*migrations(), (9999, "9999_broken.sql", "CREATE TABLE t (a);\nSELECT nope();\n")]
    monkeypatch.setattr(sqlite_schema, "migrations", lambda: broken)
    conn = connect(tmp_path / "trackd.db")
    with pytest.raises(sqlite3.OperationalError, match="no such function: nope"):
        migrate(conn)
    assert "t" not in tables(tmp_path / "trackd.db")
    assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone() == (
        migrations()[-1][0],
    )
    conn.close()


def test_statements_are_split_whole_and_comments_dropped() -> None:
    sql = (
        "-- a comment\n"
        "CREATE TABLE a (x TEXT DEFAULT ';');\n\n"
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  SELECT 1;\n  SELECT 2;\nEND;\n"
    )
    assert list(statements(sql)) == [
        "CREATE TABLE a (x TEXT DEFAULT ';');\n",
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  SELECT 1;\n  SELECT 2;\nEND;\n",
    ]
    with pytest.raises(ValueError, match="an unfinished statement"):
        list(statements("CREATE TABLE b (x"))


OPEN = """
import sys
from trackd.embedded import connect
from trackd.store.sqlite_schema import migrate
print(len(migrate(connect(sys.argv[1]))))
"""


def test_processes_opening_one_file_together_apply_each_migration_once(tmp_path: Path) -> None:
    path = str(tmp_path / "trackd.db")
    procs = [
        subprocess.Popen([sys.executable, "-c", OPEN, path], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    counts = [int(p.communicate(timeout=60)[0]) for p in procs]
    # each migration is one transaction: processes may share the list, never apply one twice
    assert sum(counts) == len(NAMES)
    with sqlite3.connect(path) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == [v for v, _, _ in migrations()]


def test_0008_rebuilds_events_without_the_unique_key_keeping_rows_and_positions(
    tmp_path: Path,
) -> None:
    """An upgraded data dir keeps every event at its position, and the next event is stored
    after the highest position ever given (a tail's cursor never sees a position again)."""
    path = tmp_path / "trackd.db"
    conn = connect(path)
    conn.execute(sqlite_schema._BOOKKEEPING)
    for version, name, sql in migrations():
        if version < 8:
            for statement in statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (version, name))
    row = "INSERT INTO events (event_id, workspace, customer_id, action, event_time, doc) "
    rows = [("e1", "ada"), ("e2", "bob"), ("e3", "cy")]
    conn.executemany(row + "VALUES (?, 'WS1', ?, 'Opened', 5, '{}')", rows)
    conn.execute("DELETE FROM events WHERE event_id = 'e3'")  # the counter stays at 3
    assert migrate(conn) == [
        "0008_events_event_id_not_unique.sql",
        "0009_request_log_erased.sql",
    ]
    assert conn.execute("SELECT seq, event_id, customer_id FROM events").fetchall() == [
        (1, "e1", "ada"),
        (2, "e2", "bob"),
    ]
    conn.execute(row + "VALUES ('e1', 'WS1', 'ada', 'Opened', 6, '{}')")  # no unique key now
    assert conn.execute("SELECT max(seq) FROM events").fetchone() == (4,)
    indexes = {
        name
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'events' "
                                    "AND type = 'index'")
    }  # fmt: skip
    assert indexes == {"events_by_workspace", "events_by_customer", "events_by_action"}
    conn.close()
