"""Stores, chosen by URL scheme: ``sqlite:///path`` (embedded), ``memory://``."""

from __future__ import annotations

from trackd.embedded import sqlite_path
from trackd.errors import ConfigError
from trackd.store.base import WorkspaceStore

__all__ = ["WorkspaceStore", "open_workspace_store"]


def open_workspace_store(url: str) -> WorkspaceStore:
    scheme, _, rest = url.partition("://")
    if scheme == "sqlite":
        from trackd.store.sqlite import SQLiteWorkspaceStore

        return SQLiteWorkspaceStore(sqlite_path(rest))
    if scheme == "memory":
        from trackd.store.memory import MemoryWorkspaceStore

        return MemoryWorkspaceStore()
    raise ConfigError(f"unknown store URL scheme {scheme!r} in {url!r}")
