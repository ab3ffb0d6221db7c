"""Pipelined requests on one connection, against the real `trackd serve`, over a raw socket.

HTTP/1.1 answers the requests of a connection in the order they came (RFC 9112 §9.3.2): a client
takes the n-th answer for its n-th request. So a request the server cannot parse (garbage, a bad
header, a head over the 414/431 caps, a broken chunked body) is answered only after the answers
owed to the valid requests before it, and then the connection closes; a request whose head or
body never arrives gets nothing, after the same answers. Each test compares what was answered
with what was stored: every 200 has its events, nothing else is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator
from typing import Any, NamedTuple

import anyio
import msgspec
import pytest

from tests.e2e.helpers import SUCCESS_MESSAGE, ServerWorkspace, poll
from tests.e2e.server import Launcher, TrackdProcess
from tests.factories import basic

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

#: The server's deadlines in this module (production defaults: 10 s and 30 s).
HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0
#: Generous bound for anything the server must do by itself (answer, close).
DEADLINE = 30.0

INVALID = ("Bad Request", "Invalid HTTP request received.")
URL_TOO_LONG = ("URI Too Long", "The request URL is too long")
HEAD_TOO_LARGE = (
    "Request Header Fields Too Large",
    "The request headers are too many or too large",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackdProcess]:
    """One server for the module with short client deadlines (env, as a user sets them)."""
    launcher = Launcher(tmp_path_factory.mktemp("pipelining"))
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("TRACKD_HEADER_TIMEOUT_SECONDS", str(HEADER_TIMEOUT))
            env.setenv("TRACKD_BODY_TIMEOUT_SECONDS", str(BODY_TIMEOUT))
            started = launcher.start()
        yield started
    finally:
        launcher.close()


@pytest.fixture
async def ws(server: TrackdProcess) -> Any:
    async with server.client() as client:
        yield await Workspace.create(server, client)


class Workspace(ServerWorkspace):
    def track(self, body: Any, *headers: bytes, key: str | None = None) -> bytes:
        """One Track Event request, as bytes on the wire."""
        payload = msgspec.json.encode(body)
        head = [
            b"POST /v1/event/%s HTTP/1.1" % self.id.encode(),
            b"Host: trackd",
            b"Authorization: " + basic(self.id, key or self.key).encode(),
            b"Content-Type: application/json",
            b"Content-Length: %d" % len(payload),
            *headers,
        ]
        return b"\r\n".join(head) + b"\r\n\r\n" + payload

    def chunked(self, chunks: bytes) -> bytes:
        """A Track Event request with a chunked body, the chunks as given."""
        head = [
            b"POST /v1/event/%s HTTP/1.1" % self.id.encode(),
            b"Host: trackd",
            b"Authorization: " + basic(self.id, self.key).encode(),
            b"Content-Type: application/json",
            b"Transfer-Encoding: chunked",
        ]
        return b"\r\n".join(head) + b"\r\n\r\n" + chunks

    async def stored(self, events: int) -> Counter[str]:
        """Events stored per request id, once `events` are accepted and processed; asserts that
        exactly `events` were accepted."""
        stats = await poll(
            lambda: self.get("stats"),
            lambda r: (
                r.status_code == 200
                and r.json()["accepted_events"] >= events
                and r.json()["lag_events"] == 0
            ),
        )
        assert stats.json()["accepted_events"] == events, stats.json()
        page = (await self.get("events", limit=1000)).json()
        return Counter(event["request_id"] for event in page["events"])


def body(n: int, actions: int = 1, **attributes: Any) -> dict[str, Any]:
    return {
        "type": "event",
        "customer_id": f"c{n}",
        "actions": [
            {"action": f"Pipelined {n}", "attributes": {"i": i, **attributes}}
            for i in range(actions)
        ],
    }


# -- reading answers off the socket ---------------------------------------------------------------


class Answer(NamedTuple):
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    def json(self) -> Any:
        return msgspec.json.decode(self.body)

    @property
    def request_id(self) -> str:
        return self.headers[b"x-request-id"].decode()

    def success(self, warnings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The exact 200 body owed to this answer."""
        owed: dict[str, Any] = {
            "status": "success",
            "message": SUCCESS_MESSAGE,
            "request_id": self.request_id,
        }
        if warnings:
            owed["warnings"] = warnings
        return owed

    def failure(self, type_: str, message: str, attribute: str | None = None) -> dict[str, Any]:
        """The exact error body owed to this answer."""
        error = {"message": message, "type": type_}
        if attribute is not None:
            error["attribute"] = attribute
        return {"status": "fail", "error": {**error, "request_id": self.request_id}}


