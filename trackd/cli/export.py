"""`trackd events export`: events streamed out of the store page by page.

Memory stays constant whatever the number of events: one page (`PAGE` events) is held at a time
and written before the next is read. NDJSON comes from the store already encoded
(`EventStore.event_lines`: the same bytes as encoding the read API's view of each event, without
building it); CSV and Parquet are built from that view, attributes as JSON text.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from collections.abc import AsyncIterator, Callable
from typing import IO, Any

import msgspec

from trackd.errors import ConfigError, MissingDriver
from trackd.store.base import EventQuery, EventStore

PAGE = 2000
COLUMNS = (
    "event_id", "request_id", "customer_id", "action", "attributes", "platform", "platform_raw",
    "app_version", "user_time", "current_time", "user_timezone_offset", "received_at",
    "client_ip", "device_id", "project_code", "moe_os_type",
)  # fmt: skip
_encoder = msgspec.json.Encoder()
_encode = _encoder.encode


async def pages(
    store: EventStore, workspace_id: str, since: int | None, until: int | None
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every matching event, newest first, one page at a time; the next page is read while
    the caller writes this one (the store reads on its own thread)."""

    def read(cursor: int | None) -> asyncio.Future[tuple[list[dict[str, Any]], int | None]]:
        query = EventQuery(
            workspace_id=workspace_id, since=since, until=until, limit=PAGE, before_seq=cursor
        )
        return asyncio.ensure_future(store.events(query))

    pending = read(None)
    try:
        while True:
            events, cursor = await pending
            if cursor is not None:
                pending = read(cursor)
            if events:
                yield events
            if cursor is None:
                return
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending


def _flat(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "attributes": _encode(event["attributes"]).decode()}


async def export(
    store: EventStore,
    workspace_id: str,
    out: IO[bytes],
    fmt: str = "ndjson",
    since: int | None = None,
    until: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the workspace's events to `out`; returns how many were written (`progress` is
    told the count after each page)."""
    writers: dict[str, Callable[[IO[bytes]], _Writer]] = {"csv": _CSV, "parquet": _Parquet}
    if fmt == "ndjson":
        return await _ndjson(store, workspace_id, out, since, until, progress)
    if fmt not in writers:
        raise ConfigError(f"unknown export format {fmt!r}: use ndjson, csv or parquet")
    writer = writers[fmt](out)
    count = 0
    async for page in pages(store, workspace_id, since, until):
        writer.write(page)
        count += len(page)
        if progress is not None:
            progress(count)
    writer.close()
    return count


async def _ndjson(
    store: EventStore,
    workspace_id: str,
    out: IO[bytes],
    since: int | None,
    until: int | None,
    progress: Callable[[int], None] | None,
) -> int:
    query = EventQuery(workspace_id=workspace_id, since=since, until=until, limit=PAGE)
    count = 0
    async for lines in store.event_lines(query):
        out.write(lines)
        count += lines.count(b"\n")  # one an event: JSON text holds no raw newline
        if progress is not None:
            progress(count)
    out.flush()
    return count


class _Writer:
    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def write(self, page: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.out.flush()


class _CSV(_Writer):
    def __init__(self, out: IO[bytes]) -> None:
        super().__init__(out)
        self.text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        self.csv = csv.DictWriter(self.text, fieldnames=COLUMNS, extrasaction="ignore")
        self.csv.writeheader()

    def write(self, page: list[dict[str, Any]]) -> None:
        self.csv.writerows(_flat(event) for event in page)

    def close(self) -> None:
        self.text.flush()
        self.text.detach()
        super().close()


class _Parquet(_Writer):
    def __init__(self, out: IO[bytes]) -> None:
        super().__init__(out)
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise MissingDriver("parquet", "pyarrow", "parquet") from exc
        self.pa = pa
        types = {"user_timezone_offset": pa.int64()}
        self.schema = pa.schema([(c, types.get(c, pa.string())) for c in COLUMNS])
        self.writer = pq.ParquetWriter(out, self.schema)

    def write(self, page: list[dict[str, Any]]) -> None:
        rows = [_flat(event) for event in page]
        table = self.pa.Table.from_pylist(rows, schema=self.schema)
        self.writer.write_table(table)

    def close(self) -> None:
        self.writer.close()
        super().close()
