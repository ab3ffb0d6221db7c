"""Hostile clients against the real `trackd serve` process, over sockets.

Slow clients (nothing sent, headers a byte at a time, a body that never ends) are closed by the
server's header and body deadlines (`trackd.edge.protocol`; uvicorn alone has none before the
first response), while ordinary requests keep getting their 200. Header floods get 431, never a
5xx; oversized and gzip-bomb bodies get the contract's 413 with the server's memory bounded;
invalid UTF-8 anywhere gets a contract 4xx. After each attack the server still answers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import anyio
import httpx
import msgspec
import pytest

from tests.e2e.helpers import auth, failure, success
from tests.e2e.server import Launcher, TrackdProcess
from tests.factories import SEED_BODY, basic

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

#: The server's deadlines in this module (production defaults: 10 s and 30 s).
HEADER_TIMEOUT = 3.0
BODY_TIMEOUT = 3.0
#: Generous bound for anything the server must do by itself (close, answer, recover).
DEADLINE = 30.0
SLOW_CLIENTS = 51  # 17 of each kind
TOO_LARGE = ("PayloadTooLarge", "Payload size exceeds 128 KB")
MAX_BODY = 131072


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackdProcess]:
    """One server for the module, started with short client deadlines (env, as a user sets
    them); the demo workspace DEMO and its key are what the tests use."""
    launcher = Launcher(tmp_path_factory.mktemp("hostile"))
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("TRACKD_HEADER_TIMEOUT_SECONDS", str(HEADER_TIMEOUT))
            env.setenv("TRACKD_BODY_TIMEOUT_SECONDS", str(BODY_TIMEOUT))
            started = launcher.start()
        assert started.demo_key is not None, started.banner
        yield started
    finally:
        launcher.close()


@pytest.fixture
async def client(server: TrackdProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with server.client() as c:
        yield c


def address(server: TrackdProcess) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def demo(server: TrackdProcess) -> dict[str, str]:
    assert server.demo_key is not None
    return auth("DEMO", server.demo_key)


async def still_serving(client: httpx.AsyncClient, server: TrackdProcess) -> None:
    """The server answers an ordinary Track Event request with its exact 200."""
    response = await client.post("/v1/event/DEMO", json=SEED_BODY, headers=demo(server))
    assert response.status_code == 200, response.text
    assert response.json() == success(response)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError(f"no VmRSS for pid {pid}")


# -- raw HTTP ------------------------------------------------------------------------------------


class Raw(NamedTuple):
    """A response read off a socket; `status` None means the server closed (or reset) the
    connection without answering."""

    status: int | None
    headers: dict[bytes, bytes]
    body: bytes

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


async def exchange(server: TrackdProcess, request: bytes) -> Raw:
    """Send `request` as is and read one response (or the close)."""
    reader, writer = await asyncio.open_connection(*address(server))
    try:
        with contextlib.suppress(ConnectionError):
            writer.write(request)
            await writer.drain()
        with anyio.fail_after(DEADLINE):
            return await read_response(reader)
    finally:
        writer.close()


async def read_response(reader: asyncio.StreamReader) -> Raw:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return Raw(None, {}, b"")
    status_line, *lines = head[:-4].split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
    return Raw(int(status_line.split()[1]), headers, body)


def raw_failure(response: Raw, type_: str, message: str) -> dict[str, Any]:
    """The exact error body owed to a raw response (its request id from the header)."""
    return {
        "status": "fail",
        "error": {
            "message": message,
            "type": type_,
            "request_id": response.headers[b"x-request-id"].decode(),
        },
    }


# -- slow clients --------------------------------------------------------------------------------


class Slow(NamedTuple):
    kind: str
    sent: int  # bytes the client managed to send
    planned: int  # bytes it meant to send
    answer: bytes  # what it read before the connection ended
    closed_at: float  # time.monotonic() when it saw the end


async def _hang(
    server: TrackdProcess, kind: str, upfront: bytes, drip: bytes, ready: anyio.Event
) -> Slow:
    """Connect, send `upfront`, then `drip` one byte every 0.1 s, reading all along; returns
    once the server ends the connection."""
    reader, writer = await asyncio.open_connection(*address(server))
    sent = 0

    async def send() -> None:
        nonlocal sent
        writer.write(upfront)
        await writer.drain()
        sent += len(upfront)
        ready.set()
        for byte in drip:
            await asyncio.sleep(0.1)
            writer.write(bytes([byte]))
            await writer.drain()
            sent += 1
        await asyncio.sleep(DEADLINE * 2)  # everything sent: wait for the server

    sender = asyncio.create_task(send())
    try:
        answer = await reader.read()  # until the server closes
    except ConnectionError:
        answer = b""
    finally:
        closed_at = time.monotonic()
        writer.close()
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    return Slow(kind, sent, len(upfront) + len(drip), answer, closed_at)


def _slow_requests(key: str) -> dict[str, tuple[bytes, bytes]]:
    """(sent at once, then dripped) of each kind of slow client."""
    head = (
        f"POST /v1/event/DEMO HTTP/1.1\r\nHost: trackd\r\nAuthorization: {basic('DEMO', key)}\r\n"
        "Content-Type: application/json\r\n"
    ).encode()
    return {
        "idle": (b"", b""),  # connects, never sends a byte
        "slow headers": (b"", head + b"X-Slow: " + b"s" * 300 + b"\r\n\r\n"),  # ~40 s to send
        "endless body": (head + b"Content-Length: 1000\r\n\r\n" + b'{"type": "ev', b""),
    }


async def test_slow_clients_are_closed_by_the_server_while_ordinary_requests_get_200(
    server: TrackdProcess, client: httpx.AsyncClient
) -> None:
    assert server.demo_key is not None
    kinds = _slow_requests(server.demo_key)
    results: list[Slow] = []
    answered: list[float] = []

    async def one(kind: str, ready: anyio.Event) -> None:
        results.append(await _hang(server, kind, *kinds[kind], ready))

    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as group:
            readiness = [anyio.Event() for _ in range(SLOW_CLIENTS)]
            for n, ready in enumerate(readiness):
                group.start_soon(one, list(kinds)[n % len(kinds)], ready)
            for ready in readiness:  # every one connected, and sent what it sends at once
                await ready.wait()
            for _ in range(20):  # while all of them hang
                await still_serving(client, server)
                answered.append(time.monotonic())

    assert len(results) == SLOW_CLIENTS
    for result in results:
        # Closed by the server without an answer, before a dripping client was done.
        assert result.answer == b"", result
        if result.kind == "slow headers":
            assert result.sent < result.planned, result
    assert min(r.closed_at for r in results) > answered[0]  # the first 200 came while all hung
    await still_serving(client, server)


# -- header floods -------------------------------------------------------------------------------

HEAD_TOO_LARGE = (
    "Request Header Fields Too Large",
    "The request headers are too many or too large",
)


async def test_hundreds_of_headers_get_431_and_the_server_keeps_serving(
    server: TrackdProcess, client: httpx.AsyncClient
) -> None:
    flood = {f"X-Flood-{n}": "v" for n in range(500)}
    response = await client.post(
        "/v1/event/DEMO", json=SEED_BODY, headers={**demo(server), **flood}
    )
    assert response.status_code == 431
    assert response.json() == failure(response, *HEAD_TOO_LARGE)
    assert response.headers["connection"] == "close"
    await still_serving(client, server)


@pytest.mark.parametrize("size", [100_000, 2_000_000])
async def test_a_huge_header_gets_431_or_a_closed_connection_never_a_5xx(
    server: TrackdProcess, client: httpx.AsyncClient, size: int
) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: trackd\r\nX-Huge: " + b"h" * size + b"\r\n\r\n"
    response = await exchange(server, request)
    # The server stops reading at 32 KiB of head and closes: the client may see the reset
    # before the answer, which is then lost; an answer, when read, is the 431.
    if response.status is not None:
        assert response.status == 431
        assert response.json() == raw_failure(response, *HEAD_TOO_LARGE)
    await still_serving(client, server)


async def test_a_header_that_never_ends_is_cut_off_at_the_head_limit(
    server: TrackdProcess, client: httpx.AsyncClient
) -> None:
    """Sent 1 KiB at a time, each piece read on its own: httptools would buffer it forever."""
    reader, writer = await asyncio.open_connection(*address(server))
    sent = 0

    async def flood() -> None:
        nonlocal sent
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: trackd\r\nX-Endless: ")
        while sent < 10_000_000:
            writer.write(b"e" * 1024)
            await writer.drain()
            sent += 1024
            await asyncio.sleep(0.001)

    flooding = asyncio.create_task(flood())
    try:
        with anyio.fail_after(DEADLINE):
            response = await read_response(reader)
    finally:
        writer.close()
        flooding.cancel()
        await asyncio.gather(flooding, return_exceptions=True)
    assert sent < 10_000_000  # cut off long before: the head limit is 32 KiB
    if response.status is not None:
        assert response.status == 431
        assert response.json() == raw_failure(response, *HEAD_TOO_LARGE)
    await still_serving(client, server)


async def test_a_url_over_8_kib_gets_414(server: TrackdProcess, client: httpx.AsyncClient) -> None:
    response = await client.get("/api/workspaces/DEMO/events", params={"action": "a" * 9000})
    assert response.status_code == 414
    assert response.json() == failure(response, "URI Too Long", "The request URL is too long")
    await still_serving(client, server)


# -- oversized bodies and gzip bombs -------------------------------------------------------------


async def _chunks(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.fixture(scope="module")
def gigabyte_bomb() -> bytes:
    """1 GiB of zeros, gzipped (about 1 MB)."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    return b"".join([*(deflate.compress(zeros) for _ in range(1024)), deflate.flush()])


