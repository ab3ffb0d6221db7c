"""Admission control: when this process cannot keep up, the excess gets a 503 at once.

Without it, requests beyond what the process can take do not fail: they wait (for the event
loop, the limiter or the queue), and the wait grows for as long as the excess lasts. Measured
with tests/faults/test_overload_capacity.py's load (200-event requests at twice the capacity
for 8 s) and no bound: 3,840 requests got no answer within a 5 s deadline; with the bound, none,
and the longest wait was under 1.5 s. So every `POST /v1/...` passes
through `Admission` first, which bounds the requests *in flight* in this process (those whose
body has arrived and that have not been answered: they wait for the CPU, the limiter or the
queue, and hold their bodies in memory). At the bound a new request gets row 27's 503 (`Service
temporarily unavailable. Please retry.`, `Retry-After: 1`) before its body is read.

The bound is what the process answers in `max_wait` seconds: its recent peak rate of answers
(measured every `WINDOW_SECONDS`, the peak decaying by `DECAY` a window) times `max_wait`, at
least `FLOOR` and at most `max_in_flight`. By Little's law a request taken then waits about
`max_wait` at most, whatever the bottleneck (the CPU, the disk, an engine), and the process
keeps answering at its capacity: only the excess is refused, as it comes. Load within the
capacity never reaches the bound (in flight it has its rate times its wait, which is short),
nor does a closed loop of up to `FLOOR` connections (a benchmark's 64). When the CPU is the
bottleneck, a refusal costs a small fraction of an accepted request (no body parsed, nothing
validated or written), so the process refuses twice its capacity while it serves what it can.
A client still sending its body is not in flight: a slow client holds a connection, not the
bound (the protocol's body deadline closes it).

What is not seen: the wait counts from the moment the app sees the request, so the time a
request spent before (in socket buffers, in the event loop's ready queue) is not in it; and a
connection opened during an overload waits to be accepted before any of this applies: uvloop's
libuv (1.52) accepts one connection per turn of a busy loop, and new connections were measured
waiting up to 10 s in the listen backlog at twice the capacity (with or without this module).

A refused request is counted in `trackd_requests_total{status="503"}`, in
`trackd_requests_shed_total`, and (when the path names a known workspace) in the workspace's
`rejected_requests`; its answer carries `X-Request-Id` and, as every answer of the endpoint,
the rate-limit headers. `ready()` is False at the bound and for `hold` seconds after the last
refusal, so that `/readyz` shows a load balancer that this process is shedding.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from trackd.edge.http import Message, Receive, Scope, Send, send_json
from trackd.edge.metrics import EdgeCounters
from trackd.edge.track import TrackEndpoint
from trackd.errors import ContractError
from trackd.wire import contract

#: How often the rate of answers is measured, in seconds.
WINDOW_SECONDS = 0.5
#: How much of the peak rate is kept from one window to the next.
DECAY = 0.8
#: Requests in flight that are always taken: a burst at a cold start, a benchmark's 64
#: connections (a closed loop never has more in flight than it has connections).
FLOOR = 64


class Admission:
    def __init__(
        self,
        counters: EdgeCounters,
        *,
        max_in_flight: int,
        max_wait: float,
        hold: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.counters = counters
        self.max_in_flight = max_in_flight
        self.max_wait = max_wait
        self.hold = hold
        self.in_flight = 0
        self.limit = min(FLOOR, max_in_flight)  # requests in flight taken now
        self._clock = clock
        self._began = clock()  # the current window's start
        self._answers = 0  # in the current window
        self._peak = 0.0  # answers a second, the peak of the recent windows
        self._shed_at = -math.inf  # when the last request was refused

    def _refusing(self, now: float) -> bool:
        if now - self._began >= WINDOW_SECONDS:
            elapsed = now - self._began
            self._peak = max(
                self._answers / elapsed, self._peak * DECAY ** (elapsed / WINDOW_SECONDS)
            )
            self.limit = min(self.max_in_flight, max(FLOOR, int(self._peak * self.max_wait)))
            self._began, self._answers = now, 0
        return self.in_flight >= self.limit

    def admit(self) -> bool:
        now = self._clock()
        if not self._refusing(now):
            return True
        self._shed_at = now
        return False

    def ready(self) -> bool:
        """False while a new request would be refused, and `hold` seconds after a refusal."""
        now = self._clock()
        return not self._refusing(now) and now - self._shed_at >= self.hold

    def arrived(self) -> None:
        """A request whose body is in: in flight until `answered`."""
        self.in_flight += 1

    def answered(self) -> None:
        self.in_flight -= 1
        self._answers += 1

    def refusal(self) -> ContractError:
        """Row 27's error for a request `admit` refused, counted as shed."""
        self.counters.shed += 1
        return contract.queue_unavailable()

    # -- the endpoint, guarded (the ASGI transport; the fast path in `trackd.edge.protocol`
    # -- calls admit / arrived / answered itself) ------------------------------------------

    async def __call__(
        self, endpoint: TrackEndpoint, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if not self.admit():
            await self._refuse(endpoint, scope, send)
            return
        counted = False

        async def receive_counted() -> Message:
            nonlocal counted
            message = await receive()
            whole = message["type"] == "http.request" and not message.get("more_body")
            if whole and not counted:
                counted = True  # the body is in: from now on it waits on us
                self.arrived()
            return message

        try:
            await endpoint(scope, receive_counted, send)
        finally:
            if counted:
                self.answered()

    async def _refuse(self, endpoint: TrackEndpoint, scope: Scope, send: Send) -> None:
        """Row 27's answer, without reading the body (uvicorn discards what is left of it and
        keeps the connection)."""
        client = scope.get("client")
        status, headers, body = await endpoint.refuse(
            scope["method"],
            scope.get("raw_path") or scope["path"].encode(),
            scope.get("query_string", b""),
            scope["headers"],
            str(client[0]) if client else None,
            self.refusal(),
        )
        await send_json(send, status, body, headers)
