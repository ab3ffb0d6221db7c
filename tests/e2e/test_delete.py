"""Delete User against the real `trackd serve` (embedded processor): a workspace with a delete
buffer of 0 loses the user at once (profile, devices, events) and the same customer id later is
a new user; with a 2 s buffer the profile shows `deletion_scheduled_at`, stays updatable, and
the processor's sweep hard-deletes it when due; the CLI's `--delete-buffer` on create and
update; an unknown user is REF's 400."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.helpers import ServerWorkspace, cli_json, poll
from tests.e2e.server import TrackdProcess
from tests.factories import SEED_BODY

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]


class Workspace(ServerWorkspace):
    async def send(self, customer_id: str) -> None:
        body: dict[str, Any] = {**SEED_BODY, "customer_id": customer_id}
        response = await self.client.post(f"/v1/event/{self.id}", json=body, headers=self.headers())
        assert response.status_code == 200, response.text

    async def delete(self, value: str, identity_type: str = "customer_id") -> httpx.Response:
        return await self.client.post(
            "/v1/customer/delete",
            params={"app_id": self.id},
            json={"identity_type": identity_type, "identity_value": value},
            headers=self.headers(),
        )

    async def user(self, customer_id: str, done: Any) -> httpx.Response:
        return await poll(lambda: self.get(f"users/{customer_id}"), done, seconds=15)


def found(response: httpx.Response) -> bool:
    return response.status_code == 200


def gone(response: httpx.Response) -> bool:
    return response.status_code == 404


async def test_a_delete_without_buffer_removes_the_user_at_once(server: TrackdProcess) -> None:
    async with server.client() as client:
        ws = await Workspace.create(server, client, "--delete-buffer", "0")
        await ws.send("ada")
        await ws.send("bob")
        first = await ws.user("ada", found)
        assert found(first), first.text
        response = await ws.delete(first.json()["moengage_id"], "moengage_id")
        assert response.status_code == 200
        assert response.json() == {
            "status": "success",
            "message": "Your request has been accepted and will be processed soon.",
            "request_id": response.headers["x-request-id"],
        }
        assert gone(await ws.user("ada", gone))
        page = (await ws.get("events", customer_id="ada")).json()
        assert page["events"] == []
        assert found(await ws.get("users/bob"))
        await ws.send("ada")  # the same id again: a new user with a new moengage_id
        again = await ws.user("ada", found)
        assert again.json()["moengage_id"] != first.json()["moengage_id"]
        assert again.json()["event_count"] == 1
        unknown = await ws.delete("nobody")
        assert unknown.status_code == 400
        assert unknown.json() == {
            "status": "fail",
            "error": {
                "message": "User doesn't exists with customer id nobody",
                "type": "Not Found",
                "request_id": unknown.headers["x-request-id"],
            },
        }


async def test_a_buffered_delete_is_shown_then_applied_when_due(server: TrackdProcess) -> None:
    async with server.client() as client:
        ws = await Workspace.create(server, client, "--delete-buffer", "2")
        await ws.send("ada")
        assert found(await ws.user("ada", found))
        response = await ws.delete("ada")
        assert response.status_code == 200
        shown = await ws.user("ada", lambda r: "deletion_scheduled_at" in r.json())
        assert shown.json()["deletion_scheduled_at"] > 0
        await ws.send("ada")  # still updatable during the buffer
        assert gone(await ws.user("ada", gone))
        assert (await ws.get("events", customer_id="ada")).json()["events"] == []


async def test_a_delete_right_after_the_request_that_made_the_user_finds_it(
    server: TrackdProcess,
) -> None:
    async with server.client() as client:
        ws = await Workspace.create(server, client, "--delete-buffer", "0")
        for i in range(10):
            await ws.send(f"new{i}")  # its 200, then at once the delete
            response = await ws.delete(f"new{i}")
            assert response.status_code == 200, response.text
        for i in range(10):
            assert gone(await ws.user(f"new{i}", gone))


def test_the_cli_sets_and_shows_the_delete_buffer(server: TrackdProcess) -> None:
    created = cli_json(server.data_dir, "workspace", "create")
    shown = cli_json(server.data_dir, "workspace", "show", created["workspace_id"])
    assert shown["delete_buffer"] == 86_400  # REF §6.5: 24 hours
    updated = cli_json(
        server.data_dir, "workspace", "update", created["workspace_id"], "--delete-buffer", "0"
    )
    assert updated["delete_buffer"] == 0


async def test_get_user_right_after_track_user_finds_it(server: TrackdProcess) -> None:
    """Get User (data-api.md §5) against the real server: never "not found" for a user whose
    Track User got its 200 before, and REF's shape."""
    async with server.client() as client:
        ws = await Workspace.create(server, client)
        for i in range(10):
            sent = await client.post(
                f"/v1/customer/{ws.id}",
                json={"type": "customer", "customer_id": f"g{i}", "attributes": {"n": i}},
                headers=ws.headers(),
            )
            assert sent.status_code == 200, sent.text
            response = await client.post(
                "/v1/customers/export",
                params={"app_id": ws.id},
                json={"data": {"identifiers": [{"identifier_type": "customer_id",
                                                "identifier": f"g{i}"}],
                               "user_fields_to_export": ["n"]}},
                headers=ws.headers(),
            )  # fmt: skip
            assert response.status_code == 200, response.text
            [user] = response.json()["data"]["users"]
            assert response.json()["data"]["users_not_found"] == []
            assert user["user_attributes"]["customer_id"] == f"g{i}"
            assert user["user_attributes"]["n"] == i


