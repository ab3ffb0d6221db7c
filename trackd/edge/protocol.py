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

This leans on uvicorn 0.54's internals (`pipeline`, `cycle`, `_start_asgi_task`,
`on_response_complete`); tests/e2e/test_pipelining.py holds it to the behaviour above.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import msgspec
import uvicorn
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from trackd.errors import ContractError
from trackd.wire import contract


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

    # -- deadlines ------------------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        self.deadline_at = self.loop.time() + seconds

    def _disarm(self) -> None:
        self.deadline_at = None

    def expire(self) -> None:
        """A deadline passed: a head or body that did not arrive in time gets no answer (after
        the answers owed before it), or a lingering close is over."""
        self.deadline_at = None
        if self._failed:
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
        if self.deadline_at is None:  # a keep-alive connection's next request
            self._arm(self.limits.header_timeout)

    def on_headers_complete(self) -> None:
        self._in_head, self._raw_head = False, 0
        self._heads += 1
        self._arm(self.limits.body_timeout)
        before = self.cycle
        super().on_headers_complete()
        self._parsing = self.cycle if self.cycle is not before else None

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
        super().on_response_complete()  # starts the next pipelined request, if any
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
