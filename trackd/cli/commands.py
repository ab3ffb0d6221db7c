"""The CLI's longer-running commands: export, tail and send (the parser is `trackd.cli`'s)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx

from trackd import admin, services
from trackd.cli import progress as shown
from trackd.cli.export import export
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
        # all of them when the range is open: the stats know how many (else unknown, no ETA)
        total = None
        if since is None and until is None:
            total = (await store.counts(workspace_id)).get("processed_events", 0)
        with contextlib.ExitStack() as stack:
            target: IO[bytes] = (
                stack.enter_context(Path(out).open("wb")) if out else sys.stdout.buffer
            )
            bar = stack.enter_context(shown.bar("export", total))
            count = await export(
                store,
                workspace_id,
                target,
                fmt,
                _time(since, "since"),
                _time(until, "until"),
                progress=None if bar is None else lambda n: bar.update(n, events=n),
            )
    finally:
        await store.aclose()
    print(f"exported {count} events", file=sys.stderr)
    return 0


async def tail(settings: Settings, args: argparse.Namespace) -> int:
    """`trackd tail`: the server's live stream of the workspace (`trackd.cli.tail`)."""
    from trackd.cli.tail import tail as follow

    auth: httpx.Auth
    if args.key:
        auth = httpx.BasicAuth(args.workspace, args.key)
    elif settings.admin_token:
        token = settings.admin_token

        def bearer(request: httpx.Request) -> httpx.Request:
            request.headers["Authorization"] = f"Bearer {token}"
            return request

        auth = httpx.FunctionAuth(bearer)
    else:
        raise ConfigError("tail needs --key (the workspace's key) or an admin token")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    params = {
        name: value
        for name, value in (("customer_id", args.customer_id), ("action", args.action))
        if value is not None
    }
    return await follow(args.url, args.workspace, auth, as_json=args.json, params=params, stop=stop)


async def send_file(path: str, url: str, workspace_id: str, key: str, concurrency: int) -> int:
    read = [0]  # bytes of the file read so far: the bar's position (the file's size its total)

    def counted(lines: IO[bytes]) -> Iterator[bytes]:
        for line in lines:
            read[0] += len(line)
            yield line

    with contextlib.ExitStack() as stack:
        source = sys.stdin.buffer if path == "-" else stack.enter_context(Path(path).open("rb"))
        total = None if path == "-" else os.fstat(source.fileno()).st_size
        bar = stack.enter_context(shown.bar("send", total))

        def progress(report: SendReport) -> None:
            if bar is not None:
                failed = f"{report.failed_requests} failed" if report.failed_requests else ""
                bar.update(read[0], events=report.events, note=failed)
                return
            print(
                f"\rsent {report.events} events in {report.requests} requests"
                f" ({report.failed_requests} failed)",
                end="",
                file=sys.stderr,
                flush=True,
            )

        report = await send(
            counted(source), url, workspace_id, key, concurrency=concurrency, progress=progress
        )
        if bar is not None:
            bar.update(read[0], events=report.events)
    if bar is None:
        print(file=sys.stderr)
    else:
        print(
            f"sent {report.events} events in {report.requests} requests"
            f" ({report.failed_requests} failed)",
            file=sys.stderr,
        )
    for failure in report.failures[:20]:
        print(f"failed: {failure}", file=sys.stderr)
    return 0 if report.failed_requests == 0 else 1
