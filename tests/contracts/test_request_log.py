"""The RequestLog contract (trackd/store/base.py), run against SQLite (on disk and in memory)
and PostgreSQL (the event store's part of the live stream is in test_event_store.py)."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.contracts import postgres_db
from tests.services import needs_service
from trackd.models import RequestEntry, RequestError, Warning
from trackd.store import open_request_log
from trackd.store.base import MINUTES_KEPT_MS, RequestLog, RequestQuery
from trackd.store.request_log import ERASED_KEPT_MS

pytestmark = pytest.mark.anyio

T = 1_700_000_000_000  # 2023-11-14T22:13:20.000Z
REQUEST_LOGS = [
    pytest.param(lambda tmp_path: open_request_log("memory://"), id="memory"),
    pytest.param(lambda tmp_path: open_request_log(f"sqlite:///{tmp_path}/t.db"), id="sqlite"),
    pytest.param(
        lambda tmp_path: open_request_log(postgres_db.store_url()),
        id="postgres",
        marks=needs_service("postgresql", postgres_db.available),
    ),
]


@pytest.fixture(params=REQUEST_LOGS)
async def log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RequestLog]:
    factory: Callable[[Path], RequestLog] = request.param
    store = factory(tmp_path)
    await store.open()
    yield store
    await store.aclose()
    await store.aclose()  # idempotent


def entry(n: int, workspace_id: str = "WS1", **fields: Any) -> RequestEntry:
    values: dict[str, Any] = {
        "workspace_id": workspace_id,
        "at": T + n,
        "endpoint": "Track Event",
        "method": "POST",
        "path": f"/v1/event/{workspace_id}",
        "status": 200,
        "request_id": f"r{n}",
        "customer_id": f"c{n}",
        "event_count": 1,
    }
    values.update(fields)
    return RequestEntry(**values)


async def ids(log: RequestLog, **filters: Any) -> list[str]:
    rows, _ = await log.requests(RequestQuery(workspace_id="WS1", limit=1000, **filters))
    return [r["request_id"] for r in rows]


async def test_an_entry_reads_back_whole(log: RequestLog) -> None:
    hostile = '<img src=x onerror=alert(1)>\x00</script>\U0001f600"\\'
    await log.append(
        [
            entry(0, warnings=[Warning(0, "reserved_prefix", "moe_x"), Warning(1, "x")]),
            entry(
                1,
                status=400,
                customer_id=None,
                user_agent=hostile,
                client_ip="2001:db8::1",
                error=RequestError("InvalidParams", hostile, hostile),
                headers={"authorization": "[redacted]", "x-odd": hostile},
                body=b'{"a": "\xff\x00"}',
                body_truncated=True,
                path="/v1/event/WS1?x=%00",
            ),
        ],
        keep=10,
    )
    rows, cursor = await log.requests(RequestQuery(workspace_id="WS1"))
    assert cursor is None
    assert rows[0]["seq"] > rows[1]["seq"]
    assert [{k: v for k, v in r.items() if k != "seq"} for r in rows] == [
        {
            "at": "2023-11-14T22:13:20.001Z",
            "endpoint": "Track Event",
            "method": "POST",
            "path": "/v1/event/WS1?x=%00",
            "status": 400,
            "request_id": "r1",
            "client_ip": "2001:db8::1",
            "user_agent": hostile,
            "event_count": 1,
            "customer_id": None,
            "warnings": [],
            "error": {"type": "InvalidParams", "message": hostile, "attribute": hostile},
            "body": '{"a": "\ufffd\x00"}',
            "body_truncated": True,
            "headers": {"authorization": "[redacted]", "x-odd": hostile},
        },
        {
            "at": "2023-11-14T22:13:20.000Z",
            "endpoint": "Track Event",
            "method": "POST",
            "path": "/v1/event/WS1",
            "status": 200,
            "request_id": "r0",
            "client_ip": None,
            "user_agent": None,
            "event_count": 1,
            "customer_id": "c0",
            "warnings": [
                {"index": 0, "reason": "reserved_prefix", "attribute": "moe_x"},
                {"index": 1, "reason": "x"},
            ],
            "error": None,
            "body": None,
            "body_truncated": False,
            "headers": None,
        },
    ]


async def test_only_the_newest_keep_of_each_workspace_stay(log: RequestLog) -> None:
    await log.append([entry(n) for n in range(5)] + [entry(9, "WS2")], keep=3)
    await log.append([entry(n) for n in range(5, 7)], keep=3)
    assert await ids(log) == ["r6", "r5", "r4"]
    rows, _ = await log.requests(RequestQuery(workspace_id="WS2"))
    assert [r["request_id"] for r in rows] == ["r9"]  # another workspace's bound is its own
    await log.append([entry(7)], keep=0)
    assert await ids(log) == []


async def test_filters_and_pages(log: RequestLog) -> None:
    statuses = [200, 400, 401, 429, 200, 503, 413]
    await log.append([entry(n, status=s) for n, s in enumerate(statuses)], keep=100)
    assert await ids(log, status=200) == ["r4", "r0"]
    assert await ids(log, status_class=4) == ["r6", "r3", "r2", "r1"]
    assert await ids(log, status_class=5) == ["r5"]
    assert await ids(log, since=T + 5) == ["r6", "r5"]
    seen, cursor = [], None
    while True:
        rows, cursor = await log.requests(
            RequestQuery(workspace_id="WS1", limit=3, before_seq=cursor)
        )
        seen += [r["request_id"] for r in rows]
        if cursor is None:
            break
    assert seen == [f"r{n}" for n in range(6, -1, -1)]


async def test_erase_removes_a_customers_entries_in_one_workspace(log: RequestLog) -> None:
    await log.append(
        [
            entry(0, customer_id="gone"),
            entry(1, customer_id="kept"),
            entry(2, customer_id="gone"),
            entry(3, "WS2", customer_id="gone"),
        ],
        keep=100,
    )
    assert await log.erase("WS1", ["gone", "nobody"]) == 2
    assert await ids(log) == ["r1"]
    rows, _ = await log.requests(RequestQuery(workspace_id="WS2"))
    assert len(rows) == 1
    assert await log.erase("WS1", []) == 0


async def test_an_entry_recorded_before_an_erasure_and_appended_after_it_is_not_kept(
    log: RequestLog,
) -> None:
    """An edge flushes what it recorded up to half a second later: an entry of an erased user
    recorded before the erasure must not survive it; a request after the erasure is new."""
    assert await log.erase("WS1", ["gone"]) == 0
    later = int(time.time() * 1000) + 3_600_000
    await log.append(
        [
            entry(0, customer_id="gone"),  # recorded before the erasure, flushed after it
            entry(1, customer_id="kept"),
            entry(2, "WS2", customer_id="gone"),  # another workspace's user of the same id
            entry(3, customer_id="gone", at=later, request_id="after"),
            entry(4, customer_id=None),
        ],
        keep=100,
    )
    assert await ids(log) == ["r4", "after", "r1"]
    rows, _ = await log.requests(RequestQuery(workspace_id="WS2"))
    assert [r["request_id"] for r in rows] == ["r2"]
    await log.append([entry(5, customer_id="gone")], keep=100)  # a flush of nothing but it
    assert await ids(log) == ["r4", "after", "r1"]


async def test_an_erasure_mark_never_holds_the_customer_id(tmp_path: Path) -> None:
    """What the request log keeps of an erased user is a SHA-256 of the id, for
    `ERASED_KEPT_MS`, and forgotten after."""
    log = open_request_log(f"sqlite:///{tmp_path}/t.db")
    await log.open()
    try:
        await log.erase("WS1", ["ada@example.com"])
    finally:
        await log.aclose()
    with sqlite3.connect(tmp_path / "t.db") as conn:
        marks = conn.execute("SELECT workspace, mark, erased_at FROM request_log_erased").fetchall()
        assert [(ws, bytes(mark)) for ws, mark, _ in marks] == [
            ("WS1", hashlib.sha256(b"ada@example.com").digest())
        ]
        conn.execute(
            "UPDATE request_log_erased SET erased_at = erased_at - ?", (ERASED_KEPT_MS + 1,)
        )
    log = open_request_log(f"sqlite:///{tmp_path}/t.db")
    await log.open()
    try:
        await log.append([entry(0, customer_id="ada@example.com")], keep=100)
        assert await ids(log) == ["r0"]  # the mark had expired, and went
    finally:
        await log.aclose()
    with sqlite3.connect(tmp_path / "t.db") as conn:
        assert conn.execute("SELECT count(*) FROM request_log_erased").fetchone() == (0,)


async def test_minutes_add_up_and_old_ones_go(log: RequestLog) -> None:
    minute = T - T % 60_000
    await log.add_minutes({("WS1", minute): (3, 2, 1), ("WS2", minute): (9, 9, 9)})
    await log.add_minutes({("WS1", minute): (1, 1, 0), ("WS1", minute + 60_000): (0, 0, 4)})
    assert await log.minutes("WS1", minute) == {minute: (4, 3, 1), minute + 60_000: (0, 0, 4)}
    assert await log.minutes("WS1", minute + 60_000) == {minute + 60_000: (0, 0, 4)}
    later = minute + MINUTES_KEPT_MS + 60_000
    await log.add_minutes({("WS1", later): (1, 1, 1)})
    assert await log.minutes("WS1", 0) == {minute + 60_000: (0, 0, 4), later: (1, 1, 1)}
    assert await log.minutes("WS2", 0) == {minute: (9, 9, 9)}
