"""Stores, chosen by URL scheme: ``sqlite:///path`` (embedded), ``memory://``."""

from __future__ import annotations

from trackd.embedded import sqlite_path
from trackd.errors import ConfigError
from trackd.store.base import EventQuery, EventStore, WorkspaceStore

__all__ = ["EventQuery", "EventStore", "WorkspaceStore", "open_event_store", "open_workspace_store"]


def open_workspace_store(url: str) -> WorkspaceStore:
    scheme, _, rest = url.partition("://")
    if scheme == "sqlite":
        from trackd.store.sqlite import SQLiteWorkspaceStore

        return SQLiteWorkspaceStore(sqlite_path(rest))
    if scheme == "memory":
        from trackd.store.memory import MemoryWorkspaceStore

        return MemoryWorkspaceStore()
    raise ConfigError(f"unknown store URL scheme {scheme!r} in {url!r}")


def open_event_store(url: str) -> EventStore:
    scheme, _, rest = url.partition("://")
    if scheme == "sqlite":
        from trackd.store.sqlite_events import SQLiteEventStore

        return SQLiteEventStore(sqlite_path(rest))
    if scheme == "memory":  # SQLite's own in-memory database: the same SQL, no file
        from trackd.store.sqlite_events import SQLiteEventStore

        return SQLiteEventStore(":memory:")
    raise ConfigError(f"unknown store URL scheme {scheme!r} in {url!r}")
