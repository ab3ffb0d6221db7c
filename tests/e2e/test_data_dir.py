"""The data dir of the real `trackd serve`: only its owner may read it (issue 11, item 5).

`serve` makes the data dir and every embedded backend's files in it; after an event is accepted
and processed, the dir is `0700` and each file in it (databases, their `-wal` and `-shm`, the
processor lease) `0600`: events, users and key hashes are nobody else's to read.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.e2e.helpers import ServerWorkspace, poll
from tests.e2e.server import Launcher
from tests.factories import SEED_BODY

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]


def modes(data_dir: Path) -> dict[str, int]:
    return {
        str(path.relative_to(data_dir)): stat.S_IMODE(path.stat().st_mode)
        for path in data_dir.rglob("*")
    }


async def test_the_data_dir_is_0700_and_every_file_in_it_0600(trackd: Launcher) -> None:
    server = trackd.start()
    async with server.client() as client:
        ws = await ServerWorkspace.create(server, client)
        sent = await client.post(f"/v1/event/{ws.id}", json=SEED_BODY, headers=ws.headers())
        assert sent.status_code == 200, sent.text
        stats = await poll(
            lambda: ws.get("stats"),
            lambda r: r.json()["accepted_events"] == 1 and r.json()["lag_events"] == 0,
        )
        assert (stats.json()["accepted_events"], stats.json()["lag_events"]) == (1, 0)
        assert stat.S_IMODE(server.data_dir.stat().st_mode) == 0o700
        found = modes(server.data_dir)
    assert {"queue.db", "trackd.db"} <= set(found), found
    assert found == dict.fromkeys(found, 0o600)
