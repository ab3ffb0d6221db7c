"""The load generator of the suites that talk to a real `trackd serve`: many clients sending
Track Event requests, every request recorded as an `Answer`, and what the contract owes them.

Two drivers, one record:

- `Load`: `clients` concurrent httpx clients, each on its own keep-alive connection, sending the
  seed request (with `events` copies of its action) under a distinct customer_id (the marker)
  until stopped. Every `wrong_key_every`-th request may carry a wrong key; a client that gets no
  answer pauses a moment (the server is gone: it does not spin), one that gets a 503 pauses
  `pause_after_503` (an impatient client: shorter than the Retry-After it was given).
- `Pacer`: the same requests on raw sockets, light enough that the server, not the client, is
  the limit, over a pool of plain HTTP/1.1 keep-alive connections all opened before the load
  starts, two ways: `closed_loop`, each connection sending its next request as soon as the last
  one is answered (what the server can take: its capacity), and `open_loop`, requests on a fixed
  schedule (`rate` a second), each sent at its time whether or not earlier ones were answered,
  on the connection idle longest (or, when every connection is busy, the first one freed), with
  its latency counted from its *scheduled* time, so that a server that falls behind is charged
  for the wait (wrk2's model).

  The connections are opened up front because a server on uvloop under load accepts one new
  connection per turn of its event loop (libuv 1.52, as uvloop 0.23 bundles it): a client that
  connects during an overload waits in the listen backlog (up to 10 s, measured), which tests
  the accept path rather than how the server treats the requests it has. A connection the server
  closes is replaced. Every request has a deadline; one not answered by then is recorded with
  status None, and the reason in `failures` (a timeout, a reset, a closed connection).

What is owed: `expected_response` (a right key's 200, a wrong key's 401), `expected` (the 200,
or row 27's 503 with Retry-After, under overload), and `broken_promises`, which holds the queue
to the answers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections import Counter, deque
from typing import Any, NamedTuple

import anyio
import anyio.abc
import httpx
import msgspec

from tests.e2e.helpers import START_SECONDS, SUCCESS_MESSAGE, auth
from tests.factories import bulk_body
from trackd.models import Envelope

UNAVAILABLE = {"message": "Service temporarily unavailable. Please retry.", "type": "ServerError"}
RETRY_AFTER = "1"
WRONG_KEY_BODY_ERROR = {
    "message": "App Secret key mismatch. Please login to the dashboard to verify key",
    "type": "Authentication required",
}


class Answer(NamedTuple):
    """One request sent during a run, and what (if anything) came back."""

    marker: str  # the request's customer_id, unique across a test
    valid: bool  # sent with the workspace's right key
    status: int | None  # None: no response (connection refused, reset or closed, or too late)
    request_id: str | None
    body: Any
    retry_after: str | None
    sent: float  # time.monotonic() before sending (a `Pacer`: when it was scheduled)
    answered: float  # time.monotonic() once answered (or failed)


# -- httpx clients -----------------------------------------------------------------------------


class Load:
    """`clients` concurrent httpx clients sending requests of `events` events until stopped."""

    def __init__(
        self,
        url: str,
        workspace_id: str,
        key: str,
        *,
        clients: int,
        tag: str,
        events: int = 1,
        wrong_key_every: int = 0,
        timeout: float = 30.0,
        pause_after_503: float = 0.01,
    ) -> None:
        self.url = url
        self.workspace_id = workspace_id
        self.key = key
        self.clients = clients
        self.tag = tag
        self.events = events
        self.wrong_key_every = wrong_key_every
        self.timeout = timeout
        self.pause_after_503 = pause_after_503
        self.answers: list[Answer] = []
        self._stopped = False

    def start(self, group: anyio.abc.TaskGroup) -> None:
        for n in range(self.clients):
            group.start_soon(self._client, n)

    def stop(self) -> None:
        """Each client finishes the request in hand, then stops."""
        self._stopped = True

    def count(self, status: int | None, since: float = 0.0) -> int:
        return sum(1 for a in self.answers if a.status == status and a.answered >= since)

    def accepted(self) -> int:
        return self.count(200)

    async def wait_for(self, status: int, count: int, seconds: float, since: float = 0.0) -> None:
        """Until `count` answers of `status` came back after `since` (fails after `seconds`)."""
        with anyio.fail_after(seconds):
            while self.count(status, since) < count:
                await anyio.sleep(0.01)

    async def wait_for_accepted(self, count: int) -> None:
        await self.wait_for(200, count, START_SECONDS)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=self.timeout)

    async def send(self, client: httpx.AsyncClient, marker: str, *, valid: bool = True) -> Answer:
        """One request on `client` (with a wrong key unless `valid`), its answer recorded (and
        returned)."""
        sent = time.monotonic()
        try:
            response = await client.post(
                f"/v1/event/{self.workspace_id}",
                content=bulk_body(marker, self.events),
                headers=auth(self.workspace_id, self.key if valid else "not-the-key"),
            )
        except httpx.TransportError:
            answer = Answer(marker, valid, None, None, None, None, sent, time.monotonic())
        else:
            answer = Answer(
                marker,
                valid,
                response.status_code,
                response.headers.get("x-request-id"),
                response.json(),
                response.headers.get("retry-after"),
                sent,
                time.monotonic(),
            )
        self.answers.append(answer)
        return answer

    async def _client(self, n: int) -> None:
        async with self.client() as client:
            i = 0
            while not self._stopped:
                valid = not self.wrong_key_every or i % self.wrong_key_every != 1
                answer = await self.send(client, f"{self.tag}-c{n}-r{i}", valid=valid)
                i += 1
                if answer.status is None:
                    await anyio.sleep(0.01)  # the server is gone: do not spin
                elif answer.status == 503:
                    await anyio.sleep(self.pause_after_503)


# -- raw sockets -------------------------------------------------------------------------------

_decode = msgspec.json.Decoder().decode
_MARK = "@@marker@@"


class Failure(Exception):
    """The request got no answer: the reason."""


class Connection:
    """One plain HTTP/1.1 keep-alive connection."""

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
    """Requests of `events` events on a pool of raw connections, in a closed or an open loop;
    each answered or failed `deadline` seconds after it was due."""

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

    # connections

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

    # one request

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
            answer = Answer(marker, True, None, None, None, None, scheduled, time.monotonic())
            if connection is not None:
                connection.reusable = False  # an answer may still be on its way
        else:
            answer = Answer(
                marker,
                True,
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

    # loops

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


# -- what is owed ------------------------------------------------------------------------------


def expected_response(answer: Answer) -> tuple[int, dict[str, Any]]:
    """What the contract owes a request that got a response: the 200 if its key was right,
    else the wrong-key 401 (row 10)."""
    request_id = answer.request_id
    if answer.valid:
        return 200, {"status": "success", "message": SUCCESS_MESSAGE, "request_id": request_id}
    return 401, {"status": "fail", "error": {**WRONG_KEY_BODY_ERROR, "request_id": request_id}}


def expected(answer: Answer) -> tuple[int | None, Any, str | None]:
    """What the contract owes an answer of status 200 or 503 (row 27, with Retry-After)."""
    if answer.status == 200:
        body = {"status": "success", "message": SUCCESS_MESSAGE, "request_id": answer.request_id}
        return 200, body, None
    error = {**UNAVAILABLE, "request_id": answer.request_id}
    return 503, {"status": "fail", "error": error}, RETRY_AFTER


def broken_promises(answers: list[Answer], envelopes: list[Envelope]) -> dict[str, list[str]]:
    """What the queue gets wrong against the answers; every list is empty when it keeps
    its word: each 200 is there exactly once under its request id, nothing rejected is there,
    and nothing is there twice or from nowhere."""
    by_request = Counter(e.request_id for e in envelopes)
    by_marker = Counter(e.customer_id for e in envelopes)
    marker_of = {e.request_id: e.customer_id for e in envelopes}
    sent = {a.marker for a in answers if a.valid and a.status in (200, None)}
    accepted = [a for a in answers if a.status == 200]
    rejected = [a for a in answers if a.status not in (200, None)]
    return {
        "accepted but not queued exactly once": [
            a.marker
            for a in accepted
            if by_request[a.request_id] != 1 or marker_of[a.request_id] != a.marker
        ],
        "rejected but queued": [a.marker for a in rejected if by_marker[a.marker]],
        "queued twice": sorted(str(m) for m, n in by_marker.items() if n > 1),
        "queued but never sent": sorted(str(m) for m in by_marker if m not in sent),
    }
