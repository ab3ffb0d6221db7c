"""The scale-out engines of a bench run (NATS JetStream, Redis, PostgreSQL): the URLs of one
run's own stream, key prefix and schema, what the stream holds after SIGKILL, and cleaning up.

Each `Engines` names a JetStream stream ``TRACKDBENCH<tag>``, a Redis key prefix
``trackd-bench-<tag>:`` and a PostgreSQL schema ``bench_<tag>``, so that runs (and the tests and
other benches on the same engines) never share anything; `drop` removes all three. The servers
are those of ``TRACKD_BENCH_NATS``, ``TRACKD_BENCH_REDIS`` and ``TRACKD_BENCH_POSTGRES``
(default: this machine's, as tests/services.py knows them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

NATS = os.environ.get("TRACKD_BENCH_NATS", "nats://127.0.0.1:4222")
REDIS = os.environ.get("TRACKD_BENCH_REDIS", "redis://127.0.0.1:6379/0")
POSTGRES = os.environ.get("TRACKD_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
CHECK_CONSUMER = "benchcheck"  # reads the stream after SIGKILL; the processor's stays untouched
FETCH = 1000

T = TypeVar("T")


def reachable() -> list[str]:
    """The engines that do NOT answer a TCP connect (empty: all three are up)."""
    missing = []
    engines = (("NATS", NATS, 4222), ("Redis", REDIS, 6379), ("PostgreSQL", POSTGRES, 5432))
    for name, url, port in engines:
        parts = urlsplit(url.split(",")[0])
        try:
            socket.create_connection((parts.hostname or "127.0.0.1", parts.port or port), 1).close()
        except OSError:
            missing.append(name)
    return missing


def _run(job: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await job()

    return asyncio.run(main())


@dataclass
class Engines:
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    @property
    def stream(self) -> str:
        return f"TRACKDBENCH{self.tag.upper()}"

    @property
    def schema(self) -> str:
        return f"bench_{self.tag}"

    @property
    def prefix(self) -> str:
        return f"trackd-bench-{self.tag}:"

    def queue_url(self) -> str:
        return f"{NATS}/{self.stream}"

    def store_url(self) -> str:
        return f"{POSTGRES}?schema={self.schema}"

    def limiter_url(self) -> str:
        return f"{REDIS}?prefix={self.prefix}"

    def env(self) -> dict[str, str]:
        """`trackd`'s settings for this run's engines."""
        return {
            "TRACKD_QUEUE": self.queue_url(),
            "TRACKD_STORE": self.store_url(),
            "TRACKD_LIMITER": self.limiter_url(),
        }

    # -- after the run --

    def stream_request_ids(self) -> tuple[int, set[str]]:
        """The messages the stream holds and their ``Nats-Msg-Id`` (the envelope's request_id),
        read with a consumer of the bench's own."""
        return _run(self._stream_request_ids)

    async def _stream_request_ids(self) -> tuple[int, set[str]]:
        import nats
        from nats.js import api

        nc = await nats.connect(NATS)
        try:
            js = nc.jetstream(timeout=10)
            held = int((await js.stream_info(self.stream)).state.messages)
            sub = await js.pull_subscribe(
                f"{self.stream}.env.>",
                durable=CHECK_CONSUMER,
                stream=self.stream,
                config=api.ConsumerConfig(
                    ack_policy=api.AckPolicy.NONE, deliver_policy=api.DeliverPolicy.ALL
                ),
            )
            ids: set[str] = set()
            seen = 0
            while seen < held:
                try:
                    messages = await sub.fetch(FETCH, timeout=2)
                except TimeoutError:
                    break
                seen += len(messages)
                ids.update((m.headers or {}).get("Nats-Msg-Id", "") for m in messages)
            return held, ids
        finally:
            await nc.close()

    def acknowledged(self) -> _AckFloor:
        """A probe of the processor's ack floor (stream sequence; 0 before its first ack), on a
        connection and loop of its own; close it with ``probe.close()``."""
        return _AckFloor(self.stream)

    def count_events(self) -> tuple[int, int]:
        """(events rows, the processed_events counter) in this run's schema."""
        return _run(self._count_events)

    async def _count_events(self) -> tuple[int, int]:
        import asyncpg

        conn = await asyncpg.connect(POSTGRES, server_settings={"search_path": self.schema})
        try:
            rows = await conn.fetchval("SELECT count(*) FROM events")
            counted = await conn.fetchval(
                "SELECT coalesce(sum(value), 0) FROM counters WHERE name = 'processed_events'"
            )
            return int(rows), int(counted)
        finally:
            await conn.close()

    def drop(self) -> None:
        """The stream and its idempotency bucket, the schema, the keys under the prefix."""
        _run(self._drop)

    async def _drop(self) -> None:
        import asyncpg
        import nats
        from nats.js.errors import NotFoundError
        from redis.asyncio import Redis

        with contextlib.suppress(OSError, TimeoutError):
            nc = await nats.connect(NATS, connect_timeout=2, max_reconnect_attempts=0)
            try:
                for name in (self.stream, f"KV_{self.stream}_idempotency"):
                    with contextlib.suppress(NotFoundError):
                        await nc.jetstream().delete_stream(name)
            finally:
                await nc.close()
        with contextlib.suppress(OSError):
            conn = await asyncpg.connect(POSTGRES)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            finally:
                await conn.close()
        with contextlib.suppress(OSError):
            client: Any = Redis.from_url(REDIS)
            try:
                keys = [key async for key in client.scan_iter(match=self.prefix + "*")]
                if keys:
                    await client.delete(*keys)
            finally:
                await client.aclose()


class _AckFloor:
    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.loop = asyncio.new_event_loop()
        self.nc: Any = self.loop.run_until_complete(self._connect())

    async def _connect(self) -> Any:
        import nats

        return await nats.connect(NATS)

    async def _floor(self) -> int:
        from nats.js.errors import NotFoundError

        try:
            info = await self.nc.jetstream().consumer_info(self.stream, "processor")
        except NotFoundError:
            return 0
        return int(info.ack_floor.stream_seq)

    def __call__(self) -> int:
        return self.loop.run_until_complete(self._floor())

    def close(self) -> None:
        self.loop.run_until_complete(self.nc.close())
        self.loop.close()