def parse_answers(data: bytes) -> list[Answer]:
    """Every complete answer in `data` (trackd always sends a Content-Length)."""
    answers = []
    while data:
        head, separator, rest = data.partition(b"\r\n\r\n")
        assert separator, f"an unfinished answer: {data!r}"
        status_line, *lines = head.split(b"\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        assert b"transfer-encoding" not in headers
        length = int(headers[b"content-length"])
        assert len(rest) >= length, f"an unfinished body: {data!r}"
        answers.append(Answer(int(status_line.split()[1]), headers, rest[:length]))
        data = rest[length:]
    return answers


async def converse(server: TrackdProcess, *pieces: bytes) -> list[Answer]:
    """Send each piece as it is (one write each, without waiting for answers), read until the
    server closes the connection, and return every answer in the order they came."""
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
        with anyio.fail_after(DEADLINE):
            received = await reader.read()  # until the server closes
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return parse_answers(received)


# -- a parse error after valid requests ---------------------------------------------------------

GARBAGE = b"\x16\x03\x01\x02\x00 not HTTP at all\r\n\r\n"
BAD_HEADER = b"GET /healthz HTTP/1.1\r\nHost: trackd\r\nBad Header: x\r\n\r\n"
MANY_FIELDS = (
    b"GET /healthz HTTP/1.1\r\nHost: trackd\r\n"
    + b"".join(b"X-F%d: v\r\n" % i for i in range(120))
    + b"\r\n"
)
HUGE_HEADER = b"GET /healthz HTTP/1.1\r\nHost: trackd\r\nX-Huge: " + b"h" * 40_000 + b"\r\n\r\n"
LONG_URL = b"GET /healthz?q=" + b"u" * 9000 + b" HTTP/1.1\r\nHost: trackd\r\n\r\n"

BROKEN = [
    pytest.param(GARBAGE, INVALID, id="garbage"),
    pytest.param(BAD_HEADER, INVALID, id="bad header"),
    pytest.param(MANY_FIELDS, HEAD_TOO_LARGE, id="too many header fields (431)"),
    pytest.param(HUGE_HEADER, HEAD_TOO_LARGE, id="oversized head (431)"),
    pytest.param(LONG_URL, URL_TOO_LONG, id="oversized URL (414)"),
]


@pytest.mark.parametrize(("broken", "refusal"), BROKEN)
async def test_a_broken_request_after_a_valid_one_is_answered_after_the_valid_ones_answer(
    server: TrackdProcess, ws: Workspace, broken: bytes, refusal: tuple[str, str]
) -> None:
    answers = await converse(server, ws.track(body(0)) + broken)
    assert [a.status for a in answers] == [200, refusal_status(refusal)]
    first, second = answers
    assert first.json() == first.success()
    assert second.json() == second.failure(*refusal)
    assert second.headers[b"connection"] == b"close"
    assert await ws.stored(1) == {first.request_id: 1}


@pytest.mark.parametrize(("broken", "refusal"), BROKEN)
async def test_a_broken_request_sent_apart_after_a_valid_one_waits_for_its_answer_too(
    server: TrackdProcess, ws: Workspace, broken: bytes, refusal: tuple[str, str]
) -> None:
    """The broken bytes in a write of their own: read while the valid request is in flight."""
    answers = await converse(server, ws.track(body(0)), broken)
    assert [a.status for a in answers] == [200, refusal_status(refusal)]
    assert answers[0].json() == answers[0].success()
    assert answers[1].json() == answers[1].failure(*refusal)
    assert await ws.stored(1) == {answers[0].request_id: 1}


def refusal_status(refusal: tuple[str, str]) -> int:
    return {INVALID: 400, URL_TOO_LONG: 414, HEAD_TOO_LARGE: 431}[refusal]


async def test_garbage_after_three_pipelined_requests_is_answered_after_all_three(
    server: TrackdProcess, ws: Workspace
) -> None:
    valid = b"".join(ws.track(body(n, actions=n + 1)) for n in range(3))
    answers = await converse(server, valid + GARBAGE)
    assert [a.status for a in answers] == [200, 200, 200, 400]
    assert [a.json() for a in answers[:3]] == [a.success() for a in answers[:3]]
    assert answers[3].json() == answers[3].failure(*INVALID)
    assert await ws.stored(6) == {a.request_id: n + 1 for n, a in enumerate(answers[:3])}


async def test_a_broken_chunked_body_after_a_valid_request_is_answered_after_it_and_not_kept(
    server: TrackdProcess, ws: Workspace
) -> None:
    """The parse error is inside the second request's body: that request gets the 400."""
    broken = ws.chunked(b'5\r\n{"typ\r\nzz\r\n')
    answers = await converse(server, ws.track(body(0)) + broken)
    assert [a.status for a in answers] == [200, 400]
    assert answers[0].json() == answers[0].success()
    assert answers[1].json() == answers[1].failure(*INVALID)
    assert await ws.stored(1) == {answers[0].request_id: 1}


async def test_a_broken_chunked_body_alone_gets_the_400_and_nothing_is_kept(
    server: TrackdProcess, ws: Workspace
) -> None:
    payload = msgspec.json.encode(body(0))
    chunks = b"%x\r\n%s\r\n" % (len(payload) - 2, payload[:-2])
    answers = await converse(server, ws.chunked(chunks), b"zz\r\n")
    assert [a.status for a in answers] == [400]
    assert answers[0].json() == answers[0].failure(*INVALID)
    assert await ws.stored(0) == {}


async def test_a_request_asking_to_close_is_answered_and_what_follows_is_not_read(
    server: TrackdProcess, ws: Workspace
) -> None:
    answers = await converse(server, ws.track(body(0), b"Connection: close") + GARBAGE)
    assert [a.status for a in answers] == [200]
    assert answers[0].json() == answers[0].success()
    assert await ws.stored(1) == {answers[0].request_id: 1}


# -- requests that never finish after valid ones ------------------------------------------------


async def test_an_unfinished_head_after_a_valid_request_gets_nothing_after_the_valid_answer(
    server: TrackdProcess, ws: Workspace
) -> None:
    """The header deadline closes the connection, after the answer owed."""
    answers = await converse(server, ws.track(body(0)) + b"POST /v1/event/x HTTP/1.1\r\nHo")
    assert [a.status for a in answers] == [200]
    assert answers[0].json() == answers[0].success()
    assert await ws.stored(1) == {answers[0].request_id: 1}


async def test_an_unfinished_body_after_a_valid_request_is_not_kept(
    server: TrackdProcess, ws: Workspace
) -> None:
    """The body deadline closes the connection: the unfinished request is never answered."""
    unfinished = ws.track(body(1)).replace(b"Content-Length: ", b"Content-Length: 1")[:-5]
    answers = await converse(server, ws.track(body(0)) + unfinished)
    assert [a.status for a in answers] == [200]
    assert answers[0].json() == answers[0].success()
    assert await ws.stored(1) == {answers[0].request_id: 1}


# -- pipelined valid requests -------------------------------------------------------------------


async def test_pipelined_requests_are_answered_in_order_and_each_200_is_stored(
    server: TrackdProcess, ws: Workspace
) -> None:
    """Different answers, so their order shows: a 200, a contract 400, a 200 with a warning,
    a 401, and a last 200 that asks to close."""
    requests = [
        ws.track(body(0)),
        ws.track({**body(1), "type": "customer"}),
        ws.track(body(2, actions=2, moe_x=1)),
        ws.track(body(3), key="wrong key"),
        ws.track(body(4, actions=3), b"Connection: close"),
    ]
    answers = await converse(server, b"".join(requests))
    assert [a.status for a in answers] == [200, 400, 200, 401, 200]
    assert answers[0].json() == answers[0].success()
    assert answers[1].json() == answers[1].failure("AttributeError", "type should be event", "type")
    reserved = [{"index": i, "attribute": "moe_x", "reason": "reserved_prefix"} for i in range(2)]
    assert answers[2].json() == answers[2].success(reserved)
    assert answers[3].json() == answers[3].failure(
        "Authentication required",
        "App Secret key mismatch. Please login to the dashboard to verify key",
    )
    assert answers[4].json() == answers[4].success()
    assert await ws.stored(6) == {
        answers[0].request_id: 1,
        answers[2].request_id: 2,
        answers[4].request_id: 3,
    }


async def test_many_pipelined_requests_each_get_their_own_answer_in_order(
    server: TrackdProcess, ws: Workspace
) -> None:
    """Twenty requests in one write, each for its own customer: the n-th answer's request id
    is the one stored with the n-th request's customer."""
    requests = [ws.track(body(n)) for n in range(19)]
    requests.append(ws.track(body(19), b"Connection: close"))
    answers = await converse(server, b"".join(requests))
    assert [a.status for a in answers] == [200] * 20
    assert [a.json() for a in answers] == [a.success() for a in answers]
    assert await ws.stored(20) == {a.request_id: 1 for a in answers}
    page = (await ws.get("events", limit=1000)).json()
    customers = {event["request_id"]: event["customer_id"] for event in page["events"]}
    assert [customers[a.request_id] for a in answers] == [f"c{n}" for n in range(20)]
