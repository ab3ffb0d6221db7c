"""How soon an accepted event is readable, and how soon the lag drains after a burst.

Both talk to trackd over HTTP with the bench workspace's key, from threads of bench/run.py pinned
beside wrk (off the server's core). The probe adds ~20 requests/s and, while a probe is
outstanding, ~50 polls/s to the load of its row.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import threading
import time
from collections import deque
from types import TracebackType
from urllib.parse import urlsplit

from bench.model import WORKSPACE, Freshness
from bench.servers import Server

READ = f"/api/workspaces/{WORKSPACE}"


class Client:
    """One keep-alive HTTP/1.1 connection with the workspace's credentials; a GET on a
    connection the server closed meanwhile is sent again once on a new one."""

    def __init__(self, server: Server) -> None:
        parts = urlsplit(server.url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.headers = {"Authorization": server.authorization, "Content-Type": "application/json"}
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        for attempt in range(1 if method == "POST" else 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                self.conn.request(method, path, body, self.headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt or method == "POST":
                    raise
        raise AssertionError("unreachable")

    def get_json(self, path: str) -> dict[str, object] | None:
        status, body = self.request("GET", path)
        return json.loads(body) if status == 200 else None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest rank, as bench/track.lua computes wrk's."""
    if not sorted_values:
        return 0.0
    return sorted_values[max(1, math.ceil(len(sorted_values) * p / 100)) - 1]


def probe_body(n: int) -> bytes:
    action = {
        "action": "Bench Probe",
        "attributes": {"probe": n},
        "platform": "web",
        "current_time": int(time.time()),
    }
    return json.dumps(
        {"type": "event", "customer_id": f"bench-probe-{n:06d}", "actions": [action]}
    ).encode()


class FreshnessProbe:
    """``with FreshnessProbe(server, core) as probe: <load>`` then ``probe.finish()``.

    A sender thread posts one single-event request every ``interval`` s, each with its own
    customer (``bench-probe-NNNNNN``, an action ``Bench Probe``), on a fixed schedule that skips
    ahead rather than bursting after a slow answer. A poller thread asks the read API for the
    oldest probe not yet seen (``GET …/events?customer_id=…``, every ``poll`` s) and, once it is
    listed, for the next ones at once: the processor takes a workspace's envelopes in order, so
    while the oldest is unreadable the younger ones are too. A probe is readable when an event
    with its 200's request_id is listed; its time counts from the 200's arrival to the arrival of
    that answer (so at most ``poll`` s plus one read late, never early). The sender stops at the
    end of the ``with``; ``finish`` waits up to ``deadline`` s for the probes still unseen.
    """

    def __init__(
        self, server: Server, core: str | None, interval: float = 0.05, poll: float = 0.02
    ) -> None:
        self.server, self.core = server, core
        self.interval, self.poll = interval, poll
        self.sent = 0
        self.latencies: list[float] = []
        self._outstanding: deque[tuple[str, str, float]] = deque()  # customer, request_id, t_200
        self._ok = 0
        self._lock = threading.Lock()
        self._sending = threading.Event()
        self._deadline: float | None = None
        self._threads = [
            threading.Thread(target=self._send, name="bench-probe-send", daemon=True),
            threading.Thread(target=self._poll, name="bench-probe-poll", daemon=True),
        ]

    def __enter__(self) -> FreshnessProbe:
        self._sending.set()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._sending.clear()
        self._threads[0].join()
        if kind is not None:  # the row failed: do not wait for the probes
            self._deadline = time.monotonic()
            self._threads[1].join()

    def finish(self, deadline: float) -> Freshness:
        self._deadline = time.monotonic() + deadline
        self._threads[1].join()
        ordered = sorted(1000 * t for t in self.latencies)
        return Freshness(
            interval_ms=1000 * self.interval,
            poll_ms=1000 * self.poll,
            sent=self.sent,
            ok=self._ok,
            readable=len(ordered),
            p50_ms=percentile(ordered, 50),
            p99_ms=percentile(ordered, 99),
            max_ms=ordered[-1] if ordered else 0.0,
        )

    def _pin(self) -> None:
        if self.core is not None:  # this thread only
            os.sched_setaffinity(0, {int(self.core)})

    def _send(self) -> None:
        self._pin()
        client = Client(self.server)
        path = f"/v1/event/{WORKSPACE}"
        due = time.monotonic()
        while self._sending.is_set():
            n = self.sent
            self.sent += 1
            with contextlib.suppress(OSError, http.client.HTTPException, ValueError, KeyError):
                status, body = client.request("POST", path, probe_body(n))
                arrived = time.monotonic()
                if status == 200:
                    request_id = json.loads(body)["request_id"]
                    with self._lock:
                        self._ok += 1
                        self._outstanding.append((f"bench-probe-{n:06d}", request_id, arrived))
            due = max(due + self.interval, time.monotonic())
            time.sleep(max(0.0, due - time.monotonic()))
        client.close()

    def _poll(self) -> None:
        self._pin()
        client = Client(self.server)
        while True:
            deadline = self._deadline  # first: once it is set, the sender has finished
            with self._lock:
                head = self._outstanding[0] if self._outstanding else None
            if head is None and deadline is not None:
                break  # every probe seen
            if deadline is not None and time.monotonic() > deadline:
                break
            if head is not None and self._listed(client, head[0], head[1]):
                with self._lock:
                    self._outstanding.popleft()
                self.latencies.append(time.monotonic() - head[2])
                continue  # the next one may be readable already
            time.sleep(self.poll)
        client.close()

    @staticmethod
    def _listed(client: Client, customer: str, request_id: str) -> bool:
        try:
            page = client.get_json(f"{READ}/events?customer_id={customer}&limit=5")
        except (OSError, http.client.HTTPException, ValueError):
            return False
        events = page.get("events") if page else None
        return isinstance(events, list) and any(
            isinstance(e, dict) and e.get("request_id") == request_id for e in events
        )


def drain(server: Server, deadline: float, poll: float = 0.05) -> tuple[int | None, float | None]:
    """Right after a burst: (``lag_events`` then, seconds until the stats route says 0); the
    seconds are None when the lag was not 0 within ``deadline`` s."""
    client = Client(server)
    started = time.monotonic()
    first: int | None = None
    try:
        while True:
            stats = client.get_json(f"{READ}/stats")
            lag = stats.get("lag_events") if stats else None
            if first is None and isinstance(lag, int):
                first = lag
            if lag == 0:
                return first, time.monotonic() - started
            if time.monotonic() - started > deadline:
                return first, None
            time.sleep(poll)
    finally:
        client.close()
