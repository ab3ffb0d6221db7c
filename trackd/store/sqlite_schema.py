"""The embedded store's schema: versioned migrations, as PostgreSQL's (`postgres_schema`).

Migrations are the files ``migrations/sqlite/NNNN_name.sql``, applied in order, each once (the
`schema_migrations` table records it) and each in one ``BEGIN IMMEDIATE`` transaction that
looks at that table first, so the processes that open one data dir together (the edge, its
processor child, a CLI command) apply each file exactly once. 0001 makes its tables only if
they are missing, so a data dir from before versioned migrations takes it as a no-op.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

from trackd.store.migrations import migrations as versions

_BOOKKEEPING = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
    "name TEXT NOT NULL, applied_at REAL NOT NULL)"
)


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every migration, in order."""
    return versions("sqlite")


def statements(sql: str) -> Iterator[str]:
    """The statements of a script, whole (`sqlite3.complete_statement` knows where triggers and
    strings end), without the comments between them."""
    pending = ""
    for line in sql.splitlines(keepends=True):
        if not pending and (not line.strip() or line.lstrip().startswith("--")):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if pending.strip():
        raise ValueError(f"an unfinished statement ends the migration: {pending[:80]!r}")


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations not applied yet (`conn` in autocommit mode, as
    `trackd.embedded.connect` makes it); returns the names of those applied now."""
    conn.execute(_BOOKKEEPING)
    applied = []
    for version, name, sql in migrations():
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,))
            if done.fetchone() is None:
                for statement in statements(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name, time.time())
                )
                applied.append(name)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return applied
