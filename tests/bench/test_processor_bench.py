"""`bench/processor.py` on a few hundred events: it fills the queue, `trackd worker` drains it,
and the store holds exactly what was put. No timing is asserted: the figures belong in the
benchmark's own output. With PostgreSQL and NATS here (required under CI), the same for a
JetStream stream drained into PostgreSQL (`--queue nats://... --store postgresql://...`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.contracts import postgres_db
from tests.services import NATS_URL, nats_available, needs_service

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 250


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("bench-processor")
    command = [sys.executable, "bench/processor.py", "--events", str(EVENTS)]
    command += ["--actions", "1", "--actions", "100", "--json", str(out / "results.json")]
    command += ["--keep", str(out / "data"), "--timeout", "60"]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=100)
    return proc, out


def test_the_benchmark_exits_0_and_reports_both_envelope_sizes(
    run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    proc, out = run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(":")[0].strip() for line in lines] == [
        "1-event envelopes",
        "100-event envelopes",
    ]
    assert all(
        line.endswith(f"store holds {EVENTS} events, counted {EVENTS}: OK") for line in lines
    )
    results = json.loads((out / "results.json").read_text())["results"]
    assert [(r["actions"], r["envelopes"], r["stored_events"], r["ok"]) for r in results] == [
        (1, EVENTS, EVENTS, True),
        (100, 3, EVENTS, True),
    ]


@pytest.mark.parametrize("actions", [1, 100])
def test_the_store_holds_exactly_the_events_put_and_the_queue_is_drained(
    run: tuple[subprocess.CompletedProcess[str], Path], actions: int
) -> None:
    data = run[1] / "data" / f"actions-{actions}"
    with sqlite3.connect(data / "trackd.db") as store:
        ids = [r[0] for r in store.execute("SELECT event_id FROM events")]
        counted = store.execute(
            "SELECT value FROM counters WHERE workspace = 'BENCH' AND name = 'processed_events'"
        ).fetchone()
    assert len(ids) == len(set(ids)) == EVENTS
    assert counted == (EVENTS,)
    with sqlite3.connect(data / "queue.db") as queue:
        (last,) = queue.execute("SELECT seq FROM sqlite_sequence WHERE name = 'log'").fetchone()
        (position,) = queue.execute(
            "SELECT position FROM consumers WHERE name = 'processor'"
        ).fetchone()
    assert position == last == (EVENTS if actions == 1 else 3)


# -- the scale-out row: a JetStream stream drained by `trackd worker` into PostgreSQL --------


@pytest.fixture(scope="module")
def scale_out(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]]:
    out = tmp_path_factory.mktemp("bench-processor-pg")
    command = [sys.executable, "bench/processor.py", "--events", str(EVENTS)]
    command += ["--actions", "1", "--actions", "100", "--json", str(out / "results.json")]
    command += ["--keep", str(out / "data"), "--timeout", "60"]
    command += ["--queue", NATS_URL, "--store", postgres_db.SERVER]  # schemas of its own
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=100)
    results = []
    if (out / "results.json").exists():
        results = json.loads((out / "results.json").read_text())["results"]
    yield proc, results
    asyncio.run(_delete_streams([r["stream"] for r in results]))
    asyncio.run(_drop_schemas([r["schema"] for r in results]))


async def _drop_schemas(schemas: list[str]) -> None:
    """The schemas `--keep` left in the server's database (names made by the bench)."""
    import asyncpg

    conn = await asyncpg.connect(postgres_db.SERVER)
    try:
        for schema in schemas:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def _delete_streams(streams: list[str]) -> None:
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(NATS_URL)
    try:
        for stream in streams:
            for name in (stream, f"KV_{stream}_idempotency"):
                with contextlib.suppress(NotFoundError):
                    await nc.jetstream().delete_stream(name)
    finally:
        await nc.close()


async def _in_postgres(schema: str) -> tuple[int, int, Any]:
    import asyncpg

    conn = await asyncpg.connect(postgres_db.SERVER, server_settings={"search_path": schema})
    try:
        ids = [r[0] for r in await conn.fetch("SELECT event_id FROM events")]
        counted = await conn.fetchval(
            "SELECT value FROM counters WHERE workspace = 'BENCH' AND name = 'processed_events'"
        )
        return len(ids), len(set(ids)), counted
    finally:
        await conn.close()


async def _in_jetstream(stream: str) -> tuple[int, int, int]:
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        js = nc.jetstream()
        last = (await js.stream_info(stream)).state.last_seq
        info = await js.consumer_info(stream, "processor")
        return int(last), int(info.ack_floor.stream_seq), int(info.num_pending)
    finally:
        await nc.close()


@needs_service("postgresql", postgres_db.available)
@needs_service("nats", nats_available)
def test_the_scale_out_benchmark_drains_jetstream_into_postgresql(
    scale_out: tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]],
) -> None:
    proc, results = scale_out
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(":")[0].strip() for line in lines] == [
        "1-event envelopes",
        "100-event envelopes",
    ]
    assert all("JetStream -> PostgreSQL" in line for line in lines), proc.stdout
    assert all(
        line.endswith(f"store holds {EVENTS} events, counted {EVENTS}: OK") for line in lines
    )
    assert [
        (r["queue"], r["store"], r["actions"], r["envelopes"], r["stored_events"], r["ok"])
        for r in results
    ] == [
        ("nats", "postgresql", 1, EVENTS, EVENTS, True),
        ("nats", "postgresql", 100, 3, EVENTS, True),
    ]
    for result in results:  # the schema and the stream, read here rather than by the bench
        assert asyncio.run(_in_postgres(result["schema"])) == (EVENTS, EVENTS, EVENTS)
        envelopes = result["envelopes"]
        assert asyncio.run(_in_jetstream(result["stream"])) == (envelopes, envelopes, 0)
