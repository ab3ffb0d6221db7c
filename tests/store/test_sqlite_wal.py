"""The event store's WAL stays bounded under a stream of batches (trackd/store/sqlite_wal.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tests.factories import envelope
from trackd.processor.apply import apply
from trackd.processor.plan import plan
from trackd.store import open_event_store, sqlite_wal
from trackd.store.sqlite_wal import wal_bytes


def test_wal_bytes_counts_the_frames_since_the_wal_last_started_again(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    wal = Path(f"{path}-wal")
    assert wal_bytes(wal) == 0  # none yet
    conn.execute("CREATE TABLE t (x BLOB)")
    frame = 24 + conn.execute("PRAGMA page_size").fetchone()[0]
    for _ in range(20):
        conn.execute("INSERT INTO t VALUES (randomblob(3000))")
    full = wal_bytes(wal)
    assert full == wal.stat().st_size - 32 and full % frame == 0 and full > 20 * frame
    busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert (busy, frames * frame, copied) == (0, full, frames)
    conn.execute("INSERT INTO t VALUES (randomblob(10))")  # starts the WAL again
    assert wal.stat().st_size == full + 32  # the file keeps its size
    assert wal_bytes(wal) == frame  # the new frame: the one page written
    assert wal_bytes(tmp_path / "missing-wal") == 0
    conn.close()


def test_a_stream_of_batches_keeps_the_wal_near_its_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bound = 256 << 10
    monkeypatch.setattr(sqlite_wal, "WAL_CHECKPOINT_BYTES", bound)
    path = tmp_path / "trackd.db"
    wal = Path(f"{path}-wal")
    sizes = []

    async def run() -> int:
        store = open_event_store(f"sqlite:///{path}")
        await store.open()
        try:
            for batch in range(60):
                plans = [plan(envelope(f"r{batch}-{n}", note="x" * 500, n=n)) for n in range(50)]
                await apply(store, plans)
                sizes.append(wal.stat().st_size)
            return (await store.counts("WS1"))["processed_events"]
        finally:
            await store.aclose()

    assert asyncio.run(run()) == 3_000
    # Started again after each checkpoint: the bound and about a batch, not every batch's
    # frames (a checkpoint that never let it start again left it as large as the database).
    assert max(sizes) < 2 * bound
    assert path.stat().st_size > 4 * bound
