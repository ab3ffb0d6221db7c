"""`trackd events export` as a user runs it, on stores far larger than one page.

The stores are built fast: envelopes of 100 actions go through the processor's own `plan` and
`apply` into the real `SQLiteEventStore`, straight into ``<data-dir>/trackd.db`` (the file `serve`
uses), with the workspace created by the CLI on the same data dir. The export is the real
command in its own process; its peak resident memory comes from the kernel's accounting of
that process (``wait4``'s ``ru_maxrss``, what ``/usr/bin/time -v`` reports).
"""

from __future__ import annotations

import asyncio
import csv
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pyarrow.parquet as pq
import pytest

from tests.e2e.helpers import cli
from trackd.models import Action, Envelope
from trackd.processor.apply import apply
from trackd.processor.plan import plan
from trackd.store.sqlite_events import SQLiteEventStore

pytestmark = pytest.mark.e2e

BASE_MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z
PER_REQUEST = 100
PLANS_PER_BATCH = 100
PEAK_RSS_LIMIT = 200 * 1024 * 1024
COLUMNS = [
    "event_id", "request_id", "customer_id", "action", "attributes", "platform", "platform_raw",
    "app_version", "user_time", "current_time", "user_timezone_offset", "received_at",
    "client_ip", "device_id", "project_code", "moe_os_type",
]  # fmt: skip