async def test_an_oversized_declared_body_gets_the_exact_413(
    server: TrackdProcess, client: httpx.AsyncClient
) -> None:
    body = b'{"type": "event", "pad": "' + b"x" * MAX_BODY + b'"}'
    response = await client.post("/v1/event/DEMO", content=body, headers=demo(server))
    assert response.status_code == 413
    assert response.json() == failure(response, *TOO_LARGE)
    await still_serving(client, server)


async def test_an_oversized_chunked_body_gets_the_exact_413(
    server: TrackdProcess, client: httpx.AsyncClient
) -> None:
    body = b'{"type": "event", "pad": "' + b"x" * (4 * MAX_BODY) + b'"}'
    response = await client.post("/v1/event/DEMO", content=_chunks(body), headers=demo(server))
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413
    assert response.json() == failure(response, *TOO_LARGE)
    await still_serving(client, server)


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "chunked"])
async def test_a_gigabyte_gzip_bomb_gets_413_and_the_server_memory_stays_bounded(
    server: TrackdProcess, client: httpx.AsyncClient, gigabyte_bomb: bytes, declared: bool
) -> None:
    before = rss_kib(server.pid)
    headers = {**demo(server), "Content-Encoding": "gzip"}
    content = gigabyte_bomb if declared else _chunks(gigabyte_bomb)
    response = await client.post("/v1/event/DEMO", content=content, headers=headers)
    assert response.status_code == 413
    assert response.json() == failure(response, *TOO_LARGE)
    assert rss_kib(server.pid) - before < 100 * 1024
    await still_serving(client, server)


