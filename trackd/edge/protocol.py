"""The HTTP/1.1 connection: uvicorn's httptools protocol plus the client limits it lacks.

uvicorn (0.54, httptools) times out only an idle keep-alive connection *after* a response.
Measured against `trackd serve`: a client that connects and sends nothing, sends its headers a
byte at a time, or declares a body it never finishes keeps its connection (and, for the body,
its request task) for as long as it likes; a 100 KB header or 500 header fields are accepted
(llhttp has no size limit, and httptools buffers a header line until it ends). So this protocol
adds, per request:

- a header deadline: the request line and headers must all arrive within `header_timeout` of the
  connection (or of the request's first byte on a keep-alive connection); else it is closed;
- a body deadline: the whole body must arrive within `body_timeout` of the headers; else the
  connection is closed and the app sees a disconnect (nothing answered, nothing kept);
- a head size cap: at most `max_header_fields` fields and `max_head_bytes` of request line and
  headers (431, or 414 for the URL alone), counted as they arrive, so a header that never ends
  is cut off too.

Deadlines are enforced to within `SWEEP_SECONDS` by one timer per event loop.

Errors found below the app (these, and an unparseable request) get the contract's error body
shape with an `X-Request-Id`, and the connection is closed. Answers on a connection go out in
request order, always (RFC 9112 §9.3.2: a client takes the n-th answer for its n-th request).
uvicorn writes its 400 the moment the parser fails, ahead of the answers still owed to the
valid requests before it (being processed, or queued in `pipeline`), and closes: the client
reads the 400 as its first request's answer and retries a request that was kept, a duplicate.
Here a failed connection reads no further request and
- the request the parser was reading gets the refusal (nothing, for a missed deadline), written
  once every request before it has its answer; if the failure is inside its body, its app sees
  a disconnect (nothing kept) or, not yet started, it is taken out of the pipeline;
- then the connection closes, after a short lingering close: half-closed, what the client still
  sends is read and discarded until it closes or `LINGER_SECONDS` pass, so the kernel does not
  answer unread data with a reset that can destroy the refusal before the client reads it.

The `/v1` fast path (issue 14): a `POST` whose path names a `/v1` row (`TrackdApp.fast_endpoint`)
gets a `FastCycle` in place of uvicorn's ASGI `RequestResponseCycle`, in the same pipeline: no
scope, no receive/send messages; its body is collected as httptools delivers it (`100 Continue`
when the client asked and the body is wanted, as uvicorn's `receive` sends it), handed with the
head to the endpoint's core (`TrackEndpoint.respond`, the checks every transport shares) and the
answer goes out in one write. Every other request, and every request with `fast_path` off, goes
through ASGI as before; tests/e2e/test_fastpath_differential.py holds both to the same bytes.

This leans on uvicorn 0.54's internals (`pipeline`, `cycle`, `_start_asgi_task`,
`on_response_complete`, `RequestResponseCycle`'s fields); tests/e2e/test_pipelining.py holds it to
the behaviour above.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import urllib.parse
from typing import Any, Protocol

import httptools
import msgspec
import uvicorn
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from trackd.edge.admission import Admission
from trackd.edge.http import ClientDisconnected, first_headers
from trackd.edge.track import Answer, TrackEndpoint
from trackd.errors import ContractError
from trackd.wire import contract

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ClientLimits:
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_header_fields: int = 100
    max_head_bytes: int = 32768
    max_url_bytes: int = 8192


class Config(uvicorn.Config):
    """uvicorn's Config carrying trackd's `ClientLimits` to the protocol (and, pickled, to
    every `--workers` process)."""

    def __init__(self, app: Any, *, client_limits: ClientLimits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.client_limits = client_limits


class _HeadTooLarge(Exception):
    """Raised inside a parser callback; httptools turns it into an HttpParserError, on which
    uvicorn calls `send_400_response`, which answers `refusal` instead."""


#: How often one timer per event loop closes the connections past their deadline: deadlines are
#: kept to within this, and arming one per request is a float store, not a timer (2 us each).
SWEEP_SECONDS = 0.5
#: How long a connection closing after a refusal keeps reading (and discarding) what the client
#: still sends, so that its close is a FIN and not a reset (nginx's `lingering_timeout`).
LINGER_SECONDS = 2.0


class _Deadlines:
    """The connections of one event loop that have a deadline, and the timer that enforces it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.watched: set[TrackdHttpProtocol] = set()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, protocol: TrackdHttpProtocol) -> None:
        self.watched.add(protocol)
        if self._timer is None:
            self._timer = self.loop.call_later(SWEEP_SECONDS, self._sweep)

    def forget(self, protocol: TrackdHttpProtocol) -> None:
        self.watched.discard(protocol)

    def _sweep(self) -> None:
        now = self.loop.time()
        for protocol in [
            p for p in self.watched if p.deadline_at is not None and p.deadline_at <= now
        ]:
            protocol.expire()
        self._timer = self.loop.call_later(SWEEP_SECONDS, self._sweep) if self.watched else None


