"""`trackd.edge.protocol`'s `/v1` fast path, in process: which requests take it, and admission
control's refusal on it (the rest of the protocol is held by tests/e2e/test_pipelining.py and
tests/e2e/test_fastpath_differential.py, against the real `trackd serve`)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
import uvicorn

from tests.factories import basic
from tests.harness import Harness
from trackd.edge import protocol
from trackd.edge.protocol import ClientLimits, Config, TrackdHttpProtocol

pytestmark = pytest.mark.anyio

EVENT = b'{"type":"event","customer_id":"c1","actions":[{"action":"Bought"}]}'


@pytest.fixture
async def served(harness: Harness) -> AsyncIterator[tuple[Harness, int]]:
    """The harness's started app behind trackd's protocol on a free port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = Config(
        harness.app,
        client_limits=ClientLimits(),
        http=TrackdHttpProtocol,
        lifespan="off",
        access_log=False,
        log_config=None,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield harness, sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
def fast_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The path of every request that ran as a `FastCycle`."""
    runs: list[str] = []
    run = protocol.FastCycle.run_asgi

    async def counted(self: protocol.FastCycle, app: Any) -> None:
        runs.append(self.fast[2].decode())
        await run(self, app)

    monkeypatch.setattr(protocol.FastCycle, "run_asgi", counted)
    return runs


def track(harness: Harness, *headers: bytes, path: bytes | None = None) -> bytes:
    head = [
        b"POST " + (path or b"/v1/event/" + harness.workspace_id.encode()) + b" HTTP/1.1",
        b"Host: trackd",
        b"Authorization: " + basic(harness.workspace_id, harness.key).encode(),
        b"Content-Type: application/json",
        b"Content-Length: %d" % len(EVENT),
        *headers,
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + EVENT


async def exchange(port: int, data: bytes) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    received = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    answers = []
    while received:
        head, _, rest = received.partition(b"\r\n\r\n")
        status_line, *lines = head.split(b"\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines)}
        length = int(headers[b"content-length"])
        answers.append((int(status_line.split()[1]), headers, rest[:length]))
        received = rest[length:]
    return answers


async def test_a_v1_post_takes_the_fast_path_and_every_other_request_asgi(
    served: tuple[Harness, int], fast_runs: list[str]
) -> None:
    harness, port = served
    data = (
        track(harness)
        + b"GET /healthz HTTP/1.1\r\nHost: trackd\r\n\r\n"
        + b"GET /v1/event/WS1 HTTP/1.1\r\nHost: trackd\r\n\r\n"
        + track(harness, b"Connection: close")
    )
    answers = await exchange(port, data)
    assert [status for status, _, _ in answers] == [200, 200, 405, 200]
    assert fast_runs == ["/v1/event/WS1", "/v1/event/WS1"]
    queued = await harness.queued()
    assert [e.request_id for e in queued] == [
        answers[0][1][b"x-request-id"].decode(),
        answers[3][1][b"x-request-id"].decode(),
    ]


async def test_with_the_fast_path_off_every_request_goes_through_asgi(
    served: tuple[Harness, int], fast_runs: list[str]
) -> None:
    harness, port = served
    harness.app.settings = msgspec.structs.replace(harness.app.settings, fast_path=False)
    answers = await exchange(port, track(harness, b"Connection: close"))
    assert [status for status, _, _ in answers] == [200]
    assert fast_runs == []


@pytest.mark.parametrize("fast", [True, False])
async def test_admission_controls_refusal_is_the_same_on_both_roads(
    served: tuple[Harness, int], fast_runs: list[str], fast: bool
) -> None:
    """At the bound a request gets row 27's 503 before its body is read, with Retry-After and
    the rate-limit headers, counted as shed; nothing is queued."""
    harness, port = served
    harness.app.settings = msgspec.structs.replace(harness.app.settings, fast_path=fast)
    admission = harness.app.admission
    admission.in_flight = admission.max_in_flight  # as many in flight as it ever takes
    try:
        answers = await exchange(port, track(harness, b"Connection: close"))
    finally:
        admission.in_flight = 0
    [(status, headers, body)] = answers
    request_id = headers[b"x-request-id"].decode()
    assert status == 503
    assert msgspec.json.decode(body) == {
        "status": "fail",
        "error": {
            "message": "Service temporarily unavailable. Please retry.",
            "type": "ServerError",
            "request_id": request_id,
        },
    }
    assert headers[b"retry-after"] == b"1"
    assert headers[b"x-ratelimit-limit"] == b"30000"
    assert harness.app.counters.shed == 1
    assert fast_runs == (["/v1/event/WS1"] if fast else [])
    assert await harness.queued() == []


async def test_an_idle_keep_alive_connection_closes_after_the_timeout_and_a_busy_one_does_not(
    harness: Harness,
) -> None:
    """The keep-alive timeout is a deadline of the sweep (no timer per answer): a connection
    idle past `timeout_keep_alive` (+ one sweep) is closed; one that sends its next request in
    time is answered."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = Config(
        harness.app,
        client_limits=ClientLimits(),
        http=TrackdHttpProtocol,
        lifespan="off",
        access_log=False,
        log_config=None,
        timeout_keep_alive=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        for _ in range(3):  # each request within the timeout of the answer before it
            writer.write(track(harness))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200 ")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            await asyncio.sleep(0.5)
        began = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the server
        waited = asyncio.get_running_loop().time() - began
        assert 0.4 <= waited <= 1 + protocol.SWEEP_SECONDS + 0.5
        writer.close()
    finally:
        server.should_exit = True
        await task
        sock.close()
