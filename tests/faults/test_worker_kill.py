"""`kill -9` of the embedded processor under load, repeated: `trackd serve` runs it as a
`trackd worker` child and starts it again; every acknowledged event is stored exactly once."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from tests.e2e.helpers import cli, cli_json
from tests.e2e.load import Load
from tests.e2e.procfs import group_members
from tests.e2e.server import Launcher

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

KILLS = 3


def _processor_child(server_pid: int) -> int | None:
    """The pid of the `trackd worker` child in the server's process group, if one runs."""
    for pid in group_members(server_pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"worker" in command and pid != server_pid:
            return pid
    return None


async def _next_child(server_pid: int, not_this: int | None) -> int:
    with anyio.fail_after(30):
        while True:
            pid = _processor_child(server_pid)
            if pid is not None and pid != not_this:
                return pid
            await anyio.sleep(0.05)


@pytest.fixture
def trackd(tmp_path: Path) -> Iterator[Launcher]:
    started = Launcher(tmp_path)
    try:
        yield started
    finally:
        started.close()


async def test_the_processor_killed_three_times_under_load_loses_and_doubles_nothing(
    trackd: Launcher,
) -> None:
    created = cli_json(trackd.data_dir, "workspace", "create", "--rate-limit", "100000000")
    workspace_id, key = created["workspace_id"], created["api_key"]
    server = trackd.start()
    traffic = Load(server.url, workspace_id, key, clients=8, tag="pk", wrong_key_every=0)
    killed: list[int] = []
    async with anyio.create_task_group() as group:
        traffic.start(group)
        for _ in range(KILLS):
            await traffic.wait_for_accepted(traffic.accepted() + 100)
            pid = await _next_child(server.pid, killed[-1] if killed else None)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        await traffic.wait_for_accepted(traffic.accepted() + 100)  # while it is restarted
        traffic.stop()
    # serve started a new processor after each kill, and it drains the backlog
    assert await _next_child(server.pid, killed[-1]) not in killed
    accepted = {o.request_id for o in traffic.answers if o.status == 200}
    assert len(accepted) >= (KILLS + 1) * 100
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=server.url, auth=(workspace_id, key)) as client:
        while True:
            stats = (await client.get(f"/api/workspaces/{workspace_id}/stats")).json()
            if stats["lag_events"] == 0 or time.monotonic() > deadline:
                break
            await anyio.sleep(0.1)
    assert stats["processed_events"] == len(accepted)
    assert stats["accepted_events"] == len(accepted)
    out = trackd.data_dir / "export.ndjson"
    cli(trackd.data_dir, "events", "export", workspace_id, "--out", str(out))
    lines = out.read_text().splitlines()
    stored = Counter(line.split('"request_id":"', 1)[1].split('"', 1)[0] for line in lines)
    assert set(stored) == accepted  # nothing lost, nothing that was not acknowledged
    assert set(stored.values()) == {1}  # nothing twice
    assert await anyio.to_thread.run_sync(server.terminate) == 0
