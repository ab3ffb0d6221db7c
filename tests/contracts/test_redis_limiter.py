"""What only the Redis limiter promises, beyond the Limiter contract of test_limiter.py: several
nodes share one window, the buckets are a hash that expires, one EVALSHA per request, the
server's clock, and failures that come quickly as BackendError."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.clock import Clock
from tests.services import (
    REDIS_URL,
    flush_redis_prefix,
    needs_service,
    redis_available,
    redis_test_prefix,
)
from trackd.errors import BackendError
from trackd.limiter import open_limiter
from trackd.limiter.base import Decision
from trackd.limiter.memory import MemoryLimiter
from trackd.limiter.redis import READY_TIMEOUT_SECONDS, SCRIPT, RedisLimiter

pytestmark = pytest.mark.anyio
needs_redis = needs_service("redis", redis_available)

NOW = 1_700_000_000


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    prefix = redis_test_prefix()
    yield prefix
    await flush_redis_prefix(prefix)


@pytest.fixture
async def admin() -> AsyncIterator[Any]:
    """A plain client to look at what the limiter left in Redis."""
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


async def opened(url: str, clock: Clock | None = None) -> RedisLimiter:
    limiter = RedisLimiter(url, clock=clock)
    await limiter.open()
    return limiter


async def server_ms(admin: Any) -> int:
    seconds, microseconds = await admin.time()
    return int(seconds) * 1000 + int(microseconds) // 1000


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def redis_proxy(
    *, stall_first: bool = False, losing: asyncio.Event | None = None
) -> AsyncIterator[tuple[str, list[asyncio.StreamWriter]]]:
    """A TCP proxy to the real Redis: yields its URL (REDIS_URL's database) and the client
    connections it accepted. With `stall_first`, the first connection is read and never
    answered. Once `losing` is set, the next reply is not passed on: its connection is closed
    instead and `losing` cleared (that reply only)."""
    real = urlsplit(REDIS_URL)
    seen: list[asyncio.StreamWriter] = []
    upstream: list[asyncio.StreamWriter] = []

    async def pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if writer is client and losing is not None and losing.is_set():
                    losing.clear()
                    break  # the reply is dropped with the connection
                writer.write(data)
                await writer.drain()
        writer.close()
        client.close()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(writer)
        if stall_first and len(seen) == 1:
            return  # the stalled one: read, never answered
        up_reader, up_writer = await asyncio.open_connection(real.hostname, real.port or 6379)
        upstream.append(up_writer)
        await asyncio.gather(pipe(reader, up_writer, writer), pipe(up_reader, writer, writer))

    proxy = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    try:
        yield f"redis://127.0.0.1:{port}{real.path or '/0'}", seen
    finally:
        for writer in seen + upstream:
            writer.close()
        proxy.close()
        await proxy.wait_closed()


@needs_redis
async def test_two_nodes_on_one_redis_never_admit_more_than_the_limit_together(
    prefix: str,
) -> None:
    # No clock: both nodes count on the Redis server's time, as in production. 1,200 acquires
    # at once open each pool's connections together: on a loaded machine (CI beside other
    # work) the 1 s default connect timeout is not what this test is about.
    slow = "socket_connect_timeout=10&socket_timeout=10"
    nodes = [await opened(f"{REDIS_URL}?prefix={prefix}&{slow}") for _ in range(2)]
    try:
        decisions = await asyncio.gather(
            *(node.acquire("WS1", 1, 500) for node in nodes for _ in range(600))
        )
        assert sum(d.allowed for d in decisions) == 500
        assert sorted(d.remaining for d in decisions if d.allowed) == list(range(500))
        for node in nodes:
            assert (await node.peek("WS1", 500))[:3] == (True, 500, 0)
    finally:
        for node in nodes:
            await node.aclose()


@needs_redis
async def test_buckets_are_a_hash_of_seconds_that_expires_61_seconds_after_the_last_write(
    prefix: str, admin: Any
) -> None:
    clock = Clock(NOW)
    limiter = await opened(f"{REDIS_URL}?prefix={prefix}", clock)
    key = prefix + "WS1"
    try:
        assert await limiter.peek("WS1", 10) == Decision(True, 10, 10, 0)
        assert await admin.exists(key) == 0  # a peek writes nothing
        await limiter.acquire("WS1", 4, 10)
        clock.advance(20)
        await limiter.acquire("WS1", 2, 10)
        before = await server_ms(admin)
        await limiter.acquire("WS1", 1, 10)
        after = await server_ms(admin)
        assert await admin.hgetall(key) == {str(NOW): "4", str(NOW + 20): "3"}
        assert before + 61_000 <= await admin.pexpiretime(key) <= after + 61_000
        clock.advance(40)  # the first bucket leaves the window and the hash
        assert await limiter.peek("WS1", 10) == Decision(True, 10, 7, 20)
        assert await admin.hgetall(key) == {str(NOW + 20): "3"}
        clock.advance(20)
        assert await limiter.peek("WS1", 10) == Decision(True, 10, 10, 0)
        assert await admin.exists(key) == 0
    finally:
        await limiter.aclose()


@needs_redis
async def test_without_a_clock_the_redis_servers_time_stamps_the_buckets(
    prefix: str, admin: Any
) -> None:
    limiter = await opened(f"{REDIS_URL}?prefix={prefix}")
    try:
        before = (await admin.time())[0]
        assert await limiter.acquire("WS1", 4, 10) == Decision(True, 10, 6, 60)
        after = (await admin.time())[0]
        [(second, count)] = (await admin.hgetall(prefix + "WS1")).items()
        assert before <= int(second) <= after
        assert count == "4"
        assert (await limiter.acquire("WS1", 7, 10))[:3] == (False, 10, 6)
    finally:
        await limiter.aclose()


STEPS = st.lists(
    st.tuples(
        st.sampled_from([0, 0.5, 1, 20, 59, 60, 61, -3]) | st.integers(0, 130),  # clock step
        st.sampled_from(["acquire", "acquire", "refund"]),
        st.sampled_from(["WS1", "WS2"]),
        st.integers(0, 12),  # cost (an acquire of 0 is a peek)
        st.integers(0, 15),  # limit
    ),
    max_size=40,
)
Step = tuple[float, str, str, int, int]


async def _decisions_of_both(steps: list[Step]) -> None:
    clock = Clock(NOW)
    prefix = redis_test_prefix()
    reference = MemoryLimiter(clock=clock)  # trackd.limiter.window, in Python
    limiter = await opened(f"{REDIS_URL}?prefix={prefix}", clock)
    try:
        for advance, op, key, cost, limit in steps:
            clock.advance(advance)
            if op == "refund":
                await reference.refund(key, cost)
                await limiter.refund(key, cost)
            expected = await reference.acquire(key, cost, limit)
            assert await limiter.acquire(key, cost, limit) == expected, (clock(), key, cost)
    finally:
        await limiter.aclose()
        await flush_redis_prefix(prefix)


@needs_redis
@settings(max_examples=100, deadline=None)
@given(STEPS)
# A clock that steps back puts a bucket after a newer one in the hash (listpack order).
@example(
    [
        (0, "acquire", "WS1", 2, 10),
        (-3, "acquire", "WS1", 2, 10),
        (0, "acquire", "WS1", 1, 10),
        (0, "acquire", "WS1", 9, 10),
    ]
)
# A refund takes from the newest buckets first.
@example([(0, "acquire", "WS1", 4, 10), (1, "acquire", "WS1", 3, 10), (0, "refund", "WS1", 5, 10)])
def test_the_lua_scripts_decide_and_refund_exactly_like_the_shared_window(
    steps: list[Step],
) -> None:
    asyncio.run(_decisions_of_both(steps))


async def _commands_of(admin: Any, client_name: str, run: Any) -> tuple[list[str], list[Decision]]:
    """The commands the clients named `client_name` send while `run()` runs, seen by MONITOR."""
    seen: list[dict[str, Any]] = []
    marker = f"end-{uuid.uuid4().hex}"
    async with admin.monitor() as monitor:

        async def collect() -> None:
            while True:
                seen.append(await monitor.next_command())

        collector = asyncio.create_task(collect())
        await admin.ping()  # MONITOR is on before the limiter sends anything
        decisions = await run()
        ours = {c["addr"] for c in await admin.client_list() if c["name"] == client_name}
        await admin.echo(marker)  # MONITOR reports in execution order: ours came before
        for _ in range(500):
            if any(entry["command"] == f"ECHO {marker}" for entry in seen):
                break
            await asyncio.sleep(0.01)
        collector.cancel()
    commands = [
        entry["command"]
        for entry in seen
        if f"{entry['client_address']}:{entry['client_port']}" in ours
    ]
    return commands, decisions


@needs_redis
async def test_each_request_is_one_evalsha_and_the_script_survives_script_flush(
    prefix: str, admin: Any
) -> None:
    name = f"trackd-test-{uuid.uuid4().hex[:12]}"
    limiter = await opened(f"{REDIS_URL}?prefix={prefix}&client_name={name}", Clock(NOW))

    async def run() -> list[Decision]:
        await admin.script_flush()
        decisions = [await limiter.acquire("WS1", 1, 10) for _ in range(3)]
        await admin.script_flush()  # e.g. a Redis restart without persistence of scripts
        decisions += [await limiter.acquire("WS1", 1, 10) for _ in range(2)]
        return decisions

    try:
        commands, decisions = await _commands_of(admin, name, run)
    finally:
        await limiter.aclose()
    assert [d.remaining for d in decisions] == [9, 8, 7, 6, 5]  # the counts survived
    names = [" ".join(command.split(" ", 2)[:2]) for command in commands]
    scripts = [n for n in names if n.split(" ")[0] in ("EVAL", "EVALSHA", "SCRIPT")]
    loads = scripts.count("SCRIPT LOAD")
    assert not [n for n in scripts if n.startswith("EVAL ")]  # the body never travels per call
    # At most one load per flush (fewer if another client loaded it first), and one EVALSHA
    # per request plus one that found no script before each load.
    assert loads <= 2, commands
    assert sum(n.startswith("EVALSHA") for n in scripts) == 5 + loads
    assert len(scripts) == 5 + 2 * loads
    assert await admin.script_exists(hashlib.sha1(SCRIPT.encode()).hexdigest()) == [True]


@needs_redis
async def test_after_redis_drops_its_connections_an_acquire_counts_once(
    prefix: str, admin: Any
) -> None:
    """Killed connections (a Redis restart, its idle `timeout`) are either noticed when the
    pool hands them out, or fail the first run, which runs once more on a new connection: the
    acquire counts exactly once either way, and refunds work again after it."""
    name = f"trackd-test-{uuid.uuid4().hex[:12]}"
    limiter = await opened(f"{REDIS_URL}?prefix={prefix}&client_name={name}", Clock(NOW))
    try:
        assert await limiter.acquire("WS1", 2, 10) == Decision(True, 10, 8, 60)
        await limiter.refund("WS1", 1)
        ours = [c["id"] for c in await admin.client_list() if c["name"] == name]
        assert len(ours) == 2  # one connection for acquires, one for refunds
        for client_id in ours:
            await admin.client_kill_filter(_id=client_id)
        assert await limiter.acquire("WS1", 1, 10) == Decision(True, 10, 8, 60)
        try:  # on a killed connection not noticed yet it fails, and is not run again
            await limiter.refund("WS1", 1)
            given = 1
        except BackendError:
            given = 0
        assert await limiter.peek("WS1", 10) == Decision(True, 10, 8 + given, 60)
        await limiter.refund("WS1", 1)  # on a new connection in any case
        assert (await limiter.peek("WS1", 10)).remaining == 9 + given
    finally:
        await limiter.aclose()


@needs_redis
async def test_a_refund_whose_reply_is_lost_fails_and_is_never_run_again(prefix: str) -> None:
    """Redis ran the refund but its reply never came back (the connection dropped right after):
    the refund fails with BackendError and is not run again, so it gave back once, not twice."""
    losing = asyncio.Event()
    async with redis_proxy(losing=losing) as (url, _):
        limiter = await opened(f"{url}?prefix={prefix}", Clock(NOW))
        try:
            assert await limiter.acquire("WS1", 3, 10) == Decision(True, 10, 7, 60)
            await limiter.refund("WS1", 1)  # the refunds' connection is open (setup answered)
            losing.set()
            with pytest.raises(BackendError):
                await limiter.refund("WS1", 1)
            assert not losing.is_set()  # a reply was lost
            assert await limiter.peek("WS1", 10) == Decision(True, 10, 9, 60)  # given back once
            await limiter.refund("WS1", 1)  # a new connection: refunds work again
            assert await limiter.peek("WS1", 10) == Decision(True, 10, 10, 0)  # nothing counted
        finally:
            await limiter.aclose()


@needs_redis
async def test_open_limiter_takes_the_key_prefix_from_the_url_and_defaults_to_trackd_rl(
    prefix: str, admin: Any
) -> None:
    custom = open_limiter(f"{REDIS_URL}?prefix={prefix}")
    default = open_limiter(REDIS_URL)
    assert isinstance(custom, RedisLimiter)
    assert isinstance(default, RedisLimiter)
    key = f"test-{uuid.uuid4().hex}"  # a workspace no real trackd on this Redis has
    await custom.open()
    await default.open()
    try:
        await custom.acquire(key, 2, 10)
        await default.acquire(key, 3, 10)
        assert list((await admin.hgetall(prefix + key)).values()) == ["2"]
        assert list((await admin.hgetall("trackd:rl:" + key)).values()) == ["3"]
    finally:
        await admin.delete("trackd:rl:" + key)
        await custom.aclose()
        await default.aclose()


async def test_an_unreachable_redis_makes_acquire_raise_backend_error() -> None:
    port = closed_port()
    limiter = await opened(f"redis://:s3cret@127.0.0.1:{port}/0")
    try:
        for _ in range(2):  # and again: the limiter is not stuck
            with pytest.raises(BackendError) as caught:
                await limiter.acquire("WS1", 1, 10)
            message = str(caught.value)
            assert message.startswith(f"rate limiter at redis://:***@127.0.0.1:{port}/0: ")
            assert "s3cret" not in message
    finally:
        await limiter.aclose()


async def test_a_redis_that_stops_answering_makes_acquire_raise_backend_error() -> None:
    """A TCP server that accepts and never replies stands in for a hung Redis (a real one
    cannot be made to hang for this test alone without stalling everyone else's). Without
    the adapter's socket timeout the acquire would wait forever."""
    writers: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    limiter = await opened(f"redis://127.0.0.1:{port}/0")
    try:
        with pytest.raises(BackendError, match=f"^rate limiter at redis://127.0.0.1:{port}/0: "):
            await limiter.acquire("WS1", 1, 10)
    finally:
        await limiter.aclose()
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


@needs_redis
async def test_a_pipeline_cut_short_by_the_timeout_fails_its_acquires_and_the_next_reconnects(
    prefix: str,
) -> None:
    """The acquires' pipeline is timed as a whole: a connection whose replies never come fails
    every acquire of its batch once (not one timeout after another), is dropped, and the next
    acquire takes a new connection. A proxy stalls the first connection and forwards the rest
    to the real Redis."""
    async with redis_proxy(stall_first=True) as (url, seen):
        limiter = await opened(f"{url}?prefix={prefix}")
        try:
            began = time.monotonic()
            results = await asyncio.gather(
                *(limiter.acquire("WS1", 1, 10) for _ in range(20)), return_exceptions=True
            )
            waited = time.monotonic() - began
            assert [type(r) for r in results] == [BackendError] * 20
            assert all("no reply within 1 s" in str(r) for r in results), results
            assert waited < 5, waited  # one timeout for the batch, not twenty
            decision = await limiter.acquire("WS1", 1, 10)  # a new connection, through to Redis
            assert (decision.allowed, decision.remaining) == (True, 9)
            assert len(seen) == 2
        finally:
            await limiter.aclose()


async def test_an_unreachable_redis_is_not_ready() -> None:
    limiter = await opened(f"redis://127.0.0.1:{closed_port()}/0")
    try:
        assert [await limiter.ready() for _ in range(2)] == [False, False]  # and it raises nothing
    finally:
        await limiter.aclose()


@needs_redis
async def test_a_live_redis_is_ready_until_the_limiter_is_closed(prefix: str) -> None:
    limiter = await opened(f"{REDIS_URL}?prefix={prefix}")
    assert await limiter.ready() is True
    await limiter.aclose()
    assert await limiter.ready() is False


async def test_a_redis_that_stops_answering_is_not_ready_within_the_timeout() -> None:
    writers: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    limiter = await opened(f"redis://127.0.0.1:{port}/0")
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS * 5):  # generous: it answers, False
            assert await limiter.ready() is False
    finally:
        await limiter.aclose()
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_acquire_before_open_raises_backend_error() -> None:
    limiter = RedisLimiter(f"redis://127.0.0.1:{closed_port()}/0")
    with pytest.raises(BackendError) as caught:
        await limiter.acquire("WS1", 1, 10)
    assert str(caught.value) == "the rate limiter is not open"
    assert await limiter.ready() is False
    await limiter.aclose()


def test_a_redis_url_without_redis_py_installed_names_the_extra_to_install() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "from trackd.errors import MissingDriver\n"
        "from trackd.limiter import open_limiter\n"
        "try:\n"
        "    open_limiter('redis://127.0.0.1:6379/0')\n"
        "except MissingDriver as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout == (
        "the redis:// backend needs the 'redis' package: run `pip install 'trackd[redis]'`\n"
    )


@needs_redis
async def test_concurrent_acquires_go_as_one_pipeline_and_are_decided_in_the_order_asked(
    prefix: str, admin: Any
) -> None:
    name = f"trackd-test-{uuid.uuid4().hex[:12]}"
    limiter = await opened(f"{REDIS_URL}?prefix={prefix}&client_name={name}", Clock(NOW))

    async def run() -> list[Decision]:
        await limiter.acquire("WS1", 0, 10)  # the script is loaded, a connection open
        return list(await asyncio.gather(*(limiter.acquire("WS1", 1, 10) for _ in range(20))))

    try:
        commands, decisions = await _commands_of(admin, name, run)
        connections = [c for c in await admin.client_list() if c["name"] == name]
    finally:
        await limiter.aclose()
    assert [(d.allowed, d.remaining) for d in decisions] == [
        *((True, 9 - i) for i in range(10)),
        *((False, 0) for _ in range(10)),
    ]
    evalshas = [c for c in commands if c.startswith("EVALSHA")]
    assert len(evalshas) == 21  # one per acquire, the body never sent
    assert len(connections) == 1  # the twenty went together, on one connection
