"""Merge Users against the real `trackd serve` (embedded processor): merged events on the
retained user, later events for the merged id following them, aliases shown, and the same
through an Identity Resolution workspace whose identifiers tie two profiles."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.helpers import ServerWorkspace, poll
from tests.e2e.server import TrackdProcess
from tests.factories import SEED_BODY

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]


class Workspace(ServerWorkspace):
    async def send(self, customer_id: str | None, **fields: Any) -> None:
        body: dict[str, Any] = {**SEED_BODY, **fields}
        if customer_id is None:
            body.pop("customer_id")
        else:
            body["customer_id"] = customer_id
        response = await self.client.post(f"/v1/event/{self.id}", json=body, headers=self.headers())
        assert response.status_code == 200, response.text

    async def merge(self, *pairs: tuple[str, str]) -> httpx.Response:
        return await self.client.post(
            "/v1/customer/merge",
            params={"app_id": self.id},
            json={"merge_data": [{"merged_user": m, "retained_user": r} for m, r in pairs]},
            headers=self.headers(),
        )

    async def user_once(self, customer_id: str, done: Any) -> dict[str, Any]:
        response = await poll(
            lambda: self.get(f"users/{customer_id}"),
            lambda r: r.status_code == 200 and done(r.json()),
        )
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        assert done(found), found
        return found


async def test_merged_events_move_to_the_retained_user_and_later_ones_follow(
    server: TrackdProcess,
) -> None:
    async with server.client() as client:
        ws = await Workspace.create(server, client)
        await ws.send("anon-1")
        await ws.send("anon-1")
        await ws.send("known")
        response = await ws.merge(("anon-1", "known"))
        assert response.status_code == 200
        assert response.json() == {
            "status": "success",
            "operation": "created",
            "request_id": response.headers["x-request-id"],
        }
        await ws.send("anon-1")  # after the merge: lands on the retained profile
        user = await ws.user_once("anon-1", lambda u: u["event_count"] == 6)
        assert (user["customer_id"], user["aliases"]) == ("known", ["anon-1"])
        assert user == await ws.user_once("known", lambda u: True)
        page = (await ws.get("events", customer_id="anon-1")).json()
        assert [e["action"] for e in page["events"]] == [
            "ProductAdded",
            "MOE_USER_MERGED",
            "MOE_USER_MERGE_EVENT",
            "ProductAdded",
            "ProductAdded",
            "ProductAdded",
        ]
        assert {e["customer_id"] for e in page["events"]} == {"known"}
        stats = (await ws.get("stats")).json()
        assert stats["processed_events"] == 4  # the merge's own two are not accepted events


async def test_identity_resolution_merges_profiles_an_event_ties_together(
    server: TrackdProcess,
) -> None:
    async with server.client() as client:
        ws = await Workspace.create(server, client, "--identity-resolution", "email,mobile")
        await ws.send(None, user_identifiers={"email": "Ada@Example.com"})
        await ws.send(None, user_identifiers={"mobile": "+1 555 0100"})
        await ws.send(None, user_identifiers={"email": "ada@example.com ", "mobile": "+15550100"})
        user = await ws.user_once("mobile:+15550100", lambda u: u["event_count"] == 5)
        assert user["identifiers"] == {"email": "ada@example.com", "mobile": "+15550100"}
        assert sorted([user["customer_id"], *user["aliases"]]) == [
            "email:ada@example.com",
            "mobile:+15550100",
        ]
