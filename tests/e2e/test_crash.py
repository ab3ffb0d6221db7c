"""`kill -9` while 16 clients send: a 200 is a promise that survives the crash, exactly once."""

from __future__ import annotations

import random

import anyio
import pytest

from tests.e2e.helpers import auth, cli_json, success
from tests.e2e.load import Answer, Load, broken_promises, expected_response
from tests.e2e.server import Launcher, queued
from tests.factories import SEED_BODY

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

CYCLES = 3
CLIENTS = 16


@pytest.mark.parametrize("workers", [1, 2])
async def test_every_accepted_request_survives_repeated_kill_9_exactly_once(
    trackd: Launcher, workers: int
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    # a limit no run comes near, so that every request with the right key is owed a 200
    created = cli_json(trackd.data_dir, "workspace", "create", "--rate-limit", "100000000")
    workspace_id, key = created["workspace_id"], created["api_key"]
    outcomes: list[Answer] = []
    for cycle in range(CYCLES):
        server = trackd.start(workers=workers)
        traffic = Load(
            server.url, workspace_id, key, clients=CLIENTS, tag=f"k{cycle}", wrong_key_every=5
        )
        async with anyio.create_task_group() as group:
            traffic.start(group)
            await traffic.wait_for_accepted(rng.randrange(1, 200))
            await anyio.sleep(rng.uniform(0, 0.3))
            await anyio.to_thread.run_sync(server.kill)  # the whole process group
            traffic.stop()
        outcomes += traffic.answers

    # the server comes back on the crashed data dir and takes requests again
    server = trackd.start(workers=workers)
    async with server.client() as client:
        after = await client.post(
            f"/v1/event/{workspace_id}", json=SEED_BODY, headers=auth(workspace_id, key)
        )
    assert (after.status_code, after.json()) == (200, success(after))
    assert await anyio.to_thread.run_sync(server.terminate) == 0

    answered = [o for o in outcomes if o.status is not None]
    assert [(o.status, o.body) for o in answered] == [expected_response(o) for o in answered]
    assert sorted({(o.valid, o.status) for o in answered}) == [(False, 401), (True, 200)]
    envelopes = await queued(trackd.data_dir)
    assert envelopes[-1].request_id == after.headers["x-request-id"]
    assert broken_promises(outcomes, envelopes[:-1]) == {
        "accepted but not queued exactly once": [],
        "rejected but queued": [],
        "queued twice": [],
        "queued but never sent": [],
    }, f"random seed {seed}"
