"""GDPR erasure against the real `trackd serve` and the request log: the edge records each
request in a buffer it flushes every quarter second, so a user's request and its erasure sent
back to back reach the processor before the request's entry reaches the log; the entry must
still not be kept."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from tests.e2e.helpers import ServerWorkspace, poll
from tests.e2e.server import TrackdProcess
from tests.factories import SEED_BODY

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

ROUNDS = 5


class Workspace(ServerWorkspace):
    async def post(self, path: str, body: dict[str, Any]) -> str:
        response = await self.client.post(f"{path}/{self.id}", json=body, headers=self.headers())
        assert response.status_code == 200, response.text
        return response.headers["x-request-id"]


def erasure(customer_id: str) -> dict[str, Any]:
    return {
        "request_type": "erasure",
        "submitted_time": "2018-10-05T15:00:00Z",
        "identities": [{"identity_type": "ID", "identity_value": customer_id}],
        "api_version": "1.0",
    }


async def test_a_request_still_in_the_edges_buffer_when_its_user_is_erased_is_not_kept(
    server: TrackdProcess,
) -> None:
    async with server.client() as client:
        ws = await Workspace.create(server, client)
        kept = await ws.post("/v1/event", {**SEED_BODY, "customer_id": "bob"})
        erasures = []
        for n in range(ROUNDS):  # each round's request and erasure within a few milliseconds
            await ws.post("/v1/event", {**SEED_BODY, "customer_id": f"ada{n}"})
            erasures.append(await ws.post("/v1/opengdpr_requests", erasure(f"ada{n}")))
        listed = await poll(
            lambda: ws.get("erasures"), lambda r: len(r.json()["erasures"]) == ROUNDS, seconds=15
        )
        assert [e["users"] for e in listed.json()["erasures"]] == [1] * ROUNDS, listed.text
        await anyio.sleep(1.0)  # every flush of the edge's buffer has happened
        response = await ws.get("requests", limit=100)
        assert response.status_code == 200, response.text
        entries = response.json()["requests"]
        assert sorted(e["request_id"] for e in entries) == sorted([kept, *erasures])
        assert [e["customer_id"] for e in entries if e["request_id"] == kept] == ["bob"]
