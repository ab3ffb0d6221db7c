"""Every id trackd accepts can be read back (issue 11): a customer id of any character class, up
to the longest one accepted, through `/users/{id}` (percent-encoded, `/` included) and
`events?customer_id=`, over the real server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.helpers import ServerWorkspace, poll
from tests.e2e.server import TrackdProcess

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

AWKWARD_IDS = [
    "a/b",  # a path separator
    "/leading/and/trailing/",
    "..",  # a dot segment
    "%2F",  # looks percent-encoded already
    "100%",
    "q?x=1&y=2",
    "frag#ment",
    "plus+and space",
    "semi;colon,comma",
    "quote\"apostrophe'back\\slash",
    "<script>alert(1)</script>",
    "tab\tnewline\n",
    "éü中文",
    "emoji 🙂👍🏽",
    "\u200bzero-width",
    "x" * 512,  # the longest customer id accepted
    "中" * 512,  # the longest, at 9 bytes per character once percent-encoded
]


@pytest.fixture
async def workspace(server: TrackdProcess) -> AsyncIterator[ServerWorkspace]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield await ServerWorkspace.create(server, client)


def user_path(workspace: ServerWorkspace, customer_id: str) -> str:
    """`/` and everything else percent-encoded; dots too, or a client drops `..` segments."""
    encoded = quote(customer_id, safe="").replace(".", "%2E")
    return f"/api/workspaces/{workspace.id}/users/{encoded}"


async def test_every_accepted_customer_id_reads_back_as_a_user_and_its_events(
    workspace: ServerWorkspace,
) -> None:
    sent = {}
    for customer_id in AWKWARD_IDS:
        body = {"type": "event", "customer_id": customer_id, "actions": [{"action": "Opened"}]}
        response = await workspace.client.post(
            f"/v1/event/{workspace.id}", json=body, headers=workspace.headers()
        )
        assert response.status_code == 200, (customer_id, response.text)
        sent[customer_id] = response.json()["request_id"]
    await poll(lambda: workspace.get("stats"), lambda r: r.json()["lag_events"] == 0)

    users, events = [], []
    for customer_id in AWKWARD_IDS:
        user = await workspace.client.get(
            user_path(workspace, customer_id), headers=workspace.headers()
        )
        body = user.json()
        users.append((user.status_code, body.get("customer_id"), body.get("event_count")))
        found = (await workspace.get("events", customer_id=customer_id)).json()["events"]
        events.append([(e["customer_id"], e["request_id"]) for e in found])
    assert users == [(200, customer_id, 1) for customer_id in AWKWARD_IDS]
    assert events == [[(customer_id, sent[customer_id])] for customer_id in AWKWARD_IDS]


async def test_an_id_that_was_never_sent_is_no_such_user(workspace: ServerWorkspace) -> None:
    response = await workspace.client.get(
        f"/api/workspaces/{workspace.id}/users/a%2Fb%FF", headers=workspace.headers()
    )
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "No such user"
