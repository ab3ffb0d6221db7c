"""A Limiter shared by every node of a deployment, in Redis (``--limiter redis://host:6379/0``).

Each key's one-second buckets live in one Redis hash (field = second, value = events), under
``trackd:rl:<key>`` (``?prefix=...`` in the URL changes the prefix). Every `acquire` is ONE Lua
script run (EVALSHA; redis-py loads it again after a ``SCRIPT FLUSH``), which drops the buckets
that left the window, decides exactly like `trackd.limiter.window.decide`, counts the events if
admitted, and keeps the hash alive 61 s after its last write. The script reads the Redis
server's clock (``TIME``), so nodes with skewed clocks agree on the window; a `clock` given to
the constructor (tests) replaces it.

`refund` is one script too (`take_back`: the newest buckets give the events back).

The acquires of one event-loop iteration travel together: each still is its own EVALSHA (its own
atomic decision, in the order they were asked), but they are sent as one pipeline on one pooled
connection and their replies read together, so a busy edge pays one connection checkout, one
write and one read per batch of requests rather than per request. Batches do not wait for one
another (each takes a connection of the pool). A command the pipeline could not run (NOSCRIPT
after a ``SCRIPT FLUSH``) is run again once the script is loaded; an error of one command fails
that acquire only.

Failures are quick: 1 s timeouts (``?socket_timeout=`` and ``?socket_connect_timeout=`` change
them). The acquires' pipeline is timed as a whole (``asyncio.timeout``) rather than by redis-py
per command: its per-command timeouts (a task for each send, a timer for each reply read) were
~9% of the JetStream edge's CPU per request (issue 14); a pipeline cut short by the timeout
drops its connection (redis-py disconnects on any error while a reply is read). Failures only
ever err towards counting more: an acquire whose reply was lost is run once more (it may count
twice), a refund is never run twice (it may give back nothing).

`ready` sends a PING on a connection of its own (so that a pool busy with requests does not make
it wait), and says False when no PONG came within `READY_TIMEOUT_SECONDS`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from trackd.errors import BackendError, MissingDriver
from trackd.limiter.base import WINDOW_SECONDS, Decision

try:
    from redis.asyncio import BlockingConnectionPool, Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.commands.core import AsyncScript
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import NoScriptError, RedisError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError as exc:  # pragma: no cover - depends on the install
    raise MissingDriver("redis", "redis", "redis") from exc

DEFAULT_PREFIX = "trackd:rl:"
TTL_SECONDS = WINDOW_SECONDS + 1
SOCKET_TIMEOUT_SECONDS = 1.0
MAX_CONNECTIONS = 64  # concurrent requests beyond this wait for a connection, up to...
POOL_TIMEOUT_SECONDS = 5.0  # ...this long, then fail with a BackendError
REFUND_CONNECTIONS = 4  # refunds happen only when the queue refuses a request
PROBE_CONNECTIONS = 2  # `ready`: /readyz probes, rarely two at once
READY_TIMEOUT_SECONDS = 1.0

# `decide` and `_wait` of trackd/limiter/window.py, line for line, plus the bookkeeping of the
# memory adapter (drop buckets at or before now - 60; count `cost` in the bucket of `now`).
# Redis turns Lua numbers into integers, so `allowed` travels as 1 or 0.
SCRIPT = """
local key, cost, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local window, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local now = tonumber(ARGV[3])
if not now then now = tonumber(redis.call('TIME')[1]) end
local horizon = now - window

