"""Test connection, `POST /v1/integrations/authentication` (data-api.md §7, REF §6.8): the
`MOE-APPKEY` header and the body's `app_id`/`app_secret`; valid: the workspace's name;
otherwise a 401 in the standard envelope, exact bodies. Nothing is queued."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.edge.answers import AUTH, failure, queued
from tests.harness import Harness

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("inspecting")]


async def post_auth(
    harness: Harness, payload: Any, appkey: str | None = "WS1", content: bytes | None = None
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if appkey is not None:
        headers["MOE-APPKEY"] = appkey
    return await harness.client.post(
        "/v1/integrations/authentication",
        json=payload if content is None else None,
        content=content,
        headers=headers,
    )


def good(harness: Harness, **changes: Any) -> dict[str, Any]:
    return {"app_id": "WS1", "app_secret": harness.key, "source": "rudderstack", "region": "01",
            **changes}  # fmt: skip


async def test_valid_credentials_answer_the_workspace_name(harness: Harness) -> None:
    response = await post_auth(harness, good(harness))
    assert response.status_code == 200
    assert response.json() == {"status": "success", "app_name": "Test"}
    assert await queued(harness) == []


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no-header", "MOE-APPKEY is missing in Header"),
        ("empty-body", "No identity information found"),
        ("not-object", "No identity information found"),
        ("no-app-id", "APP_KEY missing in the authentication header"),
        ("no-secret", "APP_SECRET missing in the authentication header"),
        ("other-app-id", "MOE_APPKEY doesn't match the Username (APP_KEY) used in Basic Auth "
                         "authorization."),
        ("wrong-secret", "App Secret key mismatch. Please login to the dashboard to verify key"),
        ("unknown", "Invalid APP_ID used in Authentication Header"),
    ],
)  # fmt: skip
async def test_every_failure_is_a_401_in_the_standard_envelope(
    harness: Harness, case: str, message: str
) -> None:
    payload: Any = good(harness)
    appkey: str | None = "WS1"
    content = None
    if case == "no-header":
        appkey = None
    elif case == "empty-body":
        content = b""
    elif case == "not-object":
        payload = ["WS1"]
    elif case == "no-app-id":
        payload.pop("app_id")
    elif case == "no-secret":
        payload.pop("app_secret")
    elif case == "other-app-id":
        payload["app_id"] = "WS2"
    elif case == "wrong-secret":
        payload["app_secret"] = "nope"
    elif case == "unknown":
        payload["app_id"] = appkey = "NOPE"
    response = await post_auth(harness, payload, appkey, content)
    assert response.status_code == 401
    assert response.json() == failure(response, message, AUTH)
    assert await queued(harness) == []


async def test_a_revoked_key_is_a_401_too(harness: Harness) -> None:
    from trackd import admin

    await admin.revoke_key(harness.store, "WS1")
    await harness.app.registry.reload()
    response = await post_auth(harness, good(harness))
    assert response.status_code == 401
    assert response.json() == failure(
        response, "App Secret key mismatch. Please login to the dashboard to verify key", AUTH
    )
