"""Fault suites: the real `trackd serve` under a full disk, SIGTERM under load, and overload.

Shared here: `Load`, clients that send many-event requests and record every answer with its
times, the two bodies the contract owes them (`expected`), and `report`, which prints a suite's
figures (as one ``FIGURES {json}`` line, seen with ``pytest -s``) for docs/reliability.md.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any, NamedTuple

import anyio
import anyio.abc
import httpx
import msgspec

from tests.conftest import SEED_BODY
from tests.e2e.helpers import SUCCESS_MESSAGE, auth
from tests.e2e.traffic import Outcome, broken_promises
from trackd.models import Envelope

UNAVAILABLE = {"message": "Service temporarily unavailable. Please retry.", "type": "ServerError"}
RETRY_AFTER = "1"


class Answer(NamedTuple):
    """One request of a `Load`, and what came back (status None: no response at all)."""

    marker: str  # the request's customer_id, unique across a test
    status: int | None
    request_id: str | None
    body: Any
    retry_after: str | None
    sent: float  # time.monotonic() before sending
    answered: float  # time.monotonic() once answered (or failed)


def bulk_body(marker: str, events: int) -> bytes:
    """`events` copies of the seed's action (no warnings: the 200 body is the plain one)."""
    return msgspec.json.encode(
        {**SEED_BODY, "customer_id": marker, "actions": SEED_BODY["actions"] * events}
    )


def expected(answer: Answer) -> tuple[int | None, Any, str | None]:
    """What the contract owes an answer of status 200 or 503 (row 27, with Retry-After)."""
    if answer.status == 200:
        body = {"status": "success", "message": SUCCESS_MESSAGE, "request_id": answer.request_id}
        return 200, body, None
    error = {**UNAVAILABLE, "request_id": answer.request_id}
    return 503, {"status": "fail", "error": error}, RETRY_AFTER


class Load:
    """`clients` concurrent clients, each on its own keep-alive connection, sending requests of
    `events` events with a distinct customer_id until stopped. A client that gets a 503 waits
    `pause_after_503` seconds (an impatient client: shorter than the Retry-After it was given)."""

    def __init__(
        self,
        url: str,
        workspace_id: str,
        key: str,
        *,
        clients: int,
        events: int,
        tag: str,
        timeout: float = 30.0,
        pause_after_503: float = 0.01,
    ) -> None:
        self.url = url
        self.workspace_id = workspace_id
        self.key = key
        self.clients = clients
        self.events = events
        self.tag = tag
        self.timeout = timeout
        self.pause_after_503 = pause_after_503
        self.answers: list[Answer] = []
        self._stopped = False

    def start(self, group: anyio.abc.TaskGroup) -> None:
        for n in range(self.clients):
            group.start_soon(self._client, n)

    def stop(self) -> None:
        self._stopped = True

    def count(self, status: int | None, since: float = 0.0) -> int:
        return sum(1 for a in self.answers if a.status == status and a.answered >= since)

    async def wait_for(self, status: int, count: int, seconds: float, since: float = 0.0) -> None:
        """Until `count` answers of `status` came back after `since` (fails after `seconds`)."""
        with anyio.fail_after(seconds):
            while self.count(status, since) < count:
                await anyio.sleep(0.01)

    async def send(self, client: httpx.AsyncClient, marker: str) -> Answer:
        """One request on `client`, its answer recorded (and returned)."""
        sent = time.monotonic()
        try:
            response = await client.post(
                f"/v1/event/{self.workspace_id}",
                content=bulk_body(marker, self.events),
                headers=auth(self.workspace_id, self.key),
            )
        except httpx.TransportError:
            answer = Answer(marker, None, None, None, None, sent, time.monotonic())
        else:
            answer = Answer(
                marker,
                response.status_code,
                response.headers.get("x-request-id"),
                response.json(),
                response.headers.get("retry-after"),
                sent,
                time.monotonic(),
            )
        self.answers.append(answer)
        return answer

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=self.timeout)

    async def _client(self, n: int) -> None:
        async with self.client() as client:
            i = 0
            while not self._stopped:
                answer = await self.send(client, f"{self.tag}-c{n}-r{i}")
                i += 1
                if answer.status is None:
                    await anyio.sleep(0.01)  # the server is gone: do not spin
                elif answer.status == 503:
                    await anyio.sleep(self.pause_after_503)


def as_outcomes(answers: list[Answer]) -> list[Outcome]:
    """The e2e suites' view of the answers, for `broken_promises` (every key was right)."""
    return [Outcome(a.marker, True, a.status, a.request_id, a.body) for a in answers]


def promises(answers: list[Answer], envelopes: list[Envelope]) -> dict[str, list[str]]:
    return broken_promises(as_outcomes(answers), envelopes)


def report(
    suite: str, outcomes: list[Outcome], envelopes: list[Envelope], **extra: Any
) -> dict[str, Any]:
    """The figures docs/reliability.md quotes, printed on one line and returned: requests sent,
    200s, 200s missing from the queue, envelopes queued more than once, 5xx answers."""
    statuses = Counter(o.status for o in outcomes)
    queued = Counter(e.request_id for e in envelopes)
    figures = {
        "suite": suite,
        "requests": len(outcomes),
        "acknowledged": statuses[200],
        "lost": sum(1 for o in outcomes if o.status == 200 and not queued[o.request_id]),
        "duplicated": sum(n - 1 for n in queued.values() if n > 1),
        "5xx": sum(n for s, n in statuses.items() if s is not None and s >= 500),
        "statuses": {str(s): n for s, n in sorted(statuses.items(), key=lambda kv: str(kv[0]))},
        **extra,
    }
    print("FIGURES " + json.dumps(figures, sort_keys=True))
    return figures