async def test_test_connection_answers_the_workspace_name(server: TrackdProcess) -> None:
    """Test connection (data-api.md §7) against the real server."""
    async with server.client() as client:
        ws = await Workspace.create(server, client, "--name", "Shop")
        body = {"app_id": ws.id, "app_secret": ws.key, "source": "x", "region": "01"}
        headers = {"MOE-APPKEY": ws.id, "Content-Type": "application/json"}
        response = await client.post("/v1/integrations/authentication", json=body, headers=headers)
        assert (response.status_code, response.json()) == (
            200,
            {"status": "success", "app_name": "Shop"},
        )
        wrong = await client.post(
            "/v1/integrations/authentication", json={**body, "app_secret": "x"}, headers=headers
        )
        assert wrong.status_code == 401
        assert wrong.json()["error"]["type"] == "Authentication required"


async def test_an_erasure_leaves_only_its_audit_record(server: TrackdProcess) -> None:
    """GDPR erasure (data-api.md §6) against the real server: both users sharing an email go,
    with their devices, events and issues; the audit record stays, without the values."""
    async with server.client() as client:
        ws = await Workspace.create(server, client)
        for customer in ("ada", "bob", "keep"):
            email = "keep@example.com" if customer == "keep" else "shared@example.com"
            sent = await client.post(
                f"/v1/customer/{ws.id}",
                json={"type": "customer", "customer_id": customer, "attributes": {"email": email}},
                headers=ws.headers(),
            )
            assert sent.status_code == 200
            await ws.send(customer)
        device = {"type": "device", "customer_id": "ada", "device_id": "phone",
                  "attributes": {"platform": "ANDROID", "push_id": "p1"}}  # fmt: skip
        assert (
            await client.post(f"/v1/device/{ws.id}", json=device, headers=ws.headers())
        ).status_code == 200
        assert found(await ws.user("ada", lambda r: len(r.json().get("devices", [])) == 2))
        response = await client.post(
            f"/v1/opengdpr_requests/{ws.id}",
            json={"request_type": "erasure", "submitted_time": "2018-10-05T15:00:00Z",
                  "identities": [{"identity_type": "email",
                                  "identity_value": "shared@example.com"}],
                  "api_version": "1.0"},
            headers=ws.headers(),
        )  # fmt: skip
        assert response.status_code == 200, response.text
        for gone_user in ("ada", "bob"):
            assert gone(await ws.user(gone_user, gone))
            assert (await ws.get("events", customer_id=gone_user)).json()["events"] == []
        assert found(await ws.get("users/keep"))
        listed = await poll(lambda: ws.get("erasures"), lambda r: r.json()["erasures"] != [])
        [record] = listed.json()["erasures"]
        assert (record["request_id"], record["users"], record["events"]) == (
            response.headers["x-request-id"],
            2,
            2,
        )
        assert "shared@example.com" not in listed.text