local flat = redis.call('HGETALL', key)
local seconds, counts, stale, used = {}, {}, {}, 0
for i = 1, #flat, 2 do
    local second, n = tonumber(flat[i]), tonumber(flat[i + 1])
    if second <= horizon then
        stale[#stale + 1] = flat[i]
    else
        seconds[#seconds + 1] = second
        counts[second] = n
        used = used + n
    end
end
if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
table.sort(seconds)

if used + cost <= limit then
    local reset, live = 0, false
    for _, second in ipairs(seconds) do
        if counts[second] > 0 then
            reset, live = second + window - now, true
            break
        end
    end
    if cost > 0 and not live then reset = window end
    if cost > 0 then
        redis.call('HINCRBY', key, now, cost)
        redis.call('EXPIRE', key, ttl)
    end
    return {1, limit - used - cost, reset}
end

local excess, freed = used + cost - limit, 0
for _, second in ipairs(seconds) do
    freed = freed + counts[second]
    if freed >= excess then return {0, math.max(limit - used, 0), second + window - now} end
end
return {0, math.max(limit - used, 0), window}
"""

# `take_back` of trackd/limiter/window.py: `cost` events leave the newest buckets, never below
# zero. A bucket brought to zero is deleted: `decide` ignores empty buckets anyway.
REFUND_SCRIPT = """
local key, cost = KEYS[1], tonumber(ARGV[1])
local flat = redis.call('HGETALL', key)
local seconds, fields, counts = {}, {}, {}
for i = 1, #flat, 2 do
    local second = tonumber(flat[i])
    seconds[#seconds + 1] = second
    fields[second], counts[second] = flat[i], tonumber(flat[i + 1])
end
table.sort(seconds, function(a, b) return a > b end)
for _, second in ipairs(seconds) do
    if cost <= 0 then break end
    local taken = math.min(counts[second], cost)
    cost = cost - taken
    if counts[second] > taken then
        redis.call('HINCRBY', key, fields[second], -taken)
    else
        redis.call('HDEL', key, fields[second])
    end
end
return 0
"""


def parse_url(url: str) -> tuple[str, str]:
    """The URL for redis-py, without our own ``prefix`` parameter; and the key prefix."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((value for name, value in query if name == "prefix"), DEFAULT_PREFIX)
    rest = urlencode([(name, value) for name, value in query if name != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


def _socket_timeout(url: str) -> float:
    for name, value in parse_qsl(urlsplit(url).query):
        if name == "socket_timeout":
            try:
                return float(value)
            except ValueError:  # redis-py's own parsing of the URL says what is wrong
                break
    return SOCKET_TIMEOUT_SECONDS


def _redacted(url: str) -> str:
    """The URL to name in errors and logs: no password, no query."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rpartition('@')[2]}"
    return urlunsplit(parts._replace(netloc=netloc, query=""))


class RedisLimiter:
    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._url, self.prefix = parse_url(url)
        #: How long a pipeline of acquires may take: the URL's ``socket_timeout``, else 1 s.
        self._answer_within = _socket_timeout(self._url)
        self._where = _redacted(self._url)
        self._clock = clock
        self._clients: list[Redis] = []
        self._acquires: Redis | None = None
        #: (key, args, future) of the acquires asked for in this loop iteration, not yet sent.
        self._waiting: list[tuple[str, tuple[int | str, ...], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._script: AsyncScript | None = None
        self._refund: AsyncScript | None = None
        self._probe: Redis | None = None

    def _client(self, retries: int, max_connections: int, timed: bool = True) -> Redis:
        """``timed=False``: redis-py times no command (the caller times its calls as a whole),
        unless the URL asks for ``socket_timeout``."""
        pool = BlockingConnectionPool.from_url(  # options in the URL win over these
            self._url,
            socket_timeout=SOCKET_TIMEOUT_SECONDS if timed else None,
            socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
            max_connections=max_connections,
            timeout=POOL_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), retries, supported_errors=(RedisConnectionError,)),
        )
        client = Redis(connection_pool=pool)
        self._clients.append(client)
        return client

    async def open(self) -> None:
        """Builds the clients; they connect on first use, so a Redis that is down at startup
        fails requests (503) until it is back rather than stop the server from starting."""
        if self._script is not None:
            return
        # A connection Redis closed (restart, idle timeout) shows only when a reply is read, so
        # an acquire is retried once: if its first run did count, it counts twice, which never
        # admits more than the limit. A refund run twice would give back twice: never retried.
        self._acquires = self._client(1, MAX_CONNECTIONS, timed=False)  # `_run` times them
        self._script = self._acquires.register_script(SCRIPT)
        self._refund = self._client(0, REFUND_CONNECTIONS).register_script(REFUND_SCRIPT)
        self._probe = self._client(0, PROBE_CONNECTIONS)

    async def acquire(self, key: str, cost: int, limit: int) -> Decision:
        if self._script is None:
            raise BackendError("the rate limiter is not open")
        now = "" if self._clock is None else int(self._clock())
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        args = (cost, limit, now, WINDOW_SECONDS, TTL_SECONDS)
        self._waiting.append((self.prefix + key, args, future))
        if len(self._waiting) == 1:  # the first of this iteration: send them all after it
            loop.call_soon(self._send)
        allowed, remaining, reset = await future
        return Decision(bool(allowed), limit, int(remaining), int(reset))

    def _send(self) -> None:
        batch, self._waiting = self._waiting, []
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _run(
        self, batch: list[tuple[str, tuple[int | str, ...], asyncio.Future[Any]]]
    ) -> None:
        """One pipeline of EVALSHAs; each reply (or error, as BackendError) to its acquire."""
        try:
            async with asyncio.timeout(self._answer_within):
                replies = await self._evalsha_all([(key, args) for key, args, _ in batch])
        except TimeoutError:
            late = RedisTimeoutError(f"no reply within {self._answer_within:g} s")
            replies = [late] * len(batch)
        except (RedisError, BackendError) as exc:
            replies = [exc] * len(batch)
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its request went away
                continue
            if isinstance(reply, BaseException):
                error = BackendError(f"rate limiter at {self._where}: {reply}")
                future.set_exception(error)
            else:
                future.set_result(reply)

    async def _evalsha_all(self, calls: list[tuple[str, tuple[int | str, ...]]]) -> list[Any]:
        client, script = self._acquires, self._script
        if client is None or script is None:
            raise BackendError("the rate limiter is closed")
        pipe = client.pipeline(transaction=False)
        for key, args in calls:
            pipe.evalsha(script.sha, 1, key, *args)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:  # a SCRIPT FLUSH (a restarted Redis): load it, run what did not run
            script.sha = await client.script_load(SCRIPT)
            pipe = client.pipeline(transaction=False)
            for i in missing:
                key, args = calls[i]
                pipe.evalsha(script.sha, 1, key, *args)
            for i, reply in zip(missing, await pipe.execute(raise_on_error=False), strict=True):
                replies[i] = reply
        return replies

    async def peek(self, key: str, limit: int) -> Decision:
        return await self.acquire(key, 0, limit)

    async def refund(self, key: str, cost: int) -> None:
        if self._refund is None:
            raise BackendError("the rate limiter is not open")
        try:
            await self._refund(keys=[self.prefix + key], args=[cost])
        except RedisError as exc:
            raise BackendError(f"rate limiter at {self._where}: {exc}") from exc

    async def ready(self) -> bool:
        if self._probe is None:
            return False
        try:
            async with asyncio.timeout(READY_TIMEOUT_SECONDS):
                return bool(await self._probe.ping())
        except (RedisError, OSError, TimeoutError):
            return False

    async def aclose(self) -> None:
        if self._sending:  # acquires already sent get their replies first
            await asyncio.gather(*self._sending, return_exceptions=True)
        clients, self._clients = self._clients, []
        self._acquires = None
        self._script = self._refund = None
        self._probe = None
        for client in clients:
            await client.aclose(close_connection_pool=True)
