"""`trackd events export`: events streamed out of the store page by page.

Memory stays constant whatever the number of events: one page (`PAGE` events) is held at a time
and written before the next is read. Attributes are JSON text in CSV and Parquet.
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
_encode_lines = _encoder.encode_lines  # NDJSON: one line per event, each ending in "\n"


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
    writers: dict[str, Callable[[IO[bytes]], _Writer]] = {
        "ndjson": _NDJSON,
        "csv": _CSV,
        "parquet": _Parquet,
    }
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


class _Writer:
    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def write(self, page: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.out.flush()


class _NDJSON(_Writer):
    def write(self, page: list[dict[str, Any]]) -> None:
        self.out.write(_encode_lines(page))


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
