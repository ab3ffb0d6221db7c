"""Track Device against the real `trackd serve`, on both backends (embedded SQLite; scale-out
on NATS JetStream, PostgreSQL and Redis): the device shows on its user's profile through the
read API with every attribute kept, a device of an unknown user is an issue, a device sharing
an identifier replaces the user's, and the `app_id` query form is the same endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.data_api import BACKENDS, Backend, backend_fixture, workspace

pytestmark = [pytest.mark.e2e, pytest.mark.anyio, pytest.mark.timeout(300)]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    yield from backend_fixture(request, tmp_path_factory)


def device(customer_id: str, device_id: str, **attributes: Any) -> dict[str, Any]:
    return {
        "type": "device",
        "customer_id": customer_id,
        "device_id": device_id,
        "attributes": {"platform": "ANDROID", "push_id": f"push-{device_id}", **attributes},
    }


EVENT = {"type": "event", "actions": [{"action": "Opened", "app_version": "1.0"}]}


async def test_a_device_shows_on_the_profile_with_every_attribute_kept(backend: Backend) -> None:
    async with httpx.AsyncClient(base_url=backend.url, timeout=30) as client:
        ws = await workspace(backend, client)
        assert (
            await ws.post(f"/v1/event/{ws.id}", {**EVENT, "customer_id": "ada"})
        ).status_code == 200
        body = device(
            "ada", "pixel", model="Pixel 8", os_version="14", moe_gaid="g-1",
            app_version="2.1", moe_push_opted="True", idfv="v-1", colour="red",
        )  # fmt: skip
        response = await ws.post(f"/v1/device/{ws.id}", body)
        assert response.status_code == 200
        assert response.json() == {
            "status": "success",
            "message": "Your request has been accepted and will be processed soon.",
            "request_id": response.headers["x-request-id"],
            "warnings": [
                {"index": 0, "reason": "identifier_platform_mismatch",
                 "attribute": "attributes.idfv"},
                {"index": 0, "reason": "custom_device_attribute",
                 "attribute": "attributes.colour"},
            ],
        }  # fmt: skip
        user = await ws.until("users/ada", lambda u: len(u["devices"]) == 2)
        pixel = next(d for d in user["devices"] if d["device_id"] == "pixel")
        assert {k: v for k, v in pixel.items() if k not in ("first_seen", "last_seen")} == {
            "device_id": "pixel", "platform": "ANDROID", "app_version": "2.1",
            "last_ip": "127.0.0.1", "push_id": "push-pixel", "model": "Pixel 8",
            "os_version": "14", "moe_gaid": "g-1", "moe_push_opted": "True",
        }  # fmt: skip
        issues = await ws.until("issues", lambda i: len(i["issues"]) == 2)
        assert sorted(i["reason"] for i in issues["issues"]) == [
            "custom_device_attribute",
            "identifier_platform_mismatch",
        ]


async def test_unknown_user_replacement_and_the_query_form(backend: Backend) -> None:
    async with httpx.AsyncClient(base_url=backend.url, timeout=30) as client:
        ws = await workspace(backend, client)
        ghost = await ws.post(f"/v1/device/{ws.id}", device("ghost", "g1"))
        assert ghost.status_code == 200
        assert (
            await ws.post(f"/v1/event/{ws.id}", {**EVENT, "customer_id": "bo"})
        ).status_code == 200
        first = await ws.post("/v1/device", device("bo", "old", moe_gaid="same"), app_id=ws.id)
        assert first.status_code == 200
        second = await ws.post(f"/v1/device/{ws.id}", device("bo", "new", moe_gaid="same"))
        assert second.status_code == 200
        user = await ws.until("users/bo", lambda u: "new" in [d["device_id"] for d in u["devices"]])
        assert sorted(d["device_id"] for d in user["devices"]) == ["bo", "new"]
        issues = await ws.until("issues", lambda i: len(i["issues"]) == 1)
        assert [(i["request_id"], i["reason"]) for i in issues["issues"]] == [
            (ghost.headers["x-request-id"], "unknown_user")
        ]
        assert (await ws.get("users/ghost")).status_code == 404
