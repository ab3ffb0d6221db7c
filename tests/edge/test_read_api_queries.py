"""trackd's read API (`/api/workspaces/{ws}/…`) through the app: who may read, the queries and
their errors, schema, issues, stats and `/metrics`.

The harness app runs the processor on the memory queue; tests wait for it with a deadline.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.edge.answers import AUTH, failure
from tests.factories import SEED_BODY, basic
from tests.harness import Harness

pytestmark = pytest.mark.anyio

T0 = 1_708_939_453_396  # 2024-02-26T09:24:13.396Z
ADMIN = {"Authorization": "Bearer tok"}
PATHS = ["users/123", "events", "schema", "issues", "stats"]


def event_body(customer_id: str, *actions: dict[str, Any]) -> dict[str, Any]:
    return {"type": "event", "customer_id": customer_id, "actions": list(actions)}


def action(name: str, at: int, **fields: Any) -> dict[str, Any]:
    return {"action": name, "current_time": at, "platform": "web", **fields}


async def read(
    harness: Harness, path: str, headers: dict[str, str] | None = None, **params: Any
) -> httpx.Response:
    return await harness.client.get(
        f"/api/workspaces/{path}",
        headers={"Authorization": basic("WS1", harness.key)} if headers is None else headers,
        params=params,
    )


async def until(
    check: Callable[[], Awaitable[httpx.Response]],
    ready: Callable[[httpx.Response], bool],
    seconds: float = 10.0,
) -> httpx.Response:
    """Call `check` until `ready` holds for its response or the deadline passes."""
    deadline = time.monotonic() + seconds
    while True:
        response = await check()
        if ready(response) or time.monotonic() > deadline:
            return response
        await anyio.sleep(0.02)


async def processed(harness: Harness, workspace_id: str = "WS1") -> dict[str, Any]:
    """The stats once the queue holds nothing of the workspace."""
    response = await until(
        lambda: read(harness, f"{workspace_id}/stats", ADMIN),
        lambda r: r.status_code == 200 and r.json()["lag_events"] == 0,
    )
    assert response.json()["lag_events"] == 0, "the processor did not catch up"
    return response.json()


async def send(harness: Harness, body: dict[str, Any]) -> str:
    response = await harness.post(body)
    assert response.status_code == 200, response.text
    return response.json()["request_id"]


# -- who may read -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
async def test_read_without_authorization_is_rejected_with_401(harness: Harness, path: str) -> None:
    response = await read(harness, f"WS1/{path}", {})
    assert response.status_code == 401
    assert response.json() == failure(response, "Authentication Header Required", AUTH)


@pytest.mark.parametrize("path", PATHS)
async def test_read_with_the_wrong_key_is_rejected_with_401(harness: Harness, path: str) -> None:
    response = await read(harness, f"WS1/{path}", {"Authorization": basic("WS1", "nope")})
    assert response.status_code == 401
    assert response.json() == failure(
        response, "App Secret key mismatch. Please login to the dashboard to verify key", AUTH
    )


@pytest.mark.parametrize("path", PATHS)
async def test_key_of_another_workspace_is_refused_with_403(harness: Harness, path: str) -> None:
    other, other_key = await harness.create_workspace(workspace_id="WS2")
    response = await read(harness, f"WS1/{path}", {"Authorization": basic(other, other_key)})
    assert response.status_code == 403
    assert response.json() == failure(
        response, "These credentials are for another workspace", "Forbidden"
    )


async def test_credentials_of_an_unknown_workspace_are_rejected_with_401(
    harness: Harness,
) -> None:
    response = await read(harness, "NOPE/stats", {"Authorization": basic("NOPE", harness.key)})
    assert response.status_code == 401
    assert response.json() == failure(
        response, "Invalid APP_ID used in Authentication Header", AUTH
    )


async def test_admin_token_reads_every_workspace(harness: Harness) -> None:
    await harness.create_workspace(workspace_id="WS2")
    for workspace_id in ("WS1", "WS2"):
        response = await read(harness, f"{workspace_id}/stats", ADMIN)
        assert response.status_code == 200
        assert response.json() == {
            "accepted_events": 0,
            "rejected_requests": 0,
            "processed_events": 0,
            "dropped_events": 0,
            "lag_events": 0,
            "lag_seconds": 0.0,
        }
    response = await read(harness, "WS2/events", ADMIN)
    assert (response.status_code, response.json()) == (200, {"events": [], "next_cursor": None})


async def test_wrong_admin_token_is_rejected_with_401(harness: Harness) -> None:
    response = await read(harness, "WS1/stats", {"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert response.json() == failure(response, "Invalid admin token", AUTH)


async def test_unknown_workspace_read_with_the_admin_token_is_404(harness: Harness) -> None:
    response = await read(harness, "NOPE/stats", ADMIN)
    assert response.status_code == 404
    assert response.json() == failure(response, "No such workspace", "NotFound")


async def test_unknown_read_route_is_404_and_writes_are_405(harness: Harness) -> None:
    response = await read(harness, "WS1/nothing")
    assert response.status_code == 404
    assert response.json() == failure(response, "No such endpoint", "NotFound")
    response = await harness.client.post(
        "/api/workspaces/WS1/events", headers={"Authorization": basic("WS1", harness.key)}
    )
    assert response.status_code == 405
    assert response.json() == failure(
        response, "Method not allowed on this endpoint", "MethodNotAllowed"
    )


# -- users and events -------------------------------------------------------------------------


async def test_unknown_user_is_404_with_the_error_body(harness: Harness) -> None:
    await send(harness, SEED_BODY)
    await processed(harness)
    response = await read(harness, "WS1/users/nobody")
    assert response.status_code == 404
    assert response.json() == failure(response, "No such user", "NotFound", "customer_id")
    assert (await read(harness, "WS1/users/123")).status_code == 200


async def _five_requests(harness: Harness) -> list[str]:
    """r0..r4: (u1 Opened T0), (u2 Bought +1 s), (u1 Bought +2 s), (u1 Opened +3 s),
    (u2 Opened +4 s), processed in this order."""
    plan = [
        ("u1", "Opened"),
        ("u2", "Bought"),
        ("u1", "Bought"),
        ("u1", "Opened"),
        ("u2", "Opened"),
    ]
    ids = [
        await send(harness, event_body(customer, action(name, T0 + i * 1_000)))
        for i, (customer, name) in enumerate(plan)
    ]
    stats = await processed(harness)
    assert stats["processed_events"] == 5
    return [f"{request_id}-0" for request_id in ids]


async def _ids(harness: Harness, **params: Any) -> list[str]:
    response = await read(harness, "WS1/events", **params)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return [e["event_id"] for e in response.json()["events"]]


async def test_events_filter_on_customer_action_and_time(harness: Harness) -> None:
    r0, r1, r2, r3, r4 = await _five_requests(harness)
    assert await _ids(harness) == [r4, r3, r2, r1, r0]
    assert await _ids(harness, customer_id="u1") == [r3, r2, r0]
    assert await _ids(harness, action="Bought") == [r2, r1]
    assert await _ids(harness, customer_id="u2", action="Opened") == [r4]
    iso_1s, iso_3s = "2024-02-26T09:24:14.396Z", "2024-02-26T09:24:16.396Z"
    assert await _ids(harness, since=iso_1s, until=iso_3s) == [r2, r1]  # until is exclusive
    assert await _ids(harness, since=str(T0 + 3_000)) == [r4, r3]  # epoch ms work too
    assert await _ids(harness, until="2024-02-26T09:24:13Z") == []
    assert await _ids(harness, customer_id="nobody") == []


async def test_events_page_through_next_cursor_exactly_once(harness: Harness) -> None:
    r0, r1, r2, r3, r4 = await _five_requests(harness)
    pages: list[list[str]] = []
    cursors: list[str | None] = []
    params: dict[str, Any] = {"limit": 2}
    while len(pages) < 5:
        body = (await read(harness, "WS1/events", **params)).json()
        pages.append([e["event_id"] for e in body["events"]])
        cursors.append(body["next_cursor"])
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert pages == [[r4, r3], [r2, r1], [r0]]
    assert [type(c) for c in cursors] == [str, str, type(None)]

    first = (await read(harness, "WS1/events", customer_id="u1", limit=2)).json()
    assert [e["event_id"] for e in first["events"]] == [r3, r2]
    rest = await read(harness, "WS1/events", customer_id="u1", limit=2, cursor=first["next_cursor"])
    assert rest.json() == {"events": rest.json()["events"], "next_cursor": None}
    assert [e["event_id"] for e in rest.json()["events"]] == [r0]


LIMIT_ERROR = "limit is expected to be an integer from 1 to 1000"
TIME_ERROR = "{} is expected to be an epoch timestamp or an ISO 8601 date-time"


@pytest.mark.parametrize(
    ("path", "params", "message", "attribute"),
    [
        ("events", {"limit": "0"}, LIMIT_ERROR, "limit"),
        ("events", {"limit": "1001"}, LIMIT_ERROR, "limit"),
        ("events", {"limit": "-1"}, LIMIT_ERROR, "limit"),
        ("events", {"limit": "2.5"}, LIMIT_ERROR, "limit"),
        ("events", {"limit": "ten"}, LIMIT_ERROR, "limit"),
        ("events", {"since": "yesterday"}, TIME_ERROR.format("since"), "since"),
        ("events", {"until": "2024-02-30T00:00:00Z"}, TIME_ERROR.format("until"), "until"),
        ("events", {"cursor": "abc"}, "cursor is expected to be a next_cursor value", "cursor"),
        ("events", {"cursor": "-5"}, "cursor is expected to be a next_cursor value", "cursor"),
        ("issues", {"since": "soon"}, TIME_ERROR.format("since"), "since"),
    ],
)
async def test_bad_query_parameter_is_rejected_with_400(
    harness: Harness, path: str, params: dict[str, str], message: str, attribute: str
) -> None:
    response = await read(harness, f"WS1/{path}", **params)
    assert response.status_code == 400
    assert response.json() == failure(response, message, "InvalidParams", attribute)


async def test_limit_bounds_are_accepted(harness: Harness) -> None:
    for limit in ("1", "1000"):
        response = await read(harness, "WS1/events", limit=limit)
        assert (response.status_code, response.json()) == (200, {"events": [], "next_cursor": None})


# -- schema and issues ------------------------------------------------------------------------


async def _requests_with_warnings(harness: Harness) -> tuple[httpx.Response, httpx.Response]:
    first = await harness.post(
        event_body(
            "123",
            action(
                "Bought",
                T0,
                attributes={
                    "price": 9.5,
                    "moe_x": 1,
                    "tags": ["a", "b"],
                    "paid_at": "2024-02-26T09:24:13Z",
                },
            ),
            action("moe_event", T0),
            action("Bought", T0 + 2_000, attributes={"price": "cheap", "note": "x" * 600}),
        )
    )
    second = await harness.post(
        event_body(
            "456",
            action("Opened", T0 + 5_000, platform="Fridge", attributes={"gift": True}),
            action("Opened", int(time.time() * 1000) + 3_600_000),
        )
    )
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["warnings"] == [
        {"index": 0, "attribute": "moe_x", "reason": "reserved_prefix"},
        {"index": 1, "reason": "reserved_prefix"},
        {"index": 2, "attribute": "note", "reason": "value_truncated"},
    ]
    assert second.json()["warnings"] == [
        {"index": 0, "attribute": "platform", "reason": "unknown_platform"},
        {"index": 1, "reason": "future_dated"},
    ]
    stats = await processed(harness)
    assert (stats["processed_events"], stats["dropped_events"]) == (3, 2)
    return first, second


async def test_schema_lists_events_with_counts_times_and_attribute_types(harness: Harness) -> None:
    await _requests_with_warnings(harness)
    response = await read(harness, "WS1/schema")
    assert response.status_code == 200
    assert response.json() == {
        "events": [
            {
                "action": "Bought",
                "count": 2,
                "first_seen": "2024-02-26T09:24:13.396Z",
                "last_seen": "2024-02-26T09:24:15.396Z",
                "attributes": {
                    "note": {"string": 1},
                    "paid_at": {"datetime": 1},
                    "price": {"number": 1, "string": 1},
                    "tags": {"array<string>": 1},
                },
            },
            {
                "action": "Opened",
                "count": 1,
                "first_seen": "2024-02-26T09:24:18.396Z",
                "last_seen": "2024-02-26T09:24:18.396Z",
                "attributes": {"gift": {"boolean": 1}},
            },
        ]
    }


async def test_issues_list_every_drop_and_rewrite_with_its_request(harness: Harness) -> None:
    first, second = await _requests_with_warnings(harness)
    first_id, second_id = first.json()["request_id"], second.json()["request_id"]
    events = (await read(harness, "WS1/events")).json()["events"]
    received = {e["request_id"]: e["received_at"] for e in events}
    response = await read(harness, "WS1/issues")
    assert response.status_code == 200
    assert response.json() == {
        "issues": [
            {
                "request_id": first_id,
                "index": 0,
                "attribute": "moe_x",
                "reason": "reserved_prefix",
                "at": received[first_id],
            },
            {
                "request_id": first_id,
                "index": 1,
                "attribute": None,
                "reason": "reserved_prefix",
                "at": received[first_id],
            },
            {
                "request_id": first_id,
                "index": 2,
                "attribute": "note",
                "reason": "value_truncated",
                "at": received[first_id],
            },
            {
                "request_id": second_id,
                "index": 0,
                "attribute": "platform",
                "reason": "unknown_platform",
                "at": received[second_id],
            },
            {
                "request_id": second_id,
                "index": 1,
                "attribute": None,
                "reason": "future_dated",
                "at": received[second_id],
            },
        ]
    }
    everything = response.json()["issues"]
    later = await read(harness, "WS1/issues", since=received[second_id])
    assert later.json() == {"issues": [i for i in everything if i["at"] >= received[second_id]]}
    assert [i["request_id"] for i in later.json()["issues"]][-2:] == [second_id, second_id]
    future = await read(harness, "WS1/issues", since="2100-01-01T00:00:00Z")
    assert future.json() == {"issues": []}
    other, _ = await harness.create_workspace(workspace_id="WS2")
    assert (await read(harness, f"{other}/issues", ADMIN)).json() == {"issues": []}


# -- stats and metrics ------------------------------------------------------------------------


async def test_stats_count_accepted_events_as_processed_dropped_and_waiting(
    harness: Harness,
) -> None:
    assert harness.app.parts.processing is not None
    await harness.app.parts.processing.stop()
    await send(harness, SEED_BODY)
    three = copy.deepcopy(SEED_BODY)
    three["actions"] = [*SEED_BODY["actions"], action("moe_hidden", T0), action("Opened", T0)]
    await send(harness, three)
    await send(harness, event_body("guest", action("Opened", T0), action("Opened", T0)))

    waiting = (await read(harness, "WS1/stats")).json()
    assert isinstance(waiting["lag_seconds"], float) and waiting["lag_seconds"] >= 0
    assert waiting == {
        "accepted_events": 6,
        "rejected_requests": 0,
        "processed_events": 0,
        "dropped_events": 0,
        "lag_events": 6,
        "lag_seconds": waiting["lag_seconds"],
    }
    await harness.app.parts.processing.start()
    assert await processed(harness) == {
        "accepted_events": 6,
        "rejected_requests": 0,
        "processed_events": 3,
        "dropped_events": 3,
        "lag_events": 0,
        "lag_seconds": 0.0,
    }


async def test_rejected_requests_of_a_known_workspace_are_counted_after_the_flush(
    harness: Harness,
) -> None:
    other, other_key = await harness.create_workspace(workspace_id="WS2")
    await send(harness, SEED_BODY)
    wrong_key = {**harness.headers(), "Authorization": basic("WS1", "nope")}
    assert (await harness.post(SEED_BODY, headers=wrong_key)).status_code == 401
    assert (await harness.post({"type": "event"})).status_code == 400
    user = await harness.client.post(
        "/v1/customer/WS1", json={"type": "event"}, headers=harness.headers()
    )
    assert user.status_code == 400
    unknown = {**harness.headers(), "Authorization": basic("NOPE", "x")}
    assert (await harness.post(SEED_BODY, workspace_id="NOPE", headers=unknown)).status_code == 401
    other_headers = harness.headers(other, other_key)
    assert (await harness.post({}, workspace_id=other, headers=other_headers)).status_code == 400

    stats = await until(
        lambda: read(harness, "WS1/stats"), lambda r: r.json()["rejected_requests"] >= 3
    )
    assert stats.json() == {
        "accepted_events": 1,
        "rejected_requests": 3,
        "processed_events": 1,
        "dropped_events": 0,
        "lag_events": 0,
        "lag_seconds": 0.0,
    }
    second = await until(
        lambda: read(harness, f"{other}/stats", ADMIN), lambda r: r.json()["rejected_requests"]
    )
    assert second.json()["rejected_requests"] == 1


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_show_responses_events_warnings_and_lag(harness: Harness) -> None:
    await send(harness, SEED_BODY)
    await send(
        harness,
        event_body("456", action("Opened", T0, attributes={"moe_x": 1}), action("moe_gone", T0)),
    )
    wrong_key = {**harness.headers(), "Authorization": basic("WS1", "nope")}
    assert (await harness.post(SEED_BODY, headers=wrong_key)).status_code == 401
    await processed(harness)
    response = await harness.client.get("/metrics", headers=ADMIN)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert _samples(response.text) == {
        ("trackd_requests_total", (("status", "200"),)): 2.0,
        ("trackd_requests_total", (("status", "401"),)): 1.0,
        ("trackd_requests_shed_total", ()): 0.0,
        ("trackd_idempotency_conflicts_total", ()): 0.0,
        ("trackd_events_accepted_total", ()): 3.0,
        ("trackd_edge_warnings_total", (("reason", "reserved_prefix"),)): 2.0,
        ("trackd_events_processed_total", (("workspace", "WS1"),)): 2.0,
        ("trackd_events_dropped_total", (("workspace", "WS1"),)): 1.0,
        ("trackd_queue_lag_envelopes", ()): 0.0,
        ("trackd_request_log_dropped_total", ()): 0.0,  # issue 13
    }


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", "Bearer ", "Basic V1MxOmtleQ==", "tok"],
)
async def test_metrics_need_the_admin_token_when_one_is_configured(
    harness: Harness, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await harness.client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.json() == failure(response, "Admin token required", AUTH)
    assert "trackd_" not in response.text


async def test_metrics_are_read_with_the_admin_token(harness: Harness) -> None:
    response = await harness.client.get("/metrics", headers={"Authorization": "bearer tok"})
    assert response.status_code == 200
    assert "trackd_requests_total" in response.text
