"""The services the tests may need (NATS JetStream, Redis, PostgreSQL): whether each is running,
and `needs_service`, which skips a test when one is absent here and fails it under CI.

PostgreSQL's probe is `tests.contracts.postgres_db.available` (it knows the server to ask)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable

import pytest

IN_CI = bool(os.environ.get("CI"))

NATS_URL = "nats://127.0.0.1:4222"
REDIS_URL = "redis://127.0.0.1:6379/0"


def needs_service(name: str, available: Callable[[], bool]) -> pytest.MarkDecorator:
    """Skip when a service is absent locally; under CI its absence is a failure."""
    missing = not IN_CI and not available()
    return pytest.mark.skipif(missing, reason=f"{name} is not running here")


def port_open(port: int) -> bool:
    """Something listens on 127.0.0.1:`port`."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def nats_available() -> bool:
    return port_open(4222)


def redis_available() -> bool:
    return port_open(6379)


def redis_test_prefix() -> str:
    """A key prefix no other test (nor a real trackd on the same Redis) uses."""
    return f"trackd:test:{uuid.uuid4().hex}:"


async def flush_redis_prefix(prefix: str) -> None:
    """Deletes the keys under `prefix`, and nothing else: the Redis is shared."""
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
