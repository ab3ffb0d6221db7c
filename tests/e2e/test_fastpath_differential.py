"""The `/v1` fast path (`trackd.edge.protocol.FastCycle`) against the ASGI road, byte for byte.

Two real `trackd serve` processes, one with the fast path on (the default) and one with
`TRACKD_FAST_PATH=0`, each with a workspace of the same id. Each case is the same raw bytes on a
fresh connection to each (valid requests of every `/v1` row, one invalid request per check row,
pipelined, chunked, slow, oversized, gzip, `Expect: 100-continue`, Idempotency-Key, the rate
limit, deadlines), sent to both at once; every answer must be the same:
status, headers (less `date` and `x-request-id`; `x-ratelimit-reset` counts seconds down, so
it may differ by the second the two were sent apart) and body (the request id in it excepted,
as it is the `x-request-id` of its answer), the same events accepted and the same
request-log entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import Iterator
from typing import Any, NamedTuple

import anyio
import msgspec
import pytest

from tests.e2e.helpers import ServerWorkspace, cli_json, poll
from tests.e2e.server import Launcher, TrackdProcess
from tests.factories import basic

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0
DEADLINE = 30.0
WORKSPACE = "DIFF"
LIMITED = "DIFFLIMITED"  # a rate limit of one event a minute
MAX_BODY = 131072


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TrackdProcess, ...]]:
    """(fast path on, fast path off), with short client deadlines."""
    launchers = []
    try:
        started = []
        for fast in ("1", "0"):
            launcher = Launcher(tmp_path_factory.mktemp(f"fast{fast}"))
            launchers.append(launcher)
            with pytest.MonkeyPatch.context() as env:
                env.setenv("TRACKD_FAST_PATH", fast)
                env.setenv("TRACKD_HEADER_TIMEOUT_SECONDS", str(HEADER_TIMEOUT))
                env.setenv("TRACKD_BODY_TIMEOUT_SECONDS", str(BODY_TIMEOUT))
                started.append(launcher.start())
        yield tuple(started)
    finally:
        for launcher in launchers:
            launcher.close()


class Side(NamedTuple):
    server: TrackdProcess
    keys: dict[str, str]  # workspace id -> key


@pytest.fixture(scope="module")
async def sides(servers: tuple[TrackdProcess, ...]) -> list[Side]:
    made = []
    for server in servers:
        keys = {}
        for workspace_id, options in ((WORKSPACE, ()), (LIMITED, ("--rate-limit", "1"))):
            created = cli_json(
                server.data_dir, "workspace", "create", "--id", workspace_id, *options
            )
            keys[workspace_id] = created["api_key"]
        async with server.client() as client:
            for workspace_id, key in keys.items():
                workspace = ServerWorkspace(client, workspace_id, key)
                ready = await poll(
                    lambda w=workspace: w.get("stats"), lambda r: r.status_code == 200
                )
                assert ready.status_code == 200, ready.text
        made.append(Side(server, keys))
    return made


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


# -- raw requests ---------------------------------------------------------------------------------

#: A placeholder the case's bytes carry for the side's Authorization value of a workspace.
AUTH = b"<auth:%s>"


def event(n: int = 0, actions: int = 1, **attributes: Any) -> bytes:
    return msgspec.json.encode(
        {
            "type": "event",
            "customer_id": f"c{n}",
            "actions": [
                {"action": f"Diff {n}", "attributes": {"i": i, **attributes}}
                for i in range(actions)
            ],
        }
    )


def request(
    body: bytes | None = None,
    *headers: bytes,
    path: bytes = b"/v1/event/" + WORKSPACE.encode(),
    workspace: str = WORKSPACE,
    auth: bool = True,
    content_type: bytes | None = b"application/json",
    length: bool = True,
    method: bytes = b"POST",
    version: bytes = b"HTTP/1.1",
) -> bytes:
    payload = event() if body is None else body
    head = [method + b" " + path + b" " + version, b"Host: trackd"]
    if auth:
        head.append(b"Authorization: " + AUTH % workspace.encode())
    if content_type is not None:
        head.append(b"Content-Type: " + content_type)
    if length:
        head.append(b"Content-Length: %d" % len(payload))
    head.extend(headers)
    return b"\r\n".join(head) + b"\r\n\r\n" + (payload if length else b"")


def chunked(*chunks: bytes, end: bool = True, **options: Any) -> bytes:
    framed = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + (
        b"0\r\n\r\n" if end else b""
    )
    return request(b"", b"Transfer-Encoding: chunked", length=False, **options) + framed


CLOSE = b"Connection: close"
EXPECT = b"Expect: 100-continue"
GZIP = b"Content-Encoding: gzip"


class Case(NamedTuple):
    pieces: tuple[bytes, ...]  # each one write; `pause` seconds between them
    pause: float = 0.0


def case(*pieces: bytes, pause: float = 0.0) -> Case:
    return Case(pieces, pause)


BIG = b'{"type":"event","customer_id":"c","actions":[]}' + b" " * MAX_BODY

CASES = {
    # valid requests of each row
    "track event": case(request(None, CLOSE)),
    "track event, 100 events": case(request(event(1, actions=100), CLOSE)),
    "track event, a warning": case(request(event(2, moe_x=1), CLOSE)),
    "track user": case(
        request(
            b'{"type":"customer","customer_id":"u1","attributes":{"plan":"pro"}}',
            CLOSE,
            path=b"/v1/customer/" + WORKSPACE.encode(),
        )
    ),
    "merge users": case(
        request(
            b'{"type":"merge_user","merge_data":[{"merged_user":"m1","retained_user":"m2"}]}',
            CLOSE,
            path=b"/v1/customer/merge?app_id=" + WORKSPACE.encode(),
        )
    ),
    "HTTP/1.0": case(request(None, version=b"HTTP/1.0")),
    "percent-encoded path": case(request(None, CLOSE, path=b"/v1/event/%44IFF")),
    "portfolio query ignored": case(
        request(None, CLOSE, path=b"/v1/event/" + WORKSPACE.encode() + b"?project_code=x")
    ),
    # -- Track Device and Bulk Import --
    "track device": case(
        request(
            b'{"type":"device","customer_id":"u1","device_id":"d1",'
            b'"attributes":{"platform":"ANDROID","push_id":"p1"}}',
            CLOSE,
            path=b"/v1/device/" + WORKSPACE.encode(),
        )
    ),
    "track device, invalid": case(
        request(
            b'{"type":"device","customer_id":"u1"}', CLOSE, path=b"/v1/device/" + WORKSPACE.encode()
        )
    ),
    "bulk import": case(
        request(
            b'{"type":"transition","elements":[{"type":"customer","customer_id":"u2",'
            b'"attributes":{"n":1}},{"type":"event","customer_id":"u2","actions":[{"action":"a"}]},'
            b'{"type":"event","customer_id":"u2","actions":[]}]}',
            CLOSE,
            path=b"/v1/transition/" + WORKSPACE.encode(),
        )
    ),
    "bulk import, invalid": case(
        request(b'{"type":"transition"}', CLOSE, path=b"/v1/transition/" + WORKSPACE.encode())
    ),
    # -- Delete User and Get User (nobody of that id: the same on both sides whenever processed)
    "delete user, unknown": case(
        request(
            b'{"identity_type":"customer_id","identity_value":"nobody"}',
            CLOSE,
            path=b"/v1/customer/delete?app_id=" + WORKSPACE.encode(),
        )
    ),
    "get user, unknown": case(
        request(
            b'{"data":{"identifiers":[{"identifier_type":"customer_id","identifier":"nobody"}]}}',
            CLOSE,
            path=b"/v1/customers/export?app_id=" + WORKSPACE.encode(),
        )
    ),
    "get user, invalid": case(
        request(b'{"data":{}}', CLOSE, path=b"/v1/customers/export?app_id=" + WORKSPACE.encode())
    ),
    # one invalid request per check row
    "row 2: no authorization": case(request(None, CLOSE, auth=False)),
    "row 3: not basic": case(request(None, CLOSE, b"Authorization: Bearer x", auth=False)),
    "row 4: bad base64": case(request(None, CLOSE, b"Authorization: Basic !!!", auth=False)),
    "row 6: app key mismatch": case(request(None, CLOSE, path=b"/v1/event/OTHER")),
    "row 7: moe-appkey mismatch": case(request(None, CLOSE, b"MOE-APPKEY: OTHER")),
    "row 8: unknown workspace": case(
        request(
            None,
            CLOSE,
            b"Authorization: " + basic("NOPE", "k").encode(),
            auth=False,
            path=b"/v1/event/NOPE",
        )
    ),
    "row 9: wrong key": case(
        request(None, CLOSE, b"Authorization: " + basic(WORKSPACE, "wrong").encode(), auth=False)
    ),
    "row 12: no content type": case(request(None, CLOSE, content_type=None)),
    "row 13: not json": case(request(None, CLOSE, content_type=b"text/plain")),
    "row 13: unknown encoding": case(request(None, CLOSE, b"Content-Encoding: br")),
    "row 14: empty body": case(request(b"", CLOSE)),
    "row 15: malformed json": case(request(b'{"type":', CLOSE)),
    "row 16+: wrong type": case(
        request(b'{"type":"customer","customer_id":"c","actions":[]}', CLOSE)
    ),
    "row 16+: no customer": case(request(b'{"type":"event","actions":[{"action":"a"}]}', CLOSE)),
    "row 16+: actions not a list": case(
        request(b'{"type":"event","customer_id":"c","actions":{}}', CLOSE)
    ),
    "row 16+: a bad time": case(
        request(
            b'{"type":"event","customer_id":"c","actions":[{"action":"a","current_time":"x"}]}',
            CLOSE,
        )
    ),
    "merge: no app_id": case(
        request(b'{"type":"merge_user","merge_data":[]}', CLOSE, path=b"/v1/customer/merge")
    ),
    "GET on a /v1 row": case(request(b"", CLOSE, method=b"GET", length=False)),
    # row 1, oversized
    "row 1: declared too large": case(request(BIG) + request(event(30), CLOSE)),
    "row 1: declared too large, body never sent": case(request(BIG, CLOSE)[: -len(BIG)]),
    "row 1: chunked too large": case(chunked(BIG[:70000], BIG[70000:]) + request(event(31), CLOSE)),
    "row 1: gzip inflates too large": case(request(gzip.compress(BIG), CLOSE, GZIP)),
    # gzip
    "gzip": case(request(gzip.compress(event(3, actions=5)), CLOSE, GZIP)),
    "gzip, broken": case(request(b"not gzip at all", CLOSE, GZIP)),
    "gzip, truncated": case(request(gzip.compress(event(4))[:-6], CLOSE, GZIP)),
    # chunked
    "chunked": case(chunked(event(5)[:10], event(5)[10:])),
    "chunked, broken": case(chunked(event(6), end=False) + b"zz\r\n"),
    # pipelined
    "pipelined": case(
        request(event(7))
        + request(b'{"type":"customer","customer_id":"c","actions":[]}')
        + request(event(8, actions=2, moe_x=1))
        + request(None, b"Authorization: " + basic(WORKSPACE, "wrong").encode(), auth=False)
        + request(event(9, actions=3), CLOSE)
    ),
    "pipelined, then garbage": case(
        request(event(10)) + request(event(11)) + b"\x16\x03 garbage\r\n\r\n"
    ),
    "pipelined, fast and ASGI mixed": case(
        request(event(12))
        + b"GET /healthz HTTP/1.1\r\nHost: trackd\r\n\r\n"
        + request(event(13), CLOSE)
    ),
    # slow
    "slow head and body": case(
        request(event(14), CLOSE)[:30],
        request(event(14), CLOSE)[30:-20],
        request(event(14), CLOSE)[-20:],
        pause=0.3,
    ),
    "slow chunked": case(
        chunked(event(15)[:10], end=False),
        b"%x\r\n%s\r\n0\r\n\r\n" % (len(event(15)) - 10, event(15)[10:]),
        pause=0.3,
    ),
    "body past its deadline": case(request(event(16))[:-5]),
    "body past its deadline after a valid request": case(
        request(event(17)) + request(event(18))[:-5]
    ),
    # Expect: 100-continue
    "expect": case(request(event(19), CLOSE, EXPECT)),
    "expect, body later": case(
        request(event(20), CLOSE, EXPECT)[: -len(event(20))], event(20), pause=0.3
    ),
    "expect, declared too large": case(request(BIG, CLOSE, EXPECT)[: -len(BIG)]),
    "expect, refused by the checks": case(request(event(21), CLOSE, EXPECT, content_type=None)),
    # Idempotency-Key
    "idempotency key, twice": case(
        request(event(22), b"Idempotency-Key: diff-1")
        + request(event(22), CLOSE, b"Idempotency-Key: diff-1")
    ),
    "idempotency key, reused for another body": case(
        request(event(23), b"Idempotency-Key: diff-2")
        + request(event(24), CLOSE, b"Idempotency-Key: diff-2")
    ),
    # the rate limit (one event a minute)
    "rate limited": case(
        request(None, workspace=LIMITED, path=b"/v1/event/" + LIMITED.encode())
        + request(None, CLOSE, workspace=LIMITED, path=b"/v1/event/" + LIMITED.encode())
    ),
}


# -- answers --------------------------------------------------------------------------------------


class Answer(NamedTuple):
    status: int
    headers: dict[bytes, bytes]
    body: bytes


def parse_answers(data: bytes) -> list[Answer]:
    answers = []
    while data:
        head, separator, rest = data.partition(b"\r\n\r\n")
        assert separator, f"an unfinished answer: {data!r}"
        status_line, *lines = head.split(b"\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        status = int(status_line.split()[1])
        length = 0 if status == 100 else int(headers[b"content-length"])
        assert len(rest) >= length, f"an unfinished body: {data!r}"
        answers.append(Answer(status, headers, rest[:length]))
        data = rest[length:]
    return answers


async def converse(side: Side, case: Case) -> list[Answer]:
    host, port = side.server.url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        for n, piece in enumerate(case.pieces):
            for workspace_id, key in side.keys.items():
                piece = piece.replace(
                    AUTH % workspace_id.encode(), basic(workspace_id, key).encode()
                )
            if n and case.pause:
                await asyncio.sleep(case.pause)
            writer.write(piece)
            await writer.drain()
        received = b""
        with anyio.fail_after(DEADLINE), contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):  # until the server closes
                received += chunk
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return parse_answers(received)


def comparable(answer: Answer) -> tuple[int, dict[bytes, bytes], bytes]:
    headers = {
        name: value
        for name, value in answer.headers.items()
        if name not in (b"date", b"x-request-id", b"x-ratelimit-reset")
    }
    body = answer.body
    request_id = answer.headers.get(b"x-request-id")
    if request_id:
        body = body.replace(request_id, b"<request id>")
    return answer.status, headers, body


@pytest.mark.parametrize("name", list(CASES))
async def test_the_fast_path_answers_as_the_asgi_road(sides: list[Side], name: str) -> None:
    fast, asgi = sides
    answers = await asyncio.gather(converse(fast, CASES[name]), converse(asgi, CASES[name]))
    fast_answers, asgi_answers = answers
    assert [comparable(a) for a in fast_answers] == [comparable(a) for a in asgi_answers]
    for one, other in zip(fast_answers, asgi_answers, strict=True):
        reset = [a.headers.get(b"x-ratelimit-reset") for a in (one, other)]
        assert (reset[0] is None) == (reset[1] is None)
        if reset[0] is not None and reset[1] is not None:
            assert abs(int(reset[0]) - int(reset[1])) <= 1
        if one.status != 100 and one.body != b'{"status":"ok"}':  # /healthz has none
            assert b"x-request-id" in one.headers


async def test_both_kept_the_same_events(sides: list[Side]) -> None:
    """Run last: every case above accepted the same events on both sides."""
    counts = []
    for side in sides:
        async with side.server.client() as client:
            workspace = ServerWorkspace(client, WORKSPACE, side.keys[WORKSPACE])
            stats = await poll(
                lambda w=workspace: w.get("stats"),
                lambda r: r.status_code == 200 and r.json()["lag_events"] == 0,
            )
            counts.append(stats.json()["accepted_events"])
    assert counts[0] == counts[1] > 0


async def test_both_logged_the_same_requests(sides: list[Side]) -> None:
    """Run last: the request log (recorded in the core, written every 0.5 s) has the same
    entries on both sides, but for when they came, their request ids and sequence."""
    await asyncio.sleep(2)  # what the recorders still buffer is written
    logs = []
    for side in sides:
        async with side.server.client() as client:
            workspace = ServerWorkspace(client, WORKSPACE, side.keys[WORKSPACE])
            response = await workspace.get("requests", limit=1000)
            assert response.status_code == 200, response.text
            logs.append(
                [
                    {k: v for k, v in e.items() if k not in ("at", "request_id", "seq")}
                    for e in response.json()["requests"]
                ]
            )
    assert len(logs[0]) == len(logs[1]) > len(CASES)
    assert logs[0] == logs[1]
