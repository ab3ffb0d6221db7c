from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from tests.factories import SEED_BODY, basic, without_moengage_id
from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def _eventually(harness: Harness, path: str, ready: Any, **kw: Any) -> Any:
    deadline = time.monotonic() + 2
    while True:
        response = await harness.client.get(
            path, headers={"Authorization": basic("WS1", harness.key)}, **kw
        )
        if ready(response) or time.monotonic() > deadline:
            return response
        await anyio.sleep(0.02)


async def test_an_accepted_event_is_readable_with_every_field(harness: Harness) -> None:
    sent = await harness.post(
        SEED_BODY, headers={**harness.headers(), "X-Forwarded-For": "203.0.113.195"}
    )
    request_id = sent.json()["request_id"]
    response = await _eventually(
        harness, "/api/workspaces/WS1/events", lambda r: r.json()["events"]
    )
    assert response.status_code == 200
    assert response.json() == {
        "events": [
            {
                "event_id": f"{request_id}-0",
                "request_id": request_id,
                "action": "ProductAdded",
                "attributes": {"product": "Accessories", "color": "Black", "Brand": "Adidas"},
                "platform": "ANDROID",
                "platform_raw": None,
                "app_version": "1.2.3",
                "user_time": "2024-02-26T09:24:13.396Z",
                "current_time": "2024-02-26T09:24:13.396Z",
                "user_timezone_offset": 0,
                "received_at": response.json()["events"][0]["received_at"],
                "client_ip": "203.0.113.195",
                "device_id": "123",
                "customer_id": "123",
                "project_code": None,
                "moe_os_type": None,
            }
        ],
        "next_cursor": None,
    }
    user = await harness.client.get(
        "/api/workspaces/WS1/users/123", headers={"Authorization": basic("WS1", harness.key)}
    )
    assert without_moengage_id(user.json()) == {
        "customer_id": "123",
        "attributes": {},
        "identifiers": {},
        "first_seen": "2024-02-26T09:24:13.396Z",
        "last_seen": "2024-02-26T09:24:13.396Z",
        "event_count": 1,
        "devices": [
            {
                "device_id": "123",
                "platform": "ANDROID",
                "app_version": "1.2.3",
                "first_seen": "2024-02-26T09:24:13.396Z",
                "last_seen": "2024-02-26T09:24:13.396Z",
                "last_ip": "203.0.113.195",
            }
        ],
    }
    stats = await harness.client.get(
        "/api/workspaces/WS1/stats", headers={"Authorization": "Bearer tok"}
    )
    assert stats.json() == {
        "accepted_events": 1,
        "rejected_requests": 0,
        "processed_events": 1,
        "dropped_events": 0,
        "lag_events": 0,
        "lag_seconds": 0.0,
    }
    metrics = await harness.client.get("/metrics", headers={"Authorization": "Bearer tok"})
    assert 'trackd_requests_total{status="200"} 1.0' in metrics.text


async def test_track_user_sets_attributes_beside_the_events_of_the_same_user(
    harness: Harness,
) -> None:
    await harness.post(SEED_BODY)
    response = await harness.client.post(
        "/v1/customer/WS1",
        json={
            "type": "customer",
            "customer_id": "123",
            "attributes": {"name": "Ada", "email": None, "moe_x": 1, "moe_spam": False, "id": 7},
            "platforms": [{"platform": "ANDROID", "active": "true"}],
        },
        headers=harness.headers(),
    )
    assert response.status_code == 200
    assert response.json() == {
        "status": "success",
        "message": "Your request has been accepted and will be processed soon.",
        "request_id": response.headers["x-request-id"],
        "warnings": [
            {"index": 0, "attribute": "id", "reason": "reserved_name"},
            {"index": 0, "attribute": "moe_x", "reason": "reserved_prefix"},
        ],
    }
    user = await _eventually(
        harness,
        "/api/workspaces/WS1/users/123",
        lambda r: r.status_code == 200 and r.json()["attributes"],
    )
    assert user.json()["attributes"] == {
        "name": "Ada",
        "platforms": [{"platform": "ANDROID", "active": "true"}],
        "moe_spam": False,
    }
    assert user.json()["event_count"] == 1


async def test_track_user_with_the_wrong_type_is_rejected(harness: Harness) -> None:
    response = await harness.client.post(
        "/v1/customer/WS1", json={"type": "event", "customer_id": "1"}, headers=harness.headers()
    )
    assert response.status_code == 400
    assert response.json() == {
        "status": "fail",
        "error": {
            "message": "type should be customer",
            "type": "AttributeError",
            "attribute": "type",
            "request_id": response.headers["x-request-id"],
        },
    }


async def test_a_user_is_found_by_moengage_id_or_identifier(harness: Harness) -> None:
    """`GET .../users?moengage_id=` and `?identifier=NAME&value=V` (the console's Users
    lookup): the value compared as the processor stores identifiers (emails case-folded)."""
    ws, key = await harness.create_workspace(workspace_id="IR", identity_resolution=("u_em",))
    body = {
        "type": "event",
        "customer_id": "ada",
        "user_identifiers": {"u_em": "Ada@Example.com"},
        "actions": [{"action": "Opened"}],
    }
    sent = await harness.post(body, workspace_id=ws, headers=harness.headers(ws, key))
    assert sent.status_code == 200
    auth = {"Authorization": basic(ws, key)}
    deadline = time.monotonic() + 2
    while True:
        profile = await harness.client.get(f"/api/workspaces/{ws}/users/ada", headers=auth)
        if profile.status_code == 200 or time.monotonic() > deadline:
            break
        await anyio.sleep(0.02)
    moengage_id = profile.json()["moengage_id"]
    by_identifier = await harness.client.get(
        f"/api/workspaces/{ws}/users",
        params={"identifier": "u_em", "value": "  ADA@example.COM "},
        headers=auth,
    )
    assert (by_identifier.status_code, by_identifier.json()) == (200, profile.json())
    by_moengage_id = await harness.client.get(
        f"/api/workspaces/{ws}/users", params={"moengage_id": moengage_id}, headers=auth
    )
    assert (by_moengage_id.status_code, by_moengage_id.json()) == (200, profile.json())
    for params in ({"identifier": "u_em", "value": "bob@example.com"}, {"moengage_id": "0" * 24}):
        missing = await harness.client.get(
            f"/api/workspaces/{ws}/users", params=params, headers=auth
        )
        error = missing.json()["error"]
        assert (missing.status_code, error["type"], error["message"]) == (
            404,
            "NotFound",
            "No such user",
        )
    bare = await harness.client.get(f"/api/workspaces/{ws}/users", headers=auth)
    error = bare.json()["error"]
    assert (bare.status_code, error["attribute"]) == (400, "identifier")
