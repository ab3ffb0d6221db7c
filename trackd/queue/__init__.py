"""Durable queues, chosen by URL scheme: ``sqlite:///path`` (embedded), ``nats://``, ``memory://``."""

from __future__ import annotations

from trackd.embedded import sqlite_path
from trackd.errors import ConfigError
from trackd.queue.base import Delivery, Queue
from trackd.settings import Settings

__all__ = ["Delivery", "Queue", "open_queue"]


def open_queue(url: str, settings: Settings) -> Queue:
    """A queue for a URL; the adapter module is imported only when its scheme is asked for."""
    scheme, _, rest = url.partition("://")
    if scheme == "sqlite":
        from trackd.queue.sqlite import SQLiteQueue

        return SQLiteQueue(
            sqlite_path(rest),
            max_pending=settings.max_pending_writes,
            dedupe_seconds=settings.idempotency_ttl_seconds,
        )
    if scheme == "memory":
        from trackd.queue.memory import MemoryQueue

        return MemoryQueue(dedupe_seconds=settings.idempotency_ttl_seconds)
    if scheme == "nats":
        from trackd.queue.nats import NatsQueue

        return NatsQueue(url, dedupe_seconds=settings.idempotency_ttl_seconds)
    raise ConfigError(
        f"unknown queue URL scheme {scheme!r} in {url!r} (use sqlite://, nats:// or memory://)"
    )