async def test_a_bomb_small_enough_to_read_is_not_inflated_past_the_limit(
    server: TrackdProcess, client: httpx.AsyncClient
) -> None:
    """120 MiB of zeros gzip to ~120 KB: under the read limit, so only inflation can stop it."""
    bomb = gzip.compress(bytes(120 << 20), 9)
    assert len(bomb) <= MAX_BODY
    before = rss_kib(server.pid)
    headers = {**demo(server), "Content-Encoding": "gzip"}
    response = await client.post("/v1/event/DEMO", content=bomb, headers=headers)
    assert response.status_code == 413
    assert response.json() == failure(response, *TOO_LARGE)
    assert rss_kib(server.pid) - before < 100 * 1024
    await still_serving(client, server)


# -- invalid UTF-8 -------------------------------------------------------------------------------

BAD = b"\xff\xfe\xc0\xaf"  # never valid UTF-8 (0xFF, 0xFE; 0xC0 0xAF is an overlong '/')
INVALID_HTTP = ("Bad Request", "Invalid HTTP request received.")
AUTH = "Authentication required"


@pytest.mark.parametrize(
    "target",
    [b"/v1/event/" + BAD, b"/v1/event/DEMO?app_id=" + BAD, b"/api/workspaces/DEMO/events?x=" + BAD],
    ids=["path", "event query", "read query"],
)
async def test_raw_invalid_utf8_in_the_request_target_gets_400(
    server: TrackdProcess, client: httpx.AsyncClient, target: bytes
) -> None:
    request = b"POST " + target + b" HTTP/1.1\r\nHost: trackd\r\nContent-Length: 0\r\n\r\n"
    response = await exchange(server, request)
    assert response.status == 400
    assert response.json() == raw_failure(response, *INVALID_HTTP)
    await still_serving(client, server)


