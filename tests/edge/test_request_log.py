"""The request log (issue 13 item 1) through the app: what each answer records, what
`GET /api/workspaces/{ws}/requests` shows of it, and its bound and drop count under a flood."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from tests.factories import SEED_BODY, basic
from tests.harness import Harness
from trackd import admin
from trackd.edge.app import TrackdApp
from trackd.limiter.memory import MemoryLimiter
from trackd.models import RequestEntry
from trackd.queue.memory import MemoryQueue
from trackd.services import Services
from trackd.settings import Settings
from trackd.store import open_event_store, open_request_log
from trackd.store.base import RequestLog
from trackd.store.memory import MemoryWorkspaceStore

pytestmark = pytest.mark.anyio

ADMIN = {"Authorization": "Bearer tok"}


async def logged(h: Harness, query: str = "", workspace_id: str = "WS1") -> dict[str, Any]:
    await h.app.recorder.flush()
    response = await h.client.get(f"/api/workspaces/{workspace_id}/requests{query}", headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def entry(**fields: Any) -> dict[str, Any]:
    """An entry of /requests with the fields every test leaves as they are."""
    values: dict[str, Any] = {
        "endpoint": "Track Event",
        "method": "POST",
        "path": "/v1/event/WS1",
        "client_ip": "198.51.100.7",
        "user_agent": "test-agent/1",
        "event_count": 0,
        "customer_id": None,
        "warnings": [],
        "error": None,
        "body": None,
        "body_truncated": False,
        "headers": None,
    }
    values.update(fields)
    return values


def comparable(found: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in found.items() if k not in ("seq", "at", "request_id", "status")}


async def test_an_accepted_a_rejected_and_an_unauthenticated_request_each_show_as_sent(
    harness: Harness,
) -> None:
    h = harness
    headers = {**h.headers(), "User-Agent": "test-agent/1"}
    warned = {**SEED_BODY, "actions": [{**SEED_BODY["actions"][0], "attributes": {"moe_x": 1}}]}
    ok = await h.post(warned, headers=headers)
    bad_body = b'{"type": "event", "customer_id": "c-9", "actions": "nope"}'
    bad = await h.post(content=bad_body, headers=headers)
    wrong_key = {**headers, "Authorization": basic("WS1", "not-the-key")}
    unauthenticated = await h.post(content=bad_body, headers=wrong_key)
    unknown = await h.post(content=bad_body, headers=headers, workspace_id="NOPE")
    assert [r.status_code for r in (ok, bad, unauthenticated, unknown)] == [200, 400, 401, 409]

    found = (await logged(h))["requests"]

    assert [r["request_id"] for r in found] == [
        r.headers["x-request-id"] for r in (unauthenticated, bad, ok)
    ]  # newest first; the unknown workspace is in no log
    assert [r["status"] for r in found] == [401, 400, 200]
    assert found[0]["seq"] > found[1]["seq"] > found[2]["seq"]
    error = unauthenticated.json()["error"]
    assert comparable(found[0]) == entry(
        error={"type": error["type"], "message": error["message"]}
    )  # failed authentication: no body, no headers
    error = bad.json()["error"]
    assert comparable(found[1]) == entry(
        customer_id="c-9",
        error={k: v for k, v in error.items() if k != "request_id"},
        body=bad_body.decode(),
        headers={
            "host": "trackd.test",
            "accept": "*/*",
            "accept-encoding": "gzip, deflate",
            "connection": "keep-alive",
            "user-agent": "test-agent/1",
            "authorization": "[redacted]",
            "content-type": "application/json",
            "content-length": str(len(bad_body)),
        },
    )
    assert comparable(found[2]) == entry(
        customer_id="123", event_count=1, warnings=ok.json()["warnings"]
    )
    assert found[2]["at"].endswith("Z") and len(found[2]["at"]) == len("2024-01-01T00:00:00.000Z")


async def test_hostile_values_are_stored_and_returned_verbatim(harness: Harness) -> None:
    h = harness
    hostile = '<img src=x onerror=alert(1)></script>"\\\u2028\U0001f600 javascript:alert(1)'
    body = msgspec.json.encode({"type": "event", "customer_id": hostile, "actions": 1})
    invalid_utf8 = b'{"customer_id": "\xff\xfe", "actions": 1}'
    headers = {**h.headers(), "User-Agent": "<script>alert(1)</script>", "X-Odd": "a\tb"}
    await h.post(content=body, headers=headers)
    await h.post(content=invalid_utf8, headers=headers)

    found = (await logged(h))["requests"]

    assert found[1]["customer_id"] == hostile
    assert found[1]["body"] == body.decode()
    assert found[1]["user_agent"] == "<script>alert(1)</script>"
    assert found[1]["headers"]["x-odd"] == "a\tb"
    assert found[0]["body"] == '{"customer_id": "\ufffd\ufffd", "actions": 1}'
    assert found[0]["customer_id"] is None  # not valid JSON text: it names nobody


async def test_a_body_is_kept_to_16_kb_on_a_character_boundary(harness: Harness) -> None:
    h = harness
    text = "é" * 20_000  # two bytes each: byte 16384 falls between two characters... or not
    body = msgspec.json.encode({"customer_id": "x", "actions": 1, "pad": "a" + text})
    await h.post(content=body, headers=h.headers())

    (found,) = (await logged(h))["requests"]

    assert found["body_truncated"] is True
    kept = found["body"].encode()
    assert len(kept) <= 16384 and body.startswith(kept) and len(kept) >= 16381
    assert "\ufffd" not in found["body"]


async def test_status_since_and_paging(harness: Harness) -> None:
    h = harness
    sent = []
    for n in range(5):
        sent.append(await h.post({**SEED_BODY, "customer_id": f"c{n}"}))
        sent.append(await h.post(content=b"[]"))
    newest_first = [r.headers["x-request-id"] for r in reversed(sent)]

    assert [r["request_id"] for r in (await logged(h, "?status=4xx"))["requests"]] == (
        newest_first[0::2]
    )
    assert [r["request_id"] for r in (await logged(h, "?status=200"))["requests"]] == (
        newest_first[1::2]
    )
    assert (await logged(h, "?status=5xx"))["requests"] == []
    page = await logged(h, "?limit=4")
    assert [r["request_id"] for r in page["requests"]] == newest_first[:4]
    rest = await logged(h, f"?limit=4&before={page['next_cursor']}")
    last = await logged(h, f"?limit=4&before={rest['next_cursor']}")
    assert [r["request_id"] for r in rest["requests"] + last["requests"]] == newest_first[4:]
    assert last["next_cursor"] is None
    assert (await logged(h, "?since=2999-01-01T00:00:00Z"))["requests"] == []
    assert len((await logged(h, "?since=2000-01-01T00:00:00Z"))["requests"]) == 10


STATUS = "a status code like 400, or a class like 4xx"
TIME = "an epoch timestamp or an ISO 8601 date-time"


@pytest.mark.parametrize(
    ("query", "attribute", "message"),
    [
        ("status=4x", "status", f"status is expected to be {STATUS}"),
        ("status=600", "status", f"status is expected to be {STATUS}"),
        ("limit=0", "limit", "limit is expected to be an integer from 1 to 1000"),
        ("before=x", "before", "before is expected to be a next_cursor value"),
        ("since=yesterday", "since", f"since is expected to be {TIME}"),
    ],
)
async def test_bad_parameters_are_a_400_naming_them(
    harness: Harness, query: str, attribute: str, message: str
) -> None:
    response = await harness.client.get(f"/api/workspaces/WS1/requests?{query}", headers=ADMIN)
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


async def test_a_key_reads_only_its_own_workspace_log(harness: Harness) -> None:
    h = harness
    other, key = await h.create_workspace(workspace_id="WS2")
    await h.post(SEED_BODY)
    await h.app.recorder.flush()
    own = await h.client.get("/api/workspaces/WS1/requests", headers=h.headers())
    assert own.status_code == 200 and len(own.json()["requests"]) == 1
    foreign = await h.client.get("/api/workspaces/WS1/requests", headers=h.headers(other, key))
    assert foreign.status_code == 403


class GatedLog:
    """The real SQLite request log whose writes of entries wait for `gate`: a store that cannot
    keep up (fault injection, as `ExplodingLimiter` in test_track_limits)."""

    def __init__(self, log: RequestLog) -> None:
        self.log = log
        self.gate = asyncio.Event()
        self.held: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.log, name)

    async def append(self, entries: list[RequestEntry], keep: int) -> None:
        if entries:
            self.held.append(len(entries))
            await self.gate.wait()
        await self.log.append(entries, keep)


@pytest.fixture
async def flooded(tmp_path: Path) -> AsyncIterator[tuple[TrackdApp, GatedLog, httpx.AsyncClient]]:
    log = GatedLog(open_request_log("memory://"))
    settings = Settings(
        data_dir=str(tmp_path),
        admin_token="tok",
        processor="inline",
        request_log_size=5,
        request_log_buffer=10,
    )
    app = TrackdApp(
        Services(
            settings,
            workspaces=MemoryWorkspaceStore(),
            events=open_event_store("memory://"),
            queue=MemoryQueue(),
            limiter=MemoryLimiter(),
            request_log=log,  # type: ignore[arg-type]
        )
    )
    await app.startup()
    _, key = await admin.create_workspace(app.store, workspace_id="WS1")
    await app.registry.reload()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://trackd.test") as client:
        client.headers.update({"Authorization": basic("WS1", key)})
        yield app, log, client
    log.gate.set()
    await app.shutdown()


async def test_a_flood_never_waits_drops_the_oldest_counts_them_and_keeps_the_last_n(
    flooded: tuple[TrackdApp, GatedLog, httpx.AsyncClient],
) -> None:
    app, log, client = flooded
    ids = []
    for n in range(60):
        response = await client.post("/v1/event/WS1", json={**SEED_BODY, "customer_id": f"c{n}"})
        assert response.status_code == 200  # the log's store is stuck: a 200 does not wait
        ids.append(response.headers["x-request-id"])
        if n == 20:
            await asyncio.sleep(0.7)  # the flusher takes what is buffered, and is held
    assert len(log.held) == 1  # one batch, held; what came after waits in the buffer
    assert log.held[0] == 5  # of each workspace, only the newest `keep` are written
    assert len(app.recorder.buffer) == 10  # full
    dropped = app.counters.request_log_dropped
    # at most the 21 sent before the pause went with the held batch; the buffer keeps 10 of
    # the rest: every other one was dropped, the oldest first
    assert 60 - 21 - 10 <= dropped < 60 - 10
    assert [e.request_id for e in app.recorder.buffer] == ids[-10:]
    metrics = (await client.get("/metrics", headers={"Authorization": "Bearer tok"})).text
    assert f"trackd_request_log_dropped_total {dropped}.0" in metrics

    log.gate.set()
    await asyncio.sleep(0.05)
    await app.recorder.flush()
    response = await client.get(
        "/api/workspaces/WS1/requests", headers={"Authorization": "Bearer tok"}
    )
    assert [r["request_id"] for r in response.json()["requests"]] == ids[::-1][:5]
    activity = await client.get(
        "/api/workspaces/WS1/activity?minutes=2", headers={"Authorization": "Bearer tok"}
    )
    minutes = activity.json()["minutes"]
    assert sum(m["accepted_requests"] for m in minutes) == 60  # counted, dropped or not
    assert sum(m["accepted_events"] for m in minutes) == 60


def test_a_flush_writes_only_the_newest_keep_of_each_workspace_in_order() -> None:
    from collections import deque

    from trackd.edge.request_log import _newest

    def e(ws: str, n: int) -> RequestEntry:
        return RequestEntry(
            workspace_id=ws, at=n, endpoint="Track Event", method="POST", path="/",
            status=200, request_id=f"{ws}{n}",
        )  # fmt: skip

    buffer = deque([e("A", 0), e("B", 1), e("A", 2), e("A", 3), e("B", 4), e("A", 5)])
    assert [x.request_id for x in _newest(buffer, 2)] == ["B1", "A3", "B4", "A5"]
    assert [x.request_id for x in _newest(buffer, 6)] == [x.request_id for x in buffer]