def iso(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms // 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{epoch_ms % 1000:03d}Z"


def lean(n: int) -> dict[str, Any]:
    return {"n": n, "sku": f"sku-{n % 100}"}


def quoted(n: int) -> dict[str, Any]:
    """Values CSV must quote: commas, quotes, a newline, non-ASCII; and a nested object."""
    return {"n": n, "note": 'a, "quoted"\nline café', "cart": {"items": [n % 3, 7]}}


def build_store(
    data_dir: Path, workspace_id: str, count: int, attributes: Callable[[int], dict[str, Any]]
) -> None:
    """`count` events, as `count / 100` processed requests, written into the data dir's store.
    Event n is action n % 100 of request n // 100, at BASE_MS + n seconds."""

    async def write() -> None:
        store = SQLiteEventStore(data_dir / "trackd.db")
        await store.open()
        try:
            batch = []
            for r in range(count // PER_REQUEST):
                batch.append(plan(envelope(workspace_id, r, attributes)))
                if len(batch) == PLANS_PER_BATCH:
                    await apply(store, batch)
                    batch = []
            await apply(store, batch)
        finally:
            await store.aclose()

    asyncio.run(write())


def envelope(workspace_id: str, r: int, attributes: Callable[[int], dict[str, Any]]) -> Envelope:
    actions = []
    for i in range(PER_REQUEST):
        n = r * PER_REQUEST + i
        actions.append(
            Action(
                index=i,
                action="Viewed" if i % 2 else "Added",
                attributes=attributes(n),
                platform="web",
                app_version="1.0",
                current_time=BASE_MS + n * 1000,
                user_time=BASE_MS + n * 1000 + 19_800_000,
                user_timezone_offset=19800,
            )
        )
    return Envelope(
        request_id=f"r{r:07d}",
        workspace_id=workspace_id,
        received_at=BASE_MS + r,
        customer_id=f"u{r % 1000}",
        device_id=f"d{r % 1000}",
        client_ip="10.0.0.1",
        actions=actions,
        event_count=PER_REQUEST,
    )


def expected_event(n: int, attributes: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    """Event n as the export writes it in NDJSON."""
    r = n // PER_REQUEST
    return {
        "event_id": f"r{r:07d}-{n % PER_REQUEST}",
        "request_id": f"r{r:07d}",
        "action": "Viewed" if n % 2 else "Added",
        "attributes": attributes(n),
        "platform": "web",
        "platform_raw": None,
        "app_version": "1.0",
        "user_time": iso(BASE_MS + n * 1000 + 19_800_000),
        "current_time": iso(BASE_MS + n * 1000),
        "user_timezone_offset": 19800,
        "received_at": iso(BASE_MS + r),
        "client_ip": "10.0.0.1",
        "device_id": f"d{r % 1000}",
        "project_code": None,
        "moe_os_type": None,
        "customer_id": f"u{r % 1000}",
    }


def stored_count(data_dir: Path, workspace_id: str) -> int:
    with sqlite3.connect(data_dir / "trackd.db") as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM events WHERE workspace = ?", (workspace_id,)
        ).fetchone()
    return int(count)


class Run:
    def __init__(self, returncode: int, stderr: str, peak_rss: int) -> None:
        self.returncode = returncode
        self.stderr = stderr
        self.peak_rss = peak_rss


def export(data_dir: Path, workspace_id: str, out: Path, *args: str) -> Run:
    """``python -m trackd events export WS --data-dir D --out F ARGS`` in its own process, with
    its exit code, its stderr and its peak resident set size in bytes.

    The peak is the process's own high-water mark (``VmHWM``), sampled until it exits: it is
    monotonic, so sampling misses at most the last few milliseconds. (``wait4``'s
    ``ru_maxrss`` would be exact but counts the parent's memory too: the child shares the
    test process's address space until it execs.)"""
    command = [sys.executable, "-m", "trackd", "events", "export", workspace_id]
    command += ["--data-dir", str(data_dir), "--out", str(out), *args]
    errors = out.with_suffix(".stderr")
    peak = 0
    with errors.open("wb") as stderr:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)
        while proc.poll() is None:
            peak = max(peak, high_water_mark(proc.pid))
            time.sleep(0.005)  # a sampling period, not a wait for anything
    return Run(proc.returncode, errors.read_text(), peak)


def high_water_mark(pid: int) -> int:
    """Peak resident set size of a live process in bytes; 0 once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # kB
    return 0  # a zombie: no memory left


class EventId(msgspec.Struct):
    event_id: str


@pytest.mark.timeout(300)  # ~40 s here (15 s to build, 25 s to export); room for a slow CI box
def test_a_million_events_export_to_ndjson_in_bounded_memory(tmp_path: Path) -> None:
    data_dir, out, count = tmp_path / "data", tmp_path / "events.ndjson", 1_000_000
    cli(data_dir, "workspace", "create", "--id", "BIG")
    build_store(data_dir, "BIG", count, lean)
    try:
        run = export(data_dir, "BIG", out)
        assert (run.returncode, run.stderr) == (0, f"exported {count} events\n")
        assert stored_count(data_dir, "BIG") == count
        decode = msgspec.json.Decoder(EventId).decode
        ids: set[str] = set()
        lines = 0
        with out.open("rb") as f:
            first = f.readline()
            f.seek(0)
            for line in f:
                ids.add(decode(line).event_id)
                lines += 1
            last = line
        assert lines == count
        assert len(ids) == count  # every event once
        assert msgspec.json.decode(first) == expected_event(count - 1, lean)  # newest first
        assert msgspec.json.decode(last) == expected_event(0, lean)
        assert run.peak_rss < PEAK_RSS_LIMIT, f"peak RSS {run.peak_rss / 2**20:.0f} MiB"
    finally:  # several hundred MB each: do not leave them to pytest's kept tmp dirs
        out.unlink(missing_ok=True)
        for db in data_dir.glob("trackd.db*"):
            db.unlink()


MID = 20_000


@pytest.fixture(scope="module")
def mid_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 20,000-event store whose attributes need quoting."""
    data_dir = tmp_path_factory.mktemp("export") / "data"
    cli(data_dir, "workspace", "create", "--id", "MID")
    build_store(data_dir, "MID", MID, quoted)
    yield data_dir


def as_csv_row(event: dict[str, Any]) -> dict[str, str]:
    """A row as the CSV export writes it: attributes as JSON text, a missing value empty."""
    row = {**event, "attributes": msgspec.json.encode(event["attributes"]).decode()}
    return {c: "" if row[c] is None else str(row[c]) for c in COLUMNS}


def test_a_csv_export_has_a_header_and_every_event_as_one_row(
    mid_store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "events.csv"
    run = export(mid_store, "MID", out, "--format", "csv")
    assert (run.returncode, run.stderr) == (0, f"exported {MID} events\n")
    with out.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == COLUMNS
    assert len(rows) == MID == stored_count(mid_store, "MID")
    assert len({row["event_id"] for row in rows}) == MID
    by_id = {row["event_id"]: row for row in rows}
    for n in (0, 12_345, MID - 1):
        event = expected_event(n, quoted)
        assert by_id[event["event_id"]] == as_csv_row(event)
    assert msgspec.json.decode(rows[0]["attributes"]) == quoted(MID - 1)  # newest first


def test_a_parquet_export_has_every_event_as_one_typed_row(mid_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "events.parquet"
    run = export(mid_store, "MID", out, "--format", "parquet")
    assert (run.returncode, run.stderr) == (0, f"exported {MID} events\n")
    table = pq.read_table(out)
    assert table.column_names == COLUMNS
    assert table.num_rows == MID == stored_count(mid_store, "MID")
    assert str(table.schema.field("user_timezone_offset").type) == "int64"
    rows = table.to_pylist()
    assert len({row["event_id"] for row in rows}) == MID
    by_id = {row["event_id"]: row for row in rows}
    for n in (0, 12_345, MID - 1):
        event = expected_event(n, quoted)
        expected = {**event, "attributes": msgspec.json.encode(event["attributes"]).decode()}
        assert by_id[event["event_id"]] == {c: expected[c] for c in COLUMNS}
