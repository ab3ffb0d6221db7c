"""What happens to an accepted event, seen through the real `trackd serve` (embedded processor).

Events sent over HTTP come back through `/api/workspaces/{ws}/…`: the event with every field of
product.md, the user with its devices, the schema catalogue, the issues and the stats; and a
backlog survives `kill -9` during processing with every event stored and counted exactly once.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import pytest

from tests.e2e.helpers import (
    SETTLE_SECONDS,
    ServerWorkspace,
    auth,
    cli,
    cli_json,
    epoch_ms,
    failure,
    now_ms,
    poll,
    success,
)
from tests.e2e.server import Launcher, TrackdProcess
from tests.factories import without_moengage_id
from trackd.embedded import FileLease

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

#: product.md: "At normal load an accepted event is readable through the read API within one
#: second." The only deadline here that is the product's promise; the others are generous.
READABLE_SECONDS = 1.0


class Workspace(ServerWorkspace):
    """A workspace of the running server, and its read API."""

    async def send(self, body: Any, **headers: str) -> httpx.Response:
        return await self.client.post(
            f"/v1/event/{self.id}", json=body, headers=self.headers(**headers)
        )

    async def events(self, count: int, seconds: float = SETTLE_SECONDS, **params: Any) -> Any:
        """The events page once it holds `count` events (or whatever is there at the deadline)."""
        response = await poll(
            lambda: self.get("events", **params),
            lambda r: r.status_code == 200 and len(r.json()["events"]) >= count,
            seconds,
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def stats(self, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        response = await poll(lambda: self.get("stats"), lambda r: done(r.json()))
        assert response.status_code == 200, response.text
        stats: dict[str, Any] = response.json()
        return stats


WEB = {"platform": "web", "app_version": "7.0"}


async def test_an_accepted_event_is_readable_within_one_second_with_every_field(
    server: TrackdProcess,
) -> None:
    async with server.client() as client:
        ws = await Workspace.create(server, client, "--portfolio")
        cli(server.data_dir, "project", "create", ws.id, "SHOP")
        body = {
            "type": "event",
            "customer_id": "cust-1",
            "device_id": "dev-A",
            "actions": [
                {
                    "action": "Order Placed",
                    "attributes": {"order_id": "o-1", "amount": 49.5, "items": ["a", "b"]},
                    "platform": "iOS",
                    "app_version": "4.2.0",
                    "user_time": "2024-03-01T15:30:00.250",
                    "current_time": 1709287200250,
                    "user_timezone_offset": 19800,
                },
                {
                    "action": "Watched",
                    "platform": "tv",
                    "moe_os_type": "tvOS",
                    "current_time": "1709287260",
                },
            ],
        }
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:  # until the server knows the new project too (a 400 keeps nothing)
            before = now_ms()
            sent = await client.post(
                f"/v1/event/{ws.id}",
                params={"project_code": "SHOP"},
                json=body,
                headers=ws.headers(**{"X-Forwarded-For": "203.0.113.195, 10.0.0.1"}),
            )
            after = now_ms()
            if sent.status_code == 200 or time.monotonic() > deadline:
                break
            assert sent.json()["error"]["message"] == "Given project_code is invalid."
            await anyio.sleep(0.05)
        assert (sent.status_code, sent.json()) == (200, success(sent))
        page = await ws.events(2, READABLE_SECONDS)

    request_id = sent.headers["x-request-id"]
    received_at = page["events"][0]["received_at"] if page["events"] else ""
    assert before <= epoch_ms(received_at) <= after
    common = {
        "request_id": request_id,
        "received_at": received_at,
        "client_ip": "203.0.113.195",
        "device_id": "dev-A",
        "customer_id": "cust-1",
        "project_code": "SHOP",
        "platform_raw": None,
    }
    assert page == {
        "events": [  # newest first
            {
                **common,
                "event_id": f"{request_id}-1",
                "action": "Watched",
                "attributes": {},
                "platform": "TV",
                "app_version": None,
                "user_time": "2024-03-01T10:01:00.000Z",
                "current_time": "2024-03-01T10:01:00.000Z",
                "user_timezone_offset": 0,
                "moe_os_type": "tvOS",
            },
            {
                **common,
                "event_id": f"{request_id}-0",
                "action": "Order Placed",
                "attributes": {"order_id": "o-1", "amount": 49.5, "items": ["a", "b"]},
                "platform": "iOS",
                "app_version": "4.2.0",
                "user_time": "2024-03-01T15:30:00.250Z",
                "current_time": "2024-03-01T10:00:00.250Z",
                "user_timezone_offset": 19800,
                "moe_os_type": None,
            },
        ],
        "next_cursor": None,
    }


async def test_the_user_profile_keeps_counts_times_and_each_devices_latest_state(
    server: TrackdProcess,
) -> None:
    def one(action: str, at: str, **fields: Any) -> dict[str, Any]:
        return {"action": action, "current_time": at, **fields}

    requests: list[tuple[dict[str, Any], str]] = [
        (  # the phone: Android 1.0, then 1.1 (the latest event of the whole user)
            {
                "device_id": "phone",
                "actions": [
                    one("Opened", "2024-05-01T10:00:00Z", platform="Android", app_version="1.0"),
                    one("Paid", "2024-05-03T10:00:00Z", platform="ANDROID", app_version="1.1"),
                ],
            },
            "198.51.100.1",
        ),
        (
            {"device_id": "laptop", "actions": [one("Browsed", "2024-05-02T10:00:00Z", **WEB)]},
            "198.51.100.2",
        ),
        ({"actions": [one("Called", "2024-04-30T10:00:00Z")]}, "198.51.100.3"),  # no device_id
        (  # an older event from the phone, sent last: the phone's latest state stays 1.1
            {
                "device_id": "phone",
                "actions": [one("Installed", "2024-04-01T10:00:00Z", platform="iOS")],
            },
            "198.51.100.4",
        ),
    ]
    async with server.client() as client:
        ws = await Workspace.create(server, client)
        for body, ip in requests:
            full = {"type": "event", "customer_id": "u-prof", **body}
            sent = await ws.send(full, **{"X-Forwarded-For": ip})
            assert (sent.status_code, sent.json()) == (200, success(sent))
        other = await ws.send(
            {"type": "event", "customer_id": "u-other", "actions": [one("Opened", "1714557600")]}
        )
        assert (other.status_code, other.json()) == (200, success(other))
        await ws.events(6)
        profile = await ws.get("users/u-prof")
        unknown = await ws.get("users/nobody")

    assert (profile.status_code, without_moengage_id(profile.json())) == (
        200,
        {
            "customer_id": "u-prof",
            "attributes": {},
            "identifiers": {},
            "first_seen": "2024-04-01T10:00:00.000Z",
            "last_seen": "2024-05-03T10:00:00.000Z",
            "event_count": 5,
            "devices": [
                {
                    "device_id": "laptop",
                    "platform": "web",
                    "app_version": "7.0",
                    "first_seen": "2024-05-02T10:00:00.000Z",
                    "last_seen": "2024-05-02T10:00:00.000Z",
                    "last_ip": "198.51.100.2",
                },
                {
                    "device_id": "phone",
                    "platform": "ANDROID",
                    "app_version": "1.1",
                    "first_seen": "2024-04-01T10:00:00.000Z",
                    "last_seen": "2024-05-03T10:00:00.000Z",
                    "last_ip": "198.51.100.1",
                },
                {
                    "device_id": "u-prof",  # device_id defaults to customer_id
                    "platform": "unknown",
                    "app_version": None,
                    "first_seen": "2024-04-30T10:00:00.000Z",
                    "last_seen": "2024-04-30T10:00:00.000Z",
                    "last_ip": "198.51.100.3",
                },
            ],
        },
    )
    expected_404 = failure(unknown, "NotFound", "No such user")
    expected_404["error"]["attribute"] = "customer_id"
    assert (unknown.status_code, unknown.json()) == (404, expected_404)


async def test_identity_resolution_puts_events_sent_by_identifier_on_the_known_user(
    server: TrackdProcess,
) -> None:
    async with server.client() as client:
        ws = await Workspace.create(server, client, "--identity-resolution", "email,moe_mobile")
        bodies = [
            {
                "type": "event",
                "customer_id": "ir-1",
                "user_identifiers": {"email": "a@example.com"},
                "actions": [{"action": "Signed Up", "current_time": "2024-06-01T00:00:00Z"}],
            },
            {  # no customer_id: the identifier names the user
                "type": "event",
                "user_identifiers": {"email": "a@example.com", "moe_mobile": "+919800000000"},
                "actions": [{"action": "Logged In", "current_time": "2024-06-02T00:00:00Z"}],
            },
        ]
        for body in bodies:
            sent = await ws.send(body)
            assert (sent.status_code, sent.json()) == (200, success(sent))
        page = await ws.events(2)
        profile = await ws.get("users/ir-1")

    assert [(e["action"], e["customer_id"]) for e in page["events"]] == [
        ("Logged In", "ir-1"),
        ("Signed Up", "ir-1"),
    ]
    assert profile.status_code == 200
    assert {k: profile.json()[k] for k in ("identifiers", "event_count", "first_seen")} == {
        "identifiers": {"email": "a@example.com", "moe_mobile": "+919800000000"},
        "event_count": 2,
        "first_seen": "2024-06-01T00:00:00.000Z",
    }


async def test_the_schema_records_every_type_seen_per_attribute_with_counts(
    server: TrackdProcess,
) -> None:
    body = {
        "type": "event",
        "customer_id": "schema-1",
        "actions": [
            {
                "action": "Checkout",
                "current_time": "2024-07-01T08:00:00Z",
                "attributes": {
                    "gift": True,
                    "amount": 3999,
                    "price": 12.5,
                    "coupon": "SAVE10",
                    "departure": "2019-05-21T03:47:35Z",
                    "birthday": "2022-01-22",
                    "bad_date": "2019-15-12",
                    "tags": ["a", "b"],
                    "scores": [1, 2.5],
                    "address": {"city": "Pune", "geo": {"lat": 18.5}},
                },
            },
            {
                "action": "Checkout",
                "current_time": "2024-07-02T08:00:00Z",
                "attributes": {"gift": False, "amount": "145", "departure": 1558410455},
            },
            {"action": "Browse", "current_time": "2024-07-03T08:00:00Z", "attributes": {"q": "x"}},
        ],
    }
    async with server.client() as client:
        ws = await Workspace.create(server, client)
        sent = await ws.send(body)
        assert (sent.status_code, sent.json()) == (200, success(sent))
        await ws.events(3)
        schema = await ws.get("schema")

    assert (schema.status_code, schema.json()) == (
        200,
        {
            "events": [
                {
                    "action": "Browse",
                    "count": 1,
                    "first_seen": "2024-07-03T08:00:00.000Z",
                    "last_seen": "2024-07-03T08:00:00.000Z",
                    "attributes": {"q": {"string": 1}},
                },
                {
                    "action": "Checkout",
                    "count": 2,
                    "first_seen": "2024-07-01T08:00:00.000Z",
                    "last_seen": "2024-07-02T08:00:00.000Z",
                    "attributes": {
                        "address": {"object": 1},
                        "amount": {"number": 1, "string": 1},
                        "bad_date": {"string": 1},  # an impossible date stays a string
                        "birthday": {"datetime": 1},
                        "coupon": {"string": 1},
                        "departure": {"datetime": 1, "number": 1},
                        "gift": {"boolean": 2},
                        "price": {"number": 1},
                        "scores": {"array<number>": 1},
                        "tags": {"array<string>": 1},
                    },
                },
            ]
        },
    )


async def test_every_drop_and_rewrite_is_listed_as_an_issue_and_counted_in_the_stats(
    server: TrackdProcess,
) -> None:
    future = now_ms() + 3_600_000
    body = {
        "type": "event",
        "customer_id": "warn-1",
        "actions": [
            {
                "action": "Signed Up",
                "platform": "Windows",
                "current_time": "2024-08-01T00:00:00Z",
                "attributes": {
                    "moe_source": "ads",
                    "note": "n" * 600,
                    "site": "https://example.com/" + "a" * 600,
                    "mixed": [1, "a"],
                    "plan": "pro",
                    "nothing": None,  # dropped silently: MoEngage's partial ingestion
                },
            },
            {"action": "moe_internal", "current_time": "2024-08-01T00:00:00Z"},
            {"action": "Later", "current_time": future},
        ],
    }
    warnings = [
        {"index": 0, "attribute": "moe_source", "reason": "reserved_prefix"},
        {"index": 0, "attribute": "note", "reason": "value_truncated"},
        {"index": 0, "attribute": "site", "reason": "url_too_long"},
        {"index": 0, "attribute": "mixed", "reason": "mixed_array"},
        {"index": 0, "attribute": "platform", "reason": "unknown_platform"},
        {"index": 1, "reason": "reserved_prefix"},
        {"index": 2, "reason": "future_dated"},
    ]
    async with server.client() as client:
        ws = await Workspace.create(server, client)
        sent = await ws.send(body)
        wrong_key = await client.post(
            f"/v1/event/{ws.id}", json=body, headers=auth(ws.id, "not-the-key")
        )
        wrong_type = await ws.send({**body, "type": "Event"})
        page = await ws.events(1)
        received_at = page["events"][0]["received_at"]
        issues = await ws.get("issues")
        later = await ws.get("issues", since=epoch_ms(received_at) + 1)
        stats = await ws.stats(lambda s: s["rejected_requests"] == 2 and s["lag_events"] == 0)

    request_id = sent.headers["x-request-id"]
    assert (sent.status_code, sent.json()) == (200, {**success(sent), "warnings": warnings})
    assert wrong_key.status_code == 401
    assert wrong_type.status_code == 400
    [event] = page["events"]
    assert (event["event_id"], event["attributes"]) == (
        f"{request_id}-0",
        {"note": "n" * 512, "plan": "pro"},
    )
    assert (event["platform"], event["platform_raw"]) == ("unknown", "Windows")
    assert (issues.status_code, issues.json()) == (
        200,
        {
            "issues": [
                {
                    "request_id": request_id,
                    "index": w["index"],
                    "attribute": w.get("attribute"),
                    "reason": w["reason"],
                    "at": received_at,
                }
                for w in warnings
            ]
        },
    )
    assert (later.status_code, later.json()) == (200, {"issues": []})
    assert stats == {
        "accepted_events": 3,
        "rejected_requests": 2,
        "processed_events": 1,
        "dropped_events": 2,
        "lag_events": 0,
        "lag_seconds": 0.0,
    }


async def test_events_are_filtered_by_user_action_and_time_and_paged_newest_first(
    server: TrackdProcess,
) -> None:
    async with server.client() as client:
        ws = await Workspace.create(server, client)
        for n in range(5):
            customer = "pa" if n % 2 == 0 else "pb"
            action = "Viewed" if n < 3 else "Bought"
            body = {
                "type": "event",
                "customer_id": customer,
                "actions": [{"action": action, "current_time": f"2024-09-0{n + 1}T00:00:00Z"}],
            }
            sent = await ws.send(body)
            assert sent.status_code == 200
        await ws.events(5)
        pages: list[list[str]] = []
        cursor: str | None = None
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = (await ws.get("events", **params)).json()
            pages.append([e["current_time"][:10] for e in page["events"]])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        by_user = (await ws.get("events", customer_id="pa")).json()["events"]
        by_action = (await ws.get("events", action="Bought")).json()["events"]
        window = await ws.get("events", since="2024-09-02T00:00:00Z", until="1725321600")
        bad_limit = await ws.get("events", limit=0)

    assert pages == [["2024-09-05", "2024-09-04"], ["2024-09-03", "2024-09-02"], ["2024-09-01"]]
    assert [(e["customer_id"], e["current_time"][:10]) for e in by_user] == [
        ("pa", "2024-09-05"),
        ("pa", "2024-09-03"),
        ("pa", "2024-09-01"),
    ]
    assert [e["current_time"][:10] for e in by_action] == ["2024-09-05", "2024-09-04"]
    # since is inclusive, until (2024-09-03T00:00:00Z) exclusive
    assert [e["current_time"][:10] for e in window.json()["events"]] == ["2024-09-02"]
    expected_400 = failure(
        bad_limit, "InvalidParams", "limit is expected to be an integer from 1 to 1000"
    )
    expected_400["error"]["attribute"] = "limit"
    assert (bad_limit.status_code, bad_limit.json()) == (400, expected_400)


# -- a backlog through kill -9 ------------------------------------------------------------------

REQUESTS = 200
EVENTS_PER_REQUEST = 100
USERS = 50
SENDERS = 8
PROCESSOR_STARTED = "processor started"


def bulk_body(n: int) -> dict[str, Any]:
    return {
        "type": "event",
        "customer_id": f"bulk-{n % USERS}",
        "actions": [
            {
                "action": "Bulk",
                "attributes": {"request": n, "index": i, "sku": f"sku-{i % 7}", "ok": True},
                "current_time": 1_700_000_000 + n * EVENTS_PER_REQUEST + i,
            }
            for i in range(EVENTS_PER_REQUEST)
        ],
    }


async def send_all(server: TrackdProcess, workspace_id: str, key: str) -> list[httpx.Response]:
    """REQUESTS bodies of EVENTS_PER_REQUEST events, SENDERS at a time, as fast as they go."""
    responses: list[httpx.Response] = []
    numbers = iter(range(REQUESTS))

    async def sender() -> None:
        async with server.client() as client:
            for n in numbers:
                responses.append(
                    await client.post(
                        f"/v1/event/{workspace_id}",
                        json=bulk_body(n),
                        headers=auth(workspace_id, key),
                    )
                )

    async with anyio.create_task_group() as group:
        for _ in range(SENDERS):
            group.start_soon(sender)
    return responses


async def processing_started(server: TrackdProcess) -> None:
    """Wait until this server's processor took the lease (it logs it, then starts at once)."""
    with anyio.fail_after(SETTLE_SECONDS):
        while PROCESSOR_STARTED not in server.stderr():
            await anyio.sleep(0.005)


