"""What the CLI grants is seen by the very next request (issue 12): a script that creates a
workspace, adds a project or regenerates a key and sends at once never gets a 401, on one worker
or on each of two."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.helpers import auth, cli, cli_json
from tests.e2e.server import Launcher, TrackdProcess
from tests.factories import SEED_BODY

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

ROUNDS = 20  # each round runs the CLI: ~0.25 s


@pytest.fixture(scope="module", params=[1, 2], ids=["workers=1", "workers=2"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TrackdProcess]:
    launcher = Launcher(tmp_path_factory.mktemp("read-your-writes"))
    try:
        yield launcher.start(workers=request.param)
    finally:
        launcher.close()


async def test_a_workspace_created_is_served_by_the_next_request(server: TrackdProcess) -> None:
    statuses = []
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        for _ in range(ROUNDS):
            created = cli_json(server.data_dir, "workspace", "create")
            workspace_id, key = created["workspace_id"], created["api_key"]
            response = await client.post(
                f"/v1/event/{workspace_id}", json=SEED_BODY, headers=auth(workspace_id, key)
            )
            read = await client.get(
                f"/api/workspaces/{workspace_id}/stats", headers=auth(workspace_id, key)
            )
            statuses.append((response.status_code, read.status_code))
    assert statuses == [(200, 200)] * ROUNDS


async def test_a_regenerated_key_is_taken_by_the_next_request(server: TrackdProcess) -> None:
    created = cli_json(server.data_dir, "workspace", "create")
    workspace_id = created["workspace_id"]
    statuses = []
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        for _ in range(ROUNDS):
            key = cli_json(server.data_dir, "key", "regenerate", workspace_id)["api_key"]
            response = await client.post(
                f"/v1/event/{workspace_id}", json=SEED_BODY, headers=auth(workspace_id, key)
            )
            statuses.append(response.status_code)
    assert statuses == [200] * ROUNDS


async def test_a_project_created_is_taken_by_the_next_request(server: TrackdProcess) -> None:
    created = cli_json(server.data_dir, "workspace", "create", "--portfolio")
    workspace_id, key = created["workspace_id"], created["api_key"]
    statuses = []
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        for i in range(ROUNDS):
            cli(server.data_dir, "project", "create", workspace_id, f"P{i}")
            response = await client.post(
                f"/v1/event/{workspace_id}",
                params={"project_code": f"P{i}"},
                json=SEED_BODY,
                headers=auth(workspace_id, key),
            )
            statuses.append(response.status_code)
    assert statuses == [200] * ROUNDS
