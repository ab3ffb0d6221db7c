"""A load generator on raw sockets, light enough that the server, not the client, is the limit.

`Pacer` sends Track Event requests of `events` events (each with its own customer_id, the
marker) over a pool of plain HTTP/1.1 keep-alive connections, all opened before the load
starts, two ways:

- `closed_loop`: `clients` of the connections, each sending its next request as soon as the last
  one is answered, for a while: what the server can take (its capacity);
- `open_loop`: requests on a fixed schedule (`rate` a second), each sent at its time whether or
  not earlier ones were answered, on the connection idle longest (or, when every connection is
  busy, the first one freed), with its latency counted from its *scheduled* time, so a server
  that falls behind is charged for the wait (wrk2's model).

The connections are opened up front because a server on uvloop under load accepts one new
connection per turn of its event loop (libuv 1.52, as uvloop 0.23 bundles it): a client that
connects during an overload waits in the listen backlog (up to 10 s, measured), which tests the
accept path rather than how the server treats the requests it has. A connection the server
closes is replaced.

Every request has a deadline; one not answered by then is recorded with status None, and the
reason in `failures` (a timeout, a reset, a closed connection). The answers keep the request's
marker, status, request id, parsed body and `Retry-After`, as `tests.faults.Answer`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections import deque

import msgspec

from tests.faults import Answer, bulk_body

_decode = msgspec.json.Decoder().decode
_MARK = "@@marker@@"


class Failure(Exception):
    """The request got no answer: the reason."""


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reusable = True

    async def exchange(self, request: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        """One request, and its status, headers (lower-case names) and body."""
        self.writer.write(request)
        await self.writer.drain()
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            status_line, *lines = head[:-4].split(b"\r\n")
            headers: dict[bytes, bytes] = {}
            for line in lines:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers.get(b"content-length", b"0")))
        except asyncio.IncompleteReadError as exc:
            raise Failure("connection closed before an answer") from exc
        if headers.get(b"connection", b"").lower() == b"close":
            self.reusable = False
        return int(status_line.split()[1]), headers, body

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class Pacer:
    def __init__(
        self, url: str, workspace_id: str, key: str, *, events: int, tag: str, deadline: float
    ) -> None:
        host, _, port = url.removeprefix("http://").rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self.path = f"/v1/event/{workspace_id}"
        self.auth = base64.b64encode(f"{workspace_id}:{key}".encode())
        self.events = events
        self.tag = tag
        self.deadline = deadline
        self.answers: list[Answer] = []
        self.failures: list[tuple[str, str]] = []  # (marker, reason) of every unanswered request
        self.most_late = 0.0  # the longest a request waited for a connection, in seconds
        self.most_behind = 0.0  # the most the open loop's schedule ran late, in seconds
        self._idle: deque[Connection] = deque()
        self._freed = asyncio.Condition()
        self._count = 0
        # The body, encoded once, around its customer_id: the client's work per request is a
        # join, so that the server's capacity, not the client's, is what the loops measure.
        self._before, self._after = bulk_body(_MARK, events).split(_MARK.encode())

    def request(self, marker: str) -> bytes:
        body = b"".join((self._before, marker.encode(), self._after))
        head = (
            b"POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        ) % (self.path.encode(), self.host.encode(), self.auth, len(body))
        return head + body

    def next_marker(self) -> str:
        self._count += 1
        return f"{self.tag}-{self._count}"

    # -- connections ----------------------------------------------------------------------

    async def connect(self, connections: int) -> None:
        """Opens the pool (one connection at a time: the server accepts them as they come)."""
        for _ in range(connections):
            self._idle.append(await self.open_connection())

    async def open_connection(self) -> Connection:
        """A connection of the caller's own, outside the pool."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return Connection(reader, writer)

    async def _take(self) -> Connection:
        async with self._freed:
            while not self._idle:
                await self._freed.wait()
            return self._idle.popleft()

    async def _give_back(self, connection: Connection) -> None:
        if not connection.reusable:
            connection.close()
            try:
                connection = await self.open_connection()
            except OSError:
                return  # the pool is one connection smaller
        async with self._freed:
            self._idle.append(connection)
            self._freed.notify()

    async def close(self) -> None:
        while self._idle:
            self._idle.popleft().close()

    # -- one request ----------------------------------------------------------------------

    async def send(self, marker: str, scheduled: float) -> Answer:
        """The request `marker`, due at `scheduled` (time.monotonic()), answered or failed by
        `deadline` seconds after that."""
        request = self.request(marker)
        connection: Connection | None = None
        try:
            async with asyncio.timeout_at(_loop_time(scheduled + self.deadline)):
                connection = await self._take()
                self.most_late = max(self.most_late, time.monotonic() - scheduled)
                status, headers, body = await connection.exchange(request)
        except (TimeoutError, OSError, Failure) as exc:
            phase = "exchanging" if connection is not None else "waiting for a connection"
            reason = "no answer in time" if isinstance(exc, TimeoutError) else repr(exc)
            self.failures.append((marker, f"{reason}, {phase}"))
            answer = Answer(marker, None, None, None, None, scheduled, time.monotonic())
            if connection is not None:
                connection.reusable = False  # an answer may still be on its way
        else:
            answer = Answer(
                marker,
                status,
                headers.get(b"x-request-id", b"").decode() or None,
                _decode(body) if body else None,
                headers[b"retry-after"].decode() if b"retry-after" in headers else None,
                scheduled,
                time.monotonic(),
            )
        self.answers.append(answer)
        if connection is not None:
            await self._give_back(connection)
        return answer

    # -- loops ----------------------------------------------------------------------------

    async def closed_loop(self, clients: int, seconds: float) -> list[Answer]:
        """`clients` connections sending back to back for `seconds`; their answers."""
        first = len(self.answers)
        stop = time.monotonic() + seconds

        async def client() -> None:
            while time.monotonic() < stop:
                await self.send(self.next_marker(), time.monotonic())

        await asyncio.gather(*(client() for _ in range(clients)))
        return self.answers[first:]

    async def open_loop(self, rate: float, seconds: float) -> list[Answer]:
        """`rate` requests a second on a fixed schedule for `seconds`, then until every one is
        answered or past its deadline; their answers."""
        first = len(self.answers)
        start = time.monotonic()
        tasks: set[asyncio.Task[Answer]] = set()
        for n in range(int(rate * seconds)):
            scheduled = start + n / rate
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self.most_behind = max(self.most_behind, -delay)
            task = asyncio.create_task(self.send(self.next_marker(), scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks)
        return self.answers[first:]


def _loop_time(monotonic: float) -> float:
    """A time.monotonic() instant on the running loop's clock."""
    return asyncio.get_running_loop().time() + (monotonic - time.monotonic())
