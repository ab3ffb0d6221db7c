"""The CLI changes a running server: within one second, on every worker, without a restart.

Each deadline is measured from the CLI command's exit. Requests go through keep-alive
connections pinned to each worker process (`TrackdProcess.pin_workers`), and every response is
labelled with the process that answered it, so "on every worker" is checked, not hoped for. A
check passes when one round (a request per worker) gets the expected responses from every
worker; rounds are sent every 50 ms until the deadline.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest

from tests.e2e.helpers import auth, cli, cli_json, failure, success
from tests.e2e.server import Launcher, TrackdProcess
from tests.factories import SEED_BODY

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

DEADLINE_SECONDS = 1.0
POLL_SECONDS = 0.05

AUTH = "Authentication required"
UNKNOWN_WORKSPACE = "Invalid APP_ID used in Authentication Header"
KEY_MISMATCH = "App Secret key mismatch. Please login to the dashboard to verify key"
KEY_NOT_SET = "App Secret key is not set. Please login to the dashboard to set a key"
RATE_LIMITED = "Rate limits for customers exceeded. Please Try After Some Time"

Answer = tuple[int, dict[str, Any]]
Expect = Callable[[httpx.Response], Answer]


@pytest.fixture(scope="module", params=[1, 2], ids=["workers=1", "workers=2"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TrackdProcess]:
    """One server per worker count for the whole module; each test makes its own workspace."""
    launcher = Launcher(tmp_path_factory.mktemp("live-admin"))
    try:
        yield launcher.start(workers=request.param)
    finally:
        launcher.close()


@pytest.fixture
async def pinned(server: TrackdProcess) -> AsyncIterator[list[httpx.AsyncClient]]:
    """A keep-alive client per worker process."""
    clients = await server.pin_workers()
    try:
        yield clients
    finally:
        for client in clients:
            await client.aclose()


def accepted(response: httpx.Response) -> Answer:
    return 200, success(response)


def rejected(status: int, type_: str, message: str) -> Expect:
    return lambda response: (status, failure(response, type_, message))


def answer(response: httpx.Response) -> Answer:
    return response.status_code, response.json()


async def post(client: httpx.AsyncClient, workspace_id: str, key: str) -> httpx.Response:
    return await client.post(
        f"/v1/event/{workspace_id}", json=SEED_BODY, headers=auth(workspace_id, key)
    )


async def eventually(
    server: TrackdProcess,
    pinned: list[httpx.AsyncClient],
    since: float,
    checks: list[tuple[str, str, Expect]],
) -> None:
    """Poll until a round of `checks`, sent to every worker, gets the expected responses from
    every worker; fail with the last round if that has not happened `DEADLINE_SECONDS` after
    `since`."""
    while True:
        got: list[tuple[int, Answer]] = []
        wanted: list[tuple[int, Answer]] = []
        for workspace_id, key, expect in checks:
            for client in pinned:
                response = await post(client, workspace_id, key)
                pid = server.answered_by(response)
                got.append((pid, answer(response)))
                wanted.append((pid, expect(response)))
        workers = {pid for pid, _ in got}
        assert len(workers) == server.workers, "a pinned connection moved to another worker"
        if got == wanted:
            return
        if time.monotonic() - since > DEADLINE_SECONDS:
            assert got == wanted, f"not in effect on every worker {DEADLINE_SECONDS} s after"
        await anyio.sleep(POLL_SECONDS)


def created(server: TrackdProcess, *options: str) -> tuple[str, str]:
    """A workspace made by the CLI: its id and key."""
    made = cli_json(server.data_dir, "workspace", "create", *options)
    assert made == {"workspace_id": made["workspace_id"], "api_key": made["api_key"]}
    return made["workspace_id"], made["api_key"]


async def test_created_workspace_key_works_on_every_worker_within_a_second(
    server: TrackdProcess, pinned: list[httpx.AsyncClient]
) -> None:
    workspace_id, key = created(server)
    since = time.monotonic()
    await eventually(server, pinned, since, [(workspace_id, key, accepted)])


async def test_unknown_workspace_is_refused_until_the_cli_creates_it(
    server: TrackdProcess, pinned: list[httpx.AsyncClient]
) -> None:
    unknown = rejected(401, AUTH, UNKNOWN_WORKSPACE)
    await eventually(server, pinned, time.monotonic(), [("LATE", "some-key", unknown)])

    workspace_id, key = created(server, "--id", "LATE")
    since = time.monotonic()
    assert workspace_id == "LATE"
    await eventually(server, pinned, since, [(workspace_id, key, accepted)])


async def test_regenerated_key_replaces_the_old_one_on_every_worker_within_a_second(
    server: TrackdProcess, pinned: list[httpx.AsyncClient]
) -> None:
    workspace_id, old_key = created(server)
    await eventually(server, pinned, time.monotonic(), [(workspace_id, old_key, accepted)])

    regenerated = cli_json(server.data_dir, "key", "regenerate", workspace_id)
    since = time.monotonic()
    new_key = regenerated["api_key"]
    assert regenerated == {"workspace_id": workspace_id, "api_key": new_key}
    assert new_key != old_key
    mismatch = rejected(401, AUTH, KEY_MISMATCH)
    checks = [(workspace_id, old_key, mismatch), (workspace_id, new_key, accepted)]
    await eventually(server, pinned, since, checks)


async def test_suspended_workspace_gets_403_within_a_second_and_200_again_after_resume(
    server: TrackdProcess, pinned: list[httpx.AsyncClient]
) -> None:
    workspace_id, key = created(server)
    await eventually(server, pinned, time.monotonic(), [(workspace_id, key, accepted)])

    cli(server.data_dir, "workspace", "suspend", workspace_id)
    since = time.monotonic()
    suspended = rejected(403, "Account Suspended", "Account Suspended")
    await eventually(server, pinned, since, [(workspace_id, key, suspended)])

    cli(server.data_dir, "workspace", "resume", workspace_id)
    since = time.monotonic()
    await eventually(server, pinned, since, [(workspace_id, key, accepted)])


async def test_revoked_key_gets_409_key_not_set_on_every_worker_within_a_second(
    server: TrackdProcess, pinned: list[httpx.AsyncClient]
) -> None:
    workspace_id, key = created(server)
    await eventually(server, pinned, time.monotonic(), [(workspace_id, key, accepted)])

    cli(server.data_dir, "key", "revoke", workspace_id)
    since = time.monotonic()
    not_set = rejected(409, AUTH, KEY_NOT_SET)
    await eventually(server, pinned, since, [(workspace_id, key, not_set)])


async def test_rate_limit_holds_for_the_whole_server_across_connections_and_workers(
    server: TrackdProcess,
) -> None:
    workspace_id, key = created(server, "--rate-limit", "50")
    clients = await server.pin_workers(per_worker=4)
    try:
        # a wrong key tells a known workspace from an unknown one without spending the limit
        mismatch = rejected(401, AUTH, KEY_MISMATCH)
        await eventually(server, clients, time.monotonic(), [(workspace_id, "wrong", mismatch)])

        responses: list[tuple[int, httpx.Response]] = []

        async def connection(client: httpx.AsyncClient) -> None:
            for _ in range(80 // len(clients)):
                response = await post(client, workspace_id, key)
                responses.append((server.answered_by(response), response))

        async with anyio.create_task_group() as group:
            for client in clients:
                group.start_soon(connection, client)
    finally:
        for client in clients:
            await client.aclose()

    assert len({pid for pid, _ in responses}) == server.workers
    limited = rejected(429, "Rate Limits Exceeded", RATE_LIMITED)
    ok = [r for _, r in responses if r.status_code == 200]
    refused = [r for _, r in responses if r.status_code != 200]
    assert (len(ok), len(refused)) == (50, 30)
    assert [answer(r) for r in ok] == [accepted(r) for r in ok]
    assert [answer(r) for r in refused] == [limited(r) for r in refused]
    assert {r.headers["x-ratelimit-limit"] for _, r in responses} == {"50"}
    assert {r.headers["x-ratelimit-remaining"] for r in refused} == {"0"}
    assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
