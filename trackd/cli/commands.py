"""The CLI's longer-running commands: export, tail and send (the parser is `trackd.cli`'s)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import IO

import msgspec

from trackd import admin, services
from trackd.cli.export import export, follow
from trackd.cli.sender import SendReport, send
from trackd.errors import ConfigError
from trackd.settings import Settings
from trackd.wire.times import parse_time


def _time(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    parsed = parse_time(value)
    if parsed is None:
        raise ConfigError(f"--{name} is expected to be an epoch timestamp or an ISO 8601 date-time")
    return parsed


async def _check_workspace(settings: Settings, workspace_id: str) -> None:
    store = services.workspace_store(settings)
    await store.open()
    try:
        await admin.require(store, workspace_id)
    finally:
        await store.aclose()


async def export_events(
    settings: Settings,
    workspace_id: str,
    fmt: str,
    out: str | None,
    since: str | None,
    until: str | None,
) -> int:
    await _check_workspace(settings, workspace_id)
    store = services.event_store(settings)
    await store.open()
    try:
        with contextlib.ExitStack() as stack:
            target: IO[bytes] = (
                stack.enter_context(Path(out).open("wb")) if out else sys.stdout.buffer
            )
            count = await export(
                store, workspace_id, target, fmt, _time(since, "since"), _time(until, "until")
            )
    finally:
        await store.aclose()
    print(f"exported {count} events", file=sys.stderr)
    return 0


async def tail(settings: Settings, workspace_id: str) -> int:
    await _check_workspace(settings, workspace_id)
    store = services.event_store(settings)
    await store.open()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    encode = msgspec.json.Encoder().encode

    def emit(event: dict[str, object]) -> None:
        sys.stdout.buffer.write(encode(event) + b"\n")
        sys.stdout.flush()

    try:
        await follow(store, workspace_id, emit, stop)
    finally:
        await store.aclose()
    return 0


async def send_file(path: str, url: str, workspace_id: str, key: str, concurrency: int) -> int:
    def progress(report: SendReport) -> None:
        print(
            f"\rsent {report.events} events in {report.requests} requests"
            f" ({report.failed_requests} failed)",
            end="",
            file=sys.stderr,
            flush=True,
        )

    with contextlib.ExitStack() as stack:
        source = sys.stdin.buffer if path == "-" else stack.enter_context(Path(path).open("rb"))
        report = await send(
            source, url, workspace_id, key, concurrency=concurrency, progress=progress
        )
    print(file=sys.stderr)
    for failure in report.failures[:20]:
        print(f"failed: {failure}", file=sys.stderr)
    return 0 if report.failed_requests == 0 else 1