async def test_kill_9_while_draining_a_backlog_stores_and_counts_every_event_once(
    trackd: Launcher, tmp_path: Path
) -> None:
    """A 20,000-event backlog, the server killed with it unprocessed, then killed twice more
    while its processor drains it: in the end every event of every 200 is stored and counted
    exactly once. To have a backlog at all (the processor keeps up with one sender machine),
    the test holds the data dir's processor lease while sending, as a `trackd worker` that
    does no work would: the server accepts but cannot process until the lease is let go."""
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    created = cli_json(trackd.data_dir, "workspace", "create", "--rate-limit", "100000000")
    workspace_id, key = created["workspace_id"], created["api_key"]
    lease = FileLease(trackd.data_dir / "processor.lease")
    assert lease.try_acquire()
    try:
        server = trackd.start()
        responses = await send_all(server, workspace_id, key)
        async with server.client() as client:
            held = await client.get(
                f"/api/workspaces/{workspace_id}/stats", headers=auth(workspace_id, key)
            )
        await anyio.to_thread.run_sync(server.kill)
    finally:
        lease.release()

    assert [(r.status_code, r.json()) for r in responses] == [(200, success(r)) for r in responses]
    accepted = len(responses) * EVENTS_PER_REQUEST
    assert {k: v for k, v in held.json().items() if k != "lag_seconds"} == {
        "accepted_events": accepted,
        "rejected_requests": 0,
        "processed_events": 0,
        "dropped_events": 0,
        "lag_events": accepted,
    }
    for _ in range(2):  # killed while draining, twice
        server = trackd.start()
        await processing_started(server)
        await anyio.sleep(rng.uniform(0, 0.3))
        await anyio.to_thread.run_sync(server.kill)

    server = trackd.start()
    async with server.client() as client:
        ws = Workspace(client, workspace_id, key)
        stats = await ws.stats(lambda s: s["lag_events"] == 0)
        users = [(await ws.get(f"users/bulk-{u}")).json() for u in range(USERS)]
        schema = (await ws.get("schema")).json()
    out = tmp_path / "events.ndjson"
    cli(trackd.data_dir, "events", "export", workspace_id, "--out", str(out))

    context = f"random seed {seed}"
    assert stats == {
        "accepted_events": accepted,
        "rejected_requests": 0,
        "processed_events": accepted,
        "dropped_events": 0,
        "lag_events": 0,
        "lag_seconds": 0.0,
    }, context
    ids = Counter(msgspec.json.decode(line)["event_id"] for line in out.read_bytes().splitlines())
    expected_ids = {
        f"{r.headers['x-request-id']}-{i}" for r in responses for i in range(EVENTS_PER_REQUEST)
    }
    assert set(ids) == expected_ids, context
    assert [i for i, n in ids.items() if n != 1] == [], context
    per_user = REQUESTS // USERS * EVENTS_PER_REQUEST
    assert [u.get("event_count") for u in users] == [per_user] * USERS, context
    assert sum(u["event_count"] for u in users) == accepted
    [bulk] = schema["events"]
    assert (bulk["action"], bulk["count"]) == ("Bulk", accepted), context
    assert bulk["attributes"] == {
        "index": {"number": accepted},
        "ok": {"boolean": accepted},
        "request": {"number": accepted},
        "sku": {"string": accepted},
    }, context
