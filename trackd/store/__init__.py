"""Stores, chosen by URL scheme: ``sqlite:///path`` (embedded), ``memory://``, and
``postgresql://user@host:port/database[?schema=name]`` (scale-out; ``postgres://`` too)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trackd.embedded import sqlite_path
from trackd.errors import ConfigError, MissingDriver
from trackd.store.base import EventQuery, EventStore, RequestLog, WorkspaceStore

if TYPE_CHECKING:
    from trackd.store.postgres import PostgresStore

__all__ = [
    "EventQuery",
    "EventStore",
    "RequestLog",
    "WorkspaceStore",
    "migrate",
    "open_event_store",
    "open_request_log",
    "open_workspace_store",
]

POSTGRES_SCHEMES = ("postgresql", "postgres")


def open_workspace_store(url: str) -> WorkspaceStore:
    scheme, _, rest = url.partition("://")
    if scheme == "sqlite":
        from trackd.store.sqlite import SQLiteWorkspaceStore

        return SQLiteWorkspaceStore(sqlite_path(rest))
    if scheme == "memory":
        from trackd.store.memory import MemoryWorkspaceStore

        return MemoryWorkspaceStore()
    if scheme in POSTGRES_SCHEMES:
        return _postgres(url)
    raise ConfigError(f"unknown store URL scheme {scheme!r} in {url!r}")


def open_event_store(url: str) -> EventStore:
    scheme, _, rest = url.partition("://")
    if scheme == "sqlite":
        from trackd.store.sqlite_events import SQLiteEventStore

        return SQLiteEventStore(sqlite_path(rest))
    if scheme == "memory":  # SQLite's own in-memory database: the same SQL, no file
        from trackd.store.sqlite_events import SQLiteEventStore

        return SQLiteEventStore(":memory:")
    if scheme in POSTGRES_SCHEMES:
        return _postgres(url)
    raise ConfigError(f"unknown store URL scheme {scheme!r} in {url!r}")


# -- Request log (issue 13 item 1) --


def open_request_log(url: str) -> RequestLog:
    """The request log of the store at `url`: its tables beside the event store's."""
    scheme, _, rest = url.partition("://")
    if scheme == "sqlite":
        from trackd.store.sqlite_requests import SQLiteRequestLog

        return SQLiteRequestLog(sqlite_path(rest))
    if scheme == "memory":
        from trackd.store.sqlite_requests import SQLiteRequestLog

        return SQLiteRequestLog(":memory:")
    if scheme in POSTGRES_SCHEMES:
        _postgres(url)  # the driver's message when asyncpg is missing
        from trackd.store.postgres_requests import PostgresRequestLog

        return PostgresRequestLog(url)
    raise ConfigError(f"unknown store URL scheme {scheme!r} in {url!r}")


def _postgres(url: str) -> PostgresStore:
    try:
        from trackd.store.postgres import PostgresStore
    except ModuleNotFoundError as exc:
        if exc.name != "asyncpg":
            raise
        raise MissingDriver("postgresql", "asyncpg", "postgres") from exc
    return PostgresStore(url)


async def migrate(url: str) -> list[str]:
    """Create or upgrade a store's tables; returns the migrations applied now (PostgreSQL's are
    versioned; the embedded stores bring their tables up to date whenever they open)."""
    if url.partition("://")[0] in POSTGRES_SCHEMES:
        return await _postgres(url).migrate()
    for store in (open_workspace_store(url), open_event_store(url)):
        await store.open()
        await store.aclose()
    return []