async def test_percent_encoded_invalid_utf8_in_paths_gets_contract_answers(
    server: TrackdProcess, client: httpx.AsyncClient
) -> None:
    escaped = "%FF%FE%C0%AF"
    event = await client.post(f"/v1/event/{escaped}", json=SEED_BODY, headers=demo(server))
    assert event.status_code == 409  # row 6: the path id is not the Basic user
    assert event.json() == failure(
        event, "Authentication Mismatch", "App key mismatch in params and authentication"
    )
    read = await client.get(f"/api/workspaces/{escaped}/stats", headers=demo(server))
    assert read.status_code == 403
    assert read.json() == failure(read, "Forbidden", "These credentials are for another workspace")
    nowhere = await client.get(f"/{escaped}")
    assert nowhere.status_code == 404
    assert nowhere.json() == failure(nowhere, "NotFound", "No such endpoint")


async def test_percent_encoded_invalid_utf8_in_queries_gets_contract_answers(
    server: TrackdProcess, client: httpx.AsyncClient
) -> None:
    escaped = "%FF%FE%C0%AF"
    event = await client.post(
        f"/v1/event/DEMO?app_id={escaped}", json=SEED_BODY, headers=demo(server)
    )
    assert event.status_code == 409  # row 6: app_id is not the Basic user
    assert event.json() == failure(
        event, "Authentication Mismatch", "App key mismatch in params and authentication"
    )
    assert server.demo_key is not None
    read_auth = {"Authorization": basic("DEMO", server.demo_key)}
    events = await client.get(
        f"/api/workspaces/DEMO/events?customer_id={escaped}&action={escaped}", headers=read_auth
    )
    assert events.status_code == 200
    assert events.json() == {"events": [], "next_cursor": None}
    since = await client.get(f"/api/workspaces/DEMO/issues?since={escaped}", headers=read_auth)
    assert since.status_code == 400
    assert since.json() == {
        "status": "fail",
        "error": {
            "message": "since is expected to be an epoch timestamp or an ISO 8601 date-time",
            "type": "InvalidParams",
            "attribute": "since",
            "request_id": since.headers["x-request-id"],
        },
    }


def _basic_bytes(credentials: bytes) -> bytes:
    return b"Basic " + base64.b64encode(credentials)