_DEADLINES: dict[asyncio.AbstractEventLoop, _Deadlines] = {}


def _deadlines(loop: asyncio.AbstractEventLoop) -> _Deadlines:
    deadlines = _DEADLINES.get(loop)
    if deadlines is None:
        for old in [other for other in _DEADLINES if other.is_closed()]:
            del _DEADLINES[old]
        deadlines = _DEADLINES[loop] = _Deadlines(loop)
    return deadlines


class TrackdHttpProtocol(HttpToolsProtocol):
    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.limits: ClientLimits = getattr(config, "client_limits", ClientLimits())
        self._deadlines = _deadlines(self.loop)
        self.deadline_at: float | None = None  # loop time at which the connection is closed
        self._in_head = True  # between a request's first byte (or the connection) and its headers
        self._heads = 0  # requests whose headers are complete, on this connection
        self._raw_head = 0  # bytes received while in the head, counted per chunk
        self._head_size = 0  # bytes of request line and headers, counted by the parser
        self._fields = 0
        self._refusal: ContractError | None = None  # why a parser callback stopped the parser
        self._running: RequestResponseCycle | None = None  # the cycle whose app was started last
        self._parsing: RequestResponseCycle | None = None  # the cycle whose body is being read
        self._failed = False  # no further request is read on this connection
        self._last_word: ContractError | None = None  # written once every answer owed is
        self._lingering = False  # the last word is written: waiting for the client to close
        self._idle = False  # between an answer and the next request: the keep-alive deadline
        self._fast = _fast_app(self.app, config)

    # -- deadlines ------------------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        self.deadline_at = self.loop.time() + seconds

    def _disarm(self) -> None:
        self.deadline_at = None

    def expire(self) -> None:
        """A deadline passed: a head or body that did not arrive in time gets no answer (after
        the answers owed before it), or a lingering close is over."""
        self.deadline_at = None
        if self._failed or self._idle:  # (idle: uvicorn's `timeout_keep_alive_handler`)
            self._close()
        else:
            self._fail(None)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadlines.watch(self)
        self._arm(self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._deadlines.forget(self)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_size, self._fields = True, 0, 0
        if self.deadline_at is None or self._idle:  # a keep-alive connection's next request
            self._idle = False
            self._arm(self.limits.header_timeout)

    def on_headers_complete(self) -> None:
        self._in_head, self._raw_head = False, 0
        self._heads += 1
        self._arm(self.limits.body_timeout)
        before = self.cycle
        if self._fast is None or not self._fast_cycle(self._fast):
            super().on_headers_complete()
        self._parsing = self.cycle if self.cycle is not before else None

    # -- the /v1 fast path ----------------------------------------------------------------

    def _fast_cycle(self, app: FastApp) -> bool:
        """Queue a `FastCycle` for this request if it is a fast one (as uvicorn queues its
        cycle: started now, or after the requests before it); False: ASGI's road."""
        parser = self.parser
        if parser.get_method() != b"POST" or parser.should_upgrade():
            return False
        url = httptools.parse_url(self.url)
        path = url.path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        endpoint = app.fast_endpoint(path)
        if endpoint is None:
            return False
        http_version = parser.get_http_version()
        self.scope["method"] = "POST"  # what uvicorn's own code reads of a request
        existing = self.cycle
        self.cycle = FastCycle(
            scope=self.scope,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=False,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=self.expect_100_continue,
            keep_alive=http_version != "1.0" and parser.should_keep_alive(),
            on_response=self.on_response_complete,
        )
        self.cycle.fast = (
            app.admission,
            endpoint,
            url.path,
            url.query or b"",
            self.headers,
            self.client[0] if self.client else None,
        )
        if existing is None or existing.response_complete:
            self._start_asgi_task(self.cycle, self.app)
        else:
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, self.app))
        return True

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True
        self._parsing = None
        super().on_message_complete()

    # -- head size ------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._failed:
            return  # no further request is read: what the client still sends is discarded
        in_head, heads = self._in_head, self._heads
        super().data_received(data)
        if in_head and heads == self._heads and not self._failed:
            # The whole chunk belongs to a head still unfinished: httptools buffers it.
            self._raw_head += len(data)
            if self._raw_head > self.limits.max_head_bytes:
                self._fail(contract.head_too_large())

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > self.limits.max_url_bytes:
            self._refusal = contract.url_too_long()
            raise _HeadTooLarge
        self._grow(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields += 1
        self._grow(len(name) + len(value) + 4)
        if self._fields > self.limits.max_header_fields:
            self._refusal = contract.head_too_large()
            raise _HeadTooLarge
        super().on_header(name, value)

    def _grow(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self.limits.max_head_bytes:
            self._refusal = contract.head_too_large()
            raise _HeadTooLarge

    # -- answers in request order -----------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request it cannot parse (or one a callback refused)."""
        self._fail(self._refusal or contract.invalid_http())

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        self._running = cycle  # requests run one at a time, in order: this one is the oldest
        super()._start_asgi_task(cycle, app)

    def on_response_complete(self) -> None:
        """uvicorn's (the next pipelined request starts, else the keep-alive timeout runs),
        but that timeout is a deadline of the loop's sweep, a float store, instead of a
        `call_later` per answer cancelled by the next request's data (issue 14: ~1.5% of a
        single-event request); it is kept to within `SWEEP_SECONDS` as the others are."""
        self.server_state.total_requests += 1
        if not self.transport.is_closing():
            self._unset_keepalive_if_required()
            self.flow.resume_reading()
            if self.pipeline:
                cycle, app = self.pipeline.pop()
                self._start_asgi_task(cycle, app)
            elif self.deadline_at is None and not self._failed:
                self._idle = True
                self._arm(self.timeout_keep_alive)
        if self._failed:
            self._answer_last()

    def shutdown(self) -> None:
        if self._failed and not self._owes_answers():
            self._close()
        elif not self._failed:
            super().shutdown()
            # -- Live stream (issue 13 item 2) --
            # A streamed answer (no Content-Length: `/live`'s Server-Sent Events) never ends by
            # itself: closed now, its app sees a disconnect, and the drain does not wait for it
            # until the graceful timeout. The client reconnects with Last-Event-ID.
            cycle = self.cycle
            if (
                cycle is not None
                and cycle.response_started
                and cycle.chunked_encoding
                and not cycle.response_complete
            ):
                self.transport.close()
        # else: the last answer owed closes the connection

    def _fail(self, error: ContractError | None) -> None:
        """Read no further request: the one being read gets `error` (None: no answer) once
        every request before it has its answer, then the connection closes."""
        self._failed = True
        self._disarm()
        partial, self._parsing = self._parsing, None
        if partial is not None:  # the failure is inside this request's body
            if partial.response_complete:
                error = None  # the app answered before the body ended: that is its answer
            elif partial is self._running:
                partial.disconnected = True  # its app reads a disconnect: nothing is kept
                partial.message_event.set()
            else:  # still queued: never started
                self.pipeline = type(self.pipeline)(
                    item for item in self.pipeline if item[0] is not partial
                )
        self._last_word = error
        self._answer_last()

    def _owes_answers(self) -> bool:
        running = self._running
        return bool(self.pipeline) or (
            running is not None and not running.response_complete and not running.disconnected
        )

    def _answer_last(self) -> None:
        if self._owes_answers() or self._lingering or self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        error, self._last_word = self._last_word, None
        if error is not None:
            self.transport.write(self._refusal_bytes(error))
        if error is None or not self.transport.can_write_eof():
            self._close()
            return
        self.transport.write_eof()
        self._lingering = True
        self.flow.resume_reading()  # read (and discard) until the client closes
        self._arm(LINGER_SECONDS)

    def _close(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.close()

    def _refusal_bytes(self, error: ContractError) -> bytes:
        request_id = contract.new_request_id()
        body = msgspec.json.encode(contract.error_body(error, request_id))
        head = [
            STATUS_LINE[error.status],
            *(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"x-request-id: %s\r\n" % request_id.encode(),
            b"connection: close\r\n\r\n",
        ]
        return b"".join([*head, body])


# -- the /v1 fast path ------------------------------------------------------------------------


class FastApp(Protocol):
    """What the fast path needs of the app (`trackd.edge.app.TrackdApp`)."""

    admission: Admission

    def fast_endpoint(self, path: str) -> TrackEndpoint | None:
        """The endpoint a `POST` to `path` goes to without ASGI, or None (not a `/v1` row, or
        the fast path is off)."""


def _fast_app(app: Any, config: uvicorn.Config) -> FastApp | None:
    """The trackd app under uvicorn's middleware, when nothing of uvicorn's a fast request
    would skip is configured (an access log, a root path, a concurrency limit)."""
    if config.access_log or config.root_path or config.limit_concurrency is not None:
        return None
    for _ in range(8):
        if hasattr(app, "fast_endpoint"):
            return app  # type: ignore[no-any-return]
        app = getattr(app, "app", None)
    return None


@functools.lru_cache(maxsize=4)
def _default_head_of(headers: tuple[tuple[bytes, bytes], ...]) -> bytes:
    return b"".join(name + b": " + value + b"\r\n" for name, value in headers)


def _default_head(headers: list[tuple[bytes, bytes]]) -> bytes:
    """uvicorn's default headers (`server`, `date`: a new list each second) as header lines,
    framed once per list instead of once per answer."""
    return _default_head_of(tuple(headers))


class FastCycle(RequestResponseCycle):
    """One fast request in uvicorn's pipeline: `run_asgi` (what the pipeline starts) runs the
    endpoint's core on the collected body and writes its answer at once."""

    #: (admission, endpoint, the path as sent, the query, the headers as received, the peer)
    fast: tuple[Admission, TrackEndpoint, bytes, bytes, list[tuple[bytes, bytes]], str | None]

    async def run_asgi(self, app: Any) -> None:
        try:
            await self._run()
        except ClientDisconnected:
            pass  # nothing to answer, nothing kept
        except BaseException as exc:
            log.error("unexpected failure on the fast path", exc_info=exc)
            if not self.response_started:
                await self.send_500_response()
            else:
                self.transport.close()
        finally:
            self.on_response = lambda: None

    async def _run(self) -> None:
        admission, endpoint, path, query, headers, client = self.fast
        if not admission.admit():  # refused before the body is read, as on ASGI's road
            refusal = admission.refusal()
            await self._write(await endpoint.refuse("POST", path, query, headers, client, refusal))
            return
        by_name = first_headers(headers)
        if endpoint.declared_too_large(by_name):
            too_large = contract.payload_too_large()
            await self._write(
                await endpoint.refuse("POST", path, query, headers, client, too_large)
            )
            return
        body = await self._body(endpoint.max_body, admission)
        if body is None:
            too_large = contract.payload_too_large()
            await self._write(
                await endpoint.refuse("POST", path, query, headers, client, too_large)
            )
            return
        try:
            answer = await endpoint.respond("POST", path, query, headers, body, client, by_name)
            await self._write(answer)
        finally:
            admission.answered()

    async def _body(self, limit: int, admission: Admission) -> bytes | None:
        """The whole body (counted in flight once it is in), None once it is over `limit`."""
        chunks: list[bytes | bytearray] = []
        size = 0
        while True:
            if self.waiting_for_100_continue and not self.transport.is_closing():
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                self.waiting_for_100_continue = False
            if not self.disconnected:
                self.flow.resume_reading()
                await self.message_event.wait()
                self.message_event.clear()
            if self.disconnected:
                raise ClientDisconnected
            chunk, self.body = self.body, bytearray()
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not self.more_body:
                admission.arrived()
                return b"".join(chunks)

    async def _write(self, answer: Answer) -> None:
        """The answer in one write, framed as uvicorn frames an ASGI `send_json`."""
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        status, headers, body = answer
        content = [
            STATUS_LINE[status],
            _default_head(self.default_headers),
            b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body),
        ]
        for name, value in headers:
            content += (name, b": ", value, b"\r\n")
        if not self.keep_alive:
            content.append(b"connection: close\r\n")
        content += (b"\r\n", body)
        self.response_started = True
        self.waiting_for_100_continue = False
        self.transport.write(b"".join(content))
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            self.transport.close()
        self.on_response()
