"""Rate limiters, chosen by URL scheme: ``memory://`` (one process), ``sqlite:///path`` (the
processes of one machine), ``redis://host:6379/0`` or ``rediss://`` (every node)."""

from __future__ import annotations

from trackd.embedded import sqlite_path
from trackd.errors import ConfigError
from trackd.limiter.base import Decision, Limiter

__all__ = ["Decision", "Limiter", "open_limiter"]


def open_limiter(url: str) -> Limiter:
    scheme, _, rest = url.partition("://")
    if scheme == "memory":
        from trackd.limiter.memory import MemoryLimiter

        return MemoryLimiter()
    if scheme == "sqlite":
        from trackd.limiter.sqlite import SQLiteLimiter

        return SQLiteLimiter(sqlite_path(rest))
    if scheme in ("redis", "rediss"):
        from trackd.limiter.redis import RedisLimiter  # MissingDriver without redis-py

        return RedisLimiter(url)
    raise ConfigError(f"unknown limiter URL scheme {scheme!r} in {url!r}")