async def test_invalid_utf8_in_header_values_gets_contract_answers(
    server: TrackdProcess, client: httpx.AsyncClient
) -> None:
    assert server.demo_key is not None
    key = server.demo_key.encode()
    json_type = {"Content-Type": "application/json"}
    cases: list[tuple[dict[str, Any], int, tuple[str, str]]] = [
        (  # row 4: the credentials decode to invalid UTF-8
            {"Authorization": _basic_bytes(b"DEMO:" + BAD), **json_type},
            401,
            (AUTH, "Invalid identity information found"),
        ),
        (  # row 4: not even base64
            {"Authorization": b"Basic " + BAD, **json_type},
            401,
            (AUTH, "Invalid identity information found"),
        ),
        (  # row 3: the scheme itself is garbage
            {"Authorization": BAD + b" x", **json_type},
            401,
            (AUTH, "Invalid authorization used. Only 'Basic Auth' authorization is supported."),
        ),
        (  # row 7
            {**demo(server), "MOE-APPKEY": BAD},
            401,
            (
                AUTH,
                "MOE_APPKEY doesn't match the Username (APP_KEY) used in Basic Auth authorization.",
            ),
        ),
        (  # row 13
            {"Authorization": _basic_bytes(b"DEMO:" + key), "Content-Type": BAD},
            415,
            ("Unsupported media type", "Content type is not supported"),
        ),
        (  # row 13
            {**demo(server), "Content-Encoding": BAD},
            415,
            ("Unsupported media type", "Content type is not supported"),
        ),
    ]
    for headers, status, (type_, message) in cases:
        response = await client.post("/v1/event/DEMO", json=SEED_BODY, headers=headers)
        assert (response.status_code, response.json()) == (
            status,
            failure(response, type_, message),
        ), headers
    # Headers that are only read, never required: a bad value is ignored, the request accepted.
    for name in ("X-Forwarded-For", "Idempotency-Key"):
        accepted = await client.post(
            "/v1/event/DEMO", json=SEED_BODY, headers={**demo(server), name: BAD}
        )
        assert accepted.status_code == 200, name
        assert accepted.json() == success(accepted)
    bearer = await client.get(
        "/api/workspaces/DEMO/stats", headers={"Authorization": b"Bearer " + BAD}
    )
    assert bearer.status_code == 401  # no admin token is set: a Bearer is not Basic (row 3)
    assert bearer.json() == failure(
        bearer,
        AUTH,
        "Invalid authorization used. Only 'Basic Auth' authorization is supported.",
    )


MALFORMED = (
    "Malformed JSON",
    "Could not decode the request body. The JSON was incorrect or not encoded as UTF-8.",
)


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
async def test_invalid_utf8_in_the_body_gets_400_malformed_json(
    server: TrackdProcess, client: httpx.AsyncClient, gzipped: bool
) -> None:
    body = b'{"type": "event", "customer_id": "' + BAD + b'", "actions": [{"action": "x"}]}'
    headers = demo(server)
    if gzipped:
        body, headers = gzip.compress(body), {**headers, "Content-Encoding": "gzip"}
    response = await client.post("/v1/event/DEMO", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json() == failure(response, *MALFORMED)
    await still_serving(client, server)


@pytest.mark.parametrize(
    ("query", "attribute", "message"),
    [
        ("limit=%C2%B2", "limit", "limit is expected to be an integer from 1 to 1000"),
        ("cursor=%C2%B2", "cursor", "cursor is expected to be a next_cursor value"),
        ("cursor=%D9%A1%D9%A2", "cursor", "cursor is expected to be a next_cursor value"),
        ("cursor=10000000000000000000", "cursor", "cursor is expected to be a next_cursor value"),
    ],
    ids=["superscript limit", "superscript cursor", "arabic-indic cursor", "cursor over int64"],
)
async def test_numbers_that_are_not_ascii_or_past_int64_get_400_not_500(
    server: TrackdProcess, client: httpx.AsyncClient, query: str, attribute: str, message: str
) -> None:
    """`"²".isdigit()` is true and `int("²")` fails; 10^19 overflows SQLite's INTEGER (both
    were 500s, found by tests/security/test_schemathesis.py)."""
    assert server.demo_key is not None
    response = await client.get(
        f"/api/workspaces/DEMO/events?{query}",
        headers={"Authorization": basic("DEMO", server.demo_key)},
    )
    assert response.status_code == 400
    assert response.json() == {
        "status": "fail",
        "error": {
            "message": message,
            "type": "InvalidParams",
            "attribute": attribute,
            "request_id": response.headers["x-request-id"],
        },
    }
