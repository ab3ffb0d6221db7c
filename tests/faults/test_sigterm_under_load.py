"""SIGTERM while 16 clients send, three times over: each drain exits 0 within the graceful
timeout, every 200 is in the queue exactly once, and what the processor did survives.

Each cycle starts the server on the same data dir, lets 16 clients send (one in five with a
wrong key), reads the workspace's stats, then sends SIGTERM at a random moment. At the next start
the stats must account for every 200 the clients got: `accepted_events` is exactly their count
(processed + waiting), and no less is processed than before the SIGTERM.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.e2e.helpers import auth, cli_json, poll
from tests.e2e.load import Answer, Load, broken_promises, expected_response
from tests.e2e.server import Launcher, TrackdProcess, queued
from tests.faults.figures import report

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

CYCLES = 3
CLIENTS = 16
#: `trackd serve`'s default; SIGTERM must drain within it (in practice it takes a second or two).
GRACEFUL_SECONDS = 10.0


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    started = Launcher(tmp_path)
    try:
        yield started
    finally:
        started.close()


async def stats(
    server: TrackdProcess,
    workspace_id: str,
    key: str,
    until: Callable[[dict[str, Any]], bool] = lambda _: True,
) -> dict[str, Any]:
    """The workspace's stats, once `until` holds of them (the last ones after a while). Stats
    read the store, then the queue: while the processor runs, one reading can miss a batch that
    moved between the two, so a condition on them is polled, not read once."""
    async with server.client() as client:
        response = await poll(
            lambda: client.get(
                f"/api/workspaces/{workspace_id}/stats", headers=auth(workspace_id, key)
            ),
            lambda r: r.status_code == 200 and until(r.json()),
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def accounts_for(outcomes: list[Answer]) -> Callable[[dict[str, Any]], bool]:
    accepted = sum(1 for o in outcomes if o.status == 200)
    return lambda stats: bool(stats["accepted_events"] == accepted)


def timed_terminate(server: TrackdProcess) -> tuple[int, float]:
    started = time.monotonic()
    returncode = server.terminate()
    return returncode, time.monotonic() - started


@pytest.mark.parametrize("workers", [1, 2])
async def test_repeated_sigterm_under_load_drains_keeps_every_200_once_and_the_progress(
    launcher: Launcher, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKD_GRACEFUL_TIMEOUT_SECONDS", str(GRACEFUL_SECONDS))
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    created = cli_json(launcher.data_dir, "workspace", "create", "--rate-limit", "100000000")
    workspace_id, key = created["workspace_id"], created["api_key"]
    outcomes: list[Answer] = []
    exits: list[tuple[int, float]] = []
    seen: list[tuple[dict[str, Any], int, dict[str, Any]]] = []  # at start, 200s so far, at stop
    for cycle in range(CYCLES):
        server = launcher.start(workers=workers)
        at_start = await stats(server, workspace_id, key, accounts_for(outcomes))
        traffic = Load(
            server.url, workspace_id, key, clients=CLIENTS, tag=f"t{cycle}", wrong_key_every=5
        )
        async with anyio.create_task_group() as group:
            traffic.start(group)
            await traffic.wait_for_accepted(rng.randrange(100, 400))
            before_stop = await stats(server, workspace_id, key)
            await anyio.sleep(rng.uniform(0, 0.3))
            exits.append(await anyio.to_thread.run_sync(timed_terminate, server))
            traffic.stop()
        seen.append((at_start, sum(1 for o in outcomes if o.status == 200), before_stop))
        outcomes += traffic.answers

    # the last start: everything the clients were told is accounted for, and gets processed
    server = launcher.start(workers=workers)
    at_start = await stats(server, workspace_id, key, accounts_for(outcomes))
    seen.append((at_start, sum(1 for o in outcomes if o.status == 200), {}))
    final = await stats(server, workspace_id, key, lambda s: s["lag_events"] == 0)
    exits.append(await anyio.to_thread.run_sync(timed_terminate, server))

    context = f"random seed {seed}; stderr:\n{server.stderr()}"
    assert [code for code, _ in exits] == [0] * (CYCLES + 1), context
    assert [seconds < GRACEFUL_SECONDS for _, seconds in exits] == [True] * (CYCLES + 1), exits
    answered = [o for o in outcomes if o.status is not None]
    assert [(o.status, o.body) for o in answered] == [expected_response(o) for o in answered]
    assert sorted({(o.valid, o.status) for o in answered}) == [(False, 401), (True, 200)]
    for cycle, (start, accepted, _) in enumerate(seen):
        processed_or_waiting = start["processed_events"] + start["lag_events"]
        assert (start["accepted_events"], processed_or_waiting, start["dropped_events"]) == (
            accepted,
            accepted,
            0,
        ), (cycle, start, context)
        if cycle:  # what was processed before the previous SIGTERM is still processed
            assert start["processed_events"] >= seen[cycle - 1][2]["processed_events"], cycle
    accepted = sum(1 for o in outcomes if o.status == 200)
    statuses = Counter(o.status for o in outcomes)
    unanswered_wrong_keys = sum(1 for o in outcomes if not o.valid and o.status is None)
    assert {k: v for k, v in final.items() if k != "rejected_requests"} == {
        "accepted_events": accepted,
        "processed_events": accepted,
        "dropped_events": 0,
        "lag_events": 0,
        "lag_seconds": 0.0,
    }, context
    # every 401 counted, through the drains (a request cut by the drain may be counted too)
    assert statuses[401] <= final["rejected_requests"] <= statuses[401] + unanswered_wrong_keys
    envelopes = await queued(launcher.data_dir)
    assert broken_promises(outcomes, envelopes) == {
        "accepted but not queued exactly once": [],
        "rejected but queued": [],
        "queued twice": [],
        "queued but never sent": [],
    }, context
    report(
        f"sigterm_under_load[workers={workers}]",
        outcomes,
        envelopes,
        cycles=CYCLES,
        exit_seconds=[round(seconds, 2) for _, seconds in exits],
        processed_at_each_start=[start["processed_events"] for start, _, _ in seen],
    )
