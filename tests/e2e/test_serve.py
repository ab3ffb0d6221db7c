"""`trackd serve` as a user runs it: the banner, health, the seed request, a SIGTERM drain."""

from __future__ import annotations

import shlex

import anyio
import httpx
import pytest

from tests.e2e.helpers import auth, success
from tests.e2e.load import Load, broken_promises, expected_response
from tests.e2e.server import Launcher, queued
from tests.factories import SEED_BODY, basic

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]


def curl_request(line: str) -> httpx.Request:
    """The request a printed ``curl -u … -H … URL -d …`` line sends."""
    args = shlex.split(line)
    assert args[0] == "curl"
    headers: dict[str, str] = {}
    url = body = ""
    rest = iter(args[1:])
    for arg in rest:
        if arg == "-u":
            user, _, password = next(rest).partition(":")
            headers["Authorization"] = basic(user, password)
        elif arg == "-H":
            name, _, value = next(rest).partition(":")
            headers[name.strip()] = value.strip()
        elif arg == "-d":
            body = next(rest)
        else:
            url = arg
    return httpx.Request("POST", url, headers=headers, content=body.encode())


async def test_first_start_prints_the_demo_workspace_and_a_curl_line_that_works(
    trackd: Launcher,
) -> None:
    server = trackd.start()
    key = server.demo_key
    assert key is not None, server.banner
    [curl_line] = [line.strip() for line in server.banner if line.strip().startswith("curl ")]
    assert "  workspace id: DEMO" in server.banner
    async with server.client() as client:
        response = await client.send(curl_request(curl_line))
        assert response.status_code == 200
        assert response.json() == success(response)
        seed = await client.post("/v1/event/DEMO", json=SEED_BODY, headers=auth("DEMO", key))
        assert seed.status_code == 200
        assert seed.json() == success(seed)
    assert await anyio.to_thread.run_sync(server.terminate) == 0

    envelopes = await queued(trackd.data_dir)
    assert [(e.request_id, e.workspace_id) for e in envelopes] == [
        (response.headers["x-request-id"], "DEMO"),
        (seed.headers["x-request-id"], "DEMO"),
    ]
    assert [(e.customer_id, e.actions[0].action) for e in envelopes] == [
        ("u1", "Signed Up"),
        ("123", "ProductAdded"),
    ]


async def test_second_start_on_the_same_data_dir_prints_no_key_and_keeps_the_demo_key(
    trackd: Launcher,
) -> None:
    first = trackd.start()
    key = first.demo_key
    assert key is not None, first.banner
    assert await anyio.to_thread.run_sync(first.terminate) == 0

    second = trackd.start()
    assert second.banner == []
    async with second.client() as client:
        response = await client.post("/v1/event/DEMO", json=SEED_BODY, headers=auth("DEMO", key))
    assert response.status_code == 200
    assert response.json() == success(response)


@pytest.mark.parametrize("workers", [1, 2])
async def test_health_readiness_and_the_seed_request_answer_200(
    trackd: Launcher, workers: int
) -> None:
    server = trackd.start(workers=workers)
    key = server.demo_key
    assert key is not None
    # a fresh connection per request, so that with --workers 2 both processes answer
    async with server.client(limits=httpx.Limits(max_keepalive_connections=0)) as client:
        healthz = await client.get("/healthz")
        assert (healthz.status_code, healthz.json()) == (200, {"status": "ok"})
        readyz = await client.get("/readyz")
        assert (readyz.status_code, readyz.json()) == (200, {"status": "ready"})
        responses = []
        for _ in range(8):
            response = await client.post(
                "/v1/event/DEMO", json=SEED_BODY, headers=auth("DEMO", key)
            )
            responses.append(response)
    assert [(r.status_code, r.json()) for r in responses] == [(200, success(r)) for r in responses]
    assert await anyio.to_thread.run_sync(server.terminate) == 0

    envelopes = await queued(trackd.data_dir)
    assert [e.request_id for e in envelopes] == [r.headers["x-request-id"] for r in responses]
    assert {(e.workspace_id, e.customer_id) for e in envelopes} == {("DEMO", "123")}


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_while_clients_send_exits_0_and_keeps_every_accepted_request(
    trackd: Launcher, workers: int
) -> None:
    server = trackd.start(workers=workers)
    key = server.demo_key
    assert key is not None
    traffic = Load(server.url, "DEMO", key, clients=8, tag="term")
    async with anyio.create_task_group() as group:
        traffic.start(group)
        await traffic.wait_for_accepted(40)
        returncode = await anyio.to_thread.run_sync(server.terminate)
        traffic.stop()
    assert returncode == 0, server.stderr()

    answered = [o for o in traffic.answers if o.status is not None]
    assert [(o.status, o.body) for o in answered] == [expected_response(o) for o in answered]
    envelopes = await queued(trackd.data_dir)
    assert broken_promises(traffic.answers, envelopes) == {
        "accepted but not queued exactly once": [],
        "rejected but queued": [],
        "queued twice": [],
        "queued but never sent": [],
    }
