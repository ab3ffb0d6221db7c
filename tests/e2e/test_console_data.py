"""The console's data against the real `trackd serve` (issue 13): a rejected request in
`/requests` with its message and body (Authorization redacted, nothing of a failed
authentication's body), the live stream with Last-Event-ID resume and its filters, `/activity`,
and a serve that stops at once with a stream open."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import ServerWorkspace, poll
from tests.e2e.server import Launcher, TrackdProcess
from tests.e2e.sse import live
from tests.factories import basic

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]


class Workspace(ServerWorkspace):
    async def send(self, action: str = "Bought", customer_id: str = "c-1", **attrs: Any) -> str:
        body = {
            "type": "event",
            "customer_id": customer_id,
            "actions": [{"action": action, "attributes": attrs}],
        }
        response = await self.client.post(f"/v1/event/{self.id}", json=body, headers=self.headers())
        assert response.status_code == 200, response.text
        return response.headers["x-request-id"]

    async def requests(self, done: Any, **params: Any) -> list[dict[str, Any]]:
        response = await poll(
            lambda: self.get("requests", **params),
            lambda r: r.status_code == 200 and done(r.json()["requests"]),
            seconds=5,
        )
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["requests"]
        assert done(found), found
        return found


async def test_a_400_shows_in_requests_with_its_message_and_body_and_no_key(
    server: TrackdProcess,
) -> None:
    async with server.client() as client:
        ws = await Workspace.create(server, client)
        body = b'{"type": "event", "customer_id": "u-1", "actions": [{"attributes": {}}]}'
        bad = await client.post(
            f"/v1/event/{ws.id}", content=body, headers=ws.headers(**{"X-Trace": "t-1"})
        )
        assert bad.status_code == 400
        wrong = await client.post(
            f"/v1/event/{ws.id}",
            content=body,
            headers={"Authorization": basic(ws.id, "wrong"), "Content-Type": "application/json"},
        )
        assert wrong.status_code == 401
        found = await ws.requests(lambda rows: len(rows) == 2)

    unauthenticated, rejected = found
    assert rejected["request_id"] == bad.headers["x-request-id"]
    error = bad.json()["error"]
    assert rejected["error"] == {k: v for k, v in error.items() if k != "request_id"}
    assert rejected["body"] == body.decode()
    assert rejected["customer_id"] == "u-1"
    assert rejected["headers"]["authorization"] == "[redacted]"
    assert ws.key not in str(rejected)
    assert rejected["headers"]["x-trace"] == "t-1"
    assert rejected["client_ip"] == "127.0.0.1"
    assert rejected["endpoint"] == "Track Event"
    assert unauthenticated["request_id"] == wrong.headers["x-request-id"]
    assert unauthenticated["status"] == 401
    assert (unauthenticated["body"], unauthenticated["headers"]) == (None, None)


async def test_live_streams_processed_events_as_the_read_api_shows_them_and_resumes(
    server: TrackdProcess,
) -> None:
    async with server.client() as client:
        ws = await Workspace.create(server, client)
        await ws.send("Before")  # processed before the stream opens: not sent
        await poll(lambda: ws.get("events"), lambda r: len(r.json()["events"]) == 1)
        headers = {"Authorization": basic(ws.id, ws.key)}
        async with live(client, ws.id, headers) as stream:
            started = time.monotonic()
            request_ids = [await ws.send("Live", n=n, moe_bad=1) for n in range(3)]
            messages = await stream.messages(3)
            assert time.monotonic() - started < 5
        events = (await ws.get("events")).json()["events"][::-1]  # oldest first

        assert [m["event"] for m in messages] == ["event"] * 3
        assert [m["data"]["request_id"] for m in messages] == request_ids
        for message, event in zip(messages, events[1:], strict=True):
            assert message["id"] == str(message["data"]["seq"])
            warnings = [{"index": 0, "attribute": "moe_bad", "reason": "reserved_prefix"}]
            assert message["data"] == {**event, "seq": message["data"]["seq"], "warnings": warnings}
        seqs = [m["data"]["seq"] for m in messages]
        assert seqs == sorted(seqs)

        resumed_headers = {**headers, "Last-Event-ID": messages[0]["id"]}
        async with live(client, ws.id, resumed_headers) as stream:
            again = await stream.messages(2)
        assert [m["id"] for m in again] == [m["id"] for m in messages[1:]]
        async with live(client, ws.id, headers, after=messages[1]["id"]) as stream:
            assert [m["id"] for m in await stream.messages(1)] == [messages[2]["id"]]


async def test_live_filters_by_customer_and_action_and_refuses_a_bad_position(
    server: TrackdProcess,
) -> None:
    async with server.client() as client:
        ws = await Workspace.create(server, client)
        headers = {"Authorization": basic(ws.id, ws.key)}
        async with live(client, ws.id, headers, customer_id="c-2", action="Kept") as stream:
            await ws.send("Kept", customer_id="c-1")
            await ws.send("Other", customer_id="c-2")
            wanted = await ws.send("Kept", customer_id="c-2")
            (message,) = await stream.messages(1)
        assert message["data"]["request_id"] == wanted
        response = await client.get(
            f"/api/workspaces/{ws.id}/live", params={"after": "x"}, headers=headers
        )
        assert response.status_code == 400
        assert response.json()["error"]["attribute"] == "after"
        other = await client.get(
            f"/api/workspaces/{ws.id}/live", headers={"Authorization": basic(ws.id, "wrong")}
        )
        assert other.status_code == 401


async def test_activity_counts_accepted_and_rejected_per_minute(server: TrackdProcess) -> None:
    async with server.client() as client:
        ws = await Workspace.create(server, client)
        for _ in range(3):
            await ws.send()
        await client.post(f"/v1/event/{ws.id}", content=b"{}", headers=ws.headers())

        def counted(r: httpx.Response) -> bool:
            minutes = r.json()["minutes"]
            return sum(m["rejected_requests"] for m in minutes) == 1 and (
                sum(m["accepted_events"] for m in minutes) == 3
            )

        response = await poll(lambda: ws.get("activity", minutes=5), counted, seconds=5)
        activity = response.json()

    assert len(activity["minutes"]) == 5
    assert sum(m["accepted_requests"] for m in activity["minutes"]) == 3
    assert activity["rate_limit"]["events"] == {"limit": 30000, "used": 3}
    assert activity["rate_limit"]["users"]["limit"] == 10000
    assert activity["queue_lag_events"] >= 0
    assert activity["freshness_seconds"] is None or activity["freshness_seconds"] >= 0


async def test_serve_stops_at_once_with_a_live_stream_open(trackd: Launcher) -> None:
    server = trackd.start()
    async with server.client() as client:
        ws = await Workspace.create(server, client)
        async with live(client, ws.id, {"Authorization": basic(ws.id, ws.key)}) as stream:
            await ws.send()
            await stream.messages(1)
            started = time.monotonic()
            assert server.terminate() == 0
            assert time.monotonic() - started < 5  # not the 10 s graceful timeout


HOSTILE = '<img src=x onerror=alert(1)></script><script>alert(2)</script>javascript:alert(3)"\\'


async def test_hostile_names_and_values_come_back_verbatim_as_json(server: TrackdProcess) -> None:
    async with server.client() as client:
        ws = await Workspace.create(server, client)
        headers = {"Authorization": basic(ws.id, ws.key)}
        async with live(client, ws.id, headers) as stream:
            await ws.send(HOSTILE, customer_id=HOSTILE, **{HOSTILE: HOSTILE, "url": "javascript:x"})
            (message,) = await stream.messages(1)
        bad = await client.post(
            f"/v1/event/{ws.id}",
            content=b'{"customer_id": "'
            + HOSTILE.replace("\\", "\\\\").replace('"', '\\"').encode()
            + b'", "actions": []}',
            headers=ws.headers(**{"User-Agent": HOSTILE}),
        )
        assert bad.status_code == 400
        (rejected,) = await ws.requests(
            lambda rows: any(r["status"] == 400 for r in rows), status="4xx"
        )

    data = message["data"]
    assert (data["action"], data["customer_id"]) == (HOSTILE, HOSTILE)
    assert data["attributes"] == {HOSTILE: HOSTILE, "url": "javascript:x"}
    assert rejected["customer_id"] == HOSTILE
    assert rejected["user_agent"] == HOSTILE
    assert rejected["headers"]["user-agent"] == HOSTILE
    assert HOSTILE.replace("\\", "\\\\").replace('"', '\\"') in rejected["body"]
