"""The `/v1` endpoint table and its router (trackd/edge/v1.py): whole paths, route words, query
routes, and what each row decides (bucket, what counts, the envelope kind)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.edge.answers import failure, success
from tests.factories import SEED_BODY, basic
from tests.harness import Harness
from trackd import admin
from trackd.edge.app import TrackdApp
from trackd.edge.v1 import V1_ROUTES, Bucket, Router, V1Route, WorkspaceFrom
from trackd.limiter.memory import MemoryLimiter
from trackd.models import Kind
from trackd.queue.memory import MemoryQueue
from trackd.services import Services
from trackd.settings import Settings
from trackd.store import open_event_store
from trackd.store.memory import MemoryWorkspaceStore

pytestmark = pytest.mark.anyio

EVENT, USER = V1_ROUTES[:2]
#: A query route, as Merge and Delete are (`/v1/customer/merge?app_id=WS`): Track Event's
#: checks under another path, so the router and the endpoint can be tried on one.
QUERY_ROUTE = dataclasses.replace(
    EVENT, name="Query", pattern="/v1/customer/merge", workspace_from=WorkspaceFrom.QUERY
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/event/WS1", (EVENT, "WS1")),
        ("/v1/customer/WS1", (USER, "WS1")),
        ("/v1/customer/merge", (QUERY_ROUTE, None)),
        ("/v1/customer/delete", None),  # a route word is never a workspace id
        ("/v1/event/export", None),
        ("/v1/event/", None),
        ("/v1/event", None),
        ("/v1/event/WS1/extra", None),
        ("/v1/events/WS1", None),
        ("/v2/event/WS1", None),
        ("/x/v1/event/WS1", None),
    ],
)
def test_router_matches_whole_paths(path: str, expected: tuple[V1Route, str | None] | None) -> None:
    assert Router([EVENT, USER, QUERY_ROUTE]).match(path) == expected


def test_a_table_with_two_rows_for_one_path_is_refused() -> None:
    with pytest.raises(ValueError, match="two routes for /v1/event/"):
        Router([EVENT, dataclasses.replace(EVENT, name="again")])


def test_a_workspace_placeholder_must_be_the_last_segment() -> None:
    with pytest.raises(ValueError, match="can only be the last segment"):
        Router([dataclasses.replace(EVENT, pattern="/v1/{workspace_id}/event")])


def test_each_row_names_its_bucket_what_counts_and_its_kind() -> None:
    assert [(r.pattern, r.kind, r.bucket, r.counts_events) for r in V1_ROUTES[:2]] == [
        ("/v1/event/{workspace_id}", Kind.EVENT, Bucket.EVENTS, True),
        ("/v1/customer/{workspace_id}", Kind.CUSTOMER, Bucket.USERS, False),
    ]
    assert Bucket.EVENTS.key("WS1") == "WS1"  # the key events always had
    assert Bucket.USERS.key("WS1") == "WS1/users"


async def test_customer_merge_is_not_track_user_for_a_workspace_named_merge(
    harness: Harness,
) -> None:
    response = await harness.client.post(
        "/v1/customer/merge",
        params={"app_id": "WS1"},
        json={"type": "customer", "customer_id": "c1", "attributes": {}},
        headers=harness.headers(),
    )
    # Merge Users' own row answers (data-api.md §3), not Track User's for a workspace "merge"
    assert response.status_code == 400
    assert response.json() == failure(
        response, "merge_data is not found in the payload", "MissingAttributeError", "merge_data"
    )
    assert await harness.queued() == []


async def test_track_user_updates_are_not_counted_as_accepted_events(harness: Harness) -> None:
    body = {"type": "customer", "customer_id": "c1", "attributes": {"plan": "pro"}}
    response = await harness.client.post("/v1/customer/WS1", json=body, headers=harness.headers())
    assert response.status_code == 200
    assert harness.app.counters.accepted_events == 0
    response = await harness.post(SEED_BODY)
    assert response.status_code == 200
    assert harness.app.counters.accepted_events == 1


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v1/event/WS1", "POST"),
        ("PUT", "/v1/customer/WS1", "POST"),
        ("POST", "/healthz", "GET, HEAD"),
        ("DELETE", "/metrics", "GET, HEAD"),
        ("POST", "/api/workspaces/WS1/schema", "GET, HEAD"),
    ],
)
async def test_every_405_says_which_methods_the_path_takes(
    harness: Harness, method: str, path: str, allow: str
) -> None:
    response = await harness.client.request(method, path, headers=harness.headers())
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json() == failure(
        response, "Method not allowed on this endpoint", "MethodNotAllowed"
    )


@pytest.fixture
async def query_app(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = TrackdApp(
        Services(
            Settings(data_dir=str(tmp_path), processor="off"),
            workspaces=MemoryWorkspaceStore(),
            events=open_event_store("memory://"),
            queue=MemoryQueue(),
            limiter=MemoryLimiter(),
        ),
        routes=[QUERY_ROUTE],
    )
    await app.startup()
    _, key = await admin.create_workspace(app.store, workspace_id="WS1")
    await app.registry.reload()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        client.headers["authorization"] = basic("WS1", key)
        client.headers["content-type"] = "application/json"
        yield client
    await app.shutdown()


async def test_a_query_route_finds_its_workspace_in_app_id(query_app: httpx.AsyncClient) -> None:
    response = await query_app.post("/v1/customer/merge", params={"app_id": "WS1"}, json=SEED_BODY)
    assert response.status_code == 200
    assert response.json() == success(response)
    assert response.headers["x-ratelimit-limit"] == "30000"


async def test_a_query_route_without_app_id_is_params_required(
    query_app: httpx.AsyncClient,
) -> None:
    response = await query_app.post("/v1/customer/merge", json=SEED_BODY)
    assert response.status_code == 400
    assert response.json() == failure(
        response, "app_id is required in path/query params.", "ParamsRequired"
    )


async def test_a_query_route_for_another_workspace_is_a_mismatch(
    query_app: httpx.AsyncClient,
) -> None:
    response = await query_app.post("/v1/customer/merge", params={"app_id": "WS2"}, json=SEED_BODY)
    assert response.status_code == 409
    assert response.json()["error"]["type"] == "Authentication Mismatch"
