"""The `trackd` command line: thin; it builds Settings once and calls into the package.

Everything on the command line's side lives in this package: the parser and `main` (here),
`workspaces` (the workspace, key and project actions), `commands` (export, tail and send),
`export` (events streamed out of a store) and `sender` (an NDJSON file posted to a server).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from typing import get_args

from trackd.cli import workspaces
from trackd.errors import ConfigError, NotFound, TrackdError
from trackd.settings import LogLevel, Settings

_SUMMARY = (__doc__ or "").partition("\n")[0]
#: Settings' flags are strings here: `Settings.load` converts and checks them with the env vars.
_LOG_LEVELS = "{" + ",".join(get_args(LogLevel)) + "}"


#: Delete User (data-api.md §4).
_DELETE_BUFFER_HELP = "seconds from Delete User to hard delete (default 86400, 0: at once)"


def _backend_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="where embedded data lives (default ./trackd-data)")
    parser.add_argument("--queue", help="queue URL (env TRACKD_QUEUE)")
    parser.add_argument("--store", help="store URL (env TRACKD_STORE)")
    parser.add_argument("--limiter", help="rate limiter URL (env TRACKD_LIMITER)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trackd", description=_SUMMARY)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP edge (and, embedded, the processor)")
    serve.add_argument("--host")
    serve.add_argument("--port", help="TCP port, 0 for any free one (default 8080)")
    serve.add_argument("--workers", help="HTTP worker processes (default 1)")
    serve.add_argument("--log-level", metavar=_LOG_LEVELS)
    _backend_flags(serve)

    workspace = commands.add_parser("workspace", help="create and manage workspaces")
    ws_commands = workspace.add_subparsers(dest="action", required=True)
    create = ws_commands.add_parser("create", help="create a workspace and print its key")
    create.add_argument("--id", dest="workspace_id")
    create.add_argument("--name")
    create.add_argument("--rate-limit", type=int, help="events per minute (default 30000)")
    create.add_argument("--identity-resolution", help="identifiers, comma-separated")
    create.add_argument("--portfolio", action="store_true")
    create.add_argument("--strict", action="store_true")
    create.add_argument("--delete-buffer", type=int, help=_DELETE_BUFFER_HELP)
    create.add_argument("--json", action="store_true")
    _backend_flags(create)
    listing = ws_commands.add_parser("list", help="list workspaces")
    listing.add_argument("--json", action="store_true")
    _backend_flags(listing)
    for name in ("show", "suspend", "resume"):
        sub = ws_commands.add_parser(name, help=f"{name} a workspace")
        sub.add_argument("workspace")
        sub.add_argument("--json", action="store_true")
        _backend_flags(sub)

    # -- Delete User (data-api.md §4) --
    update = ws_commands.add_parser("update", help="change a workspace's settings")
    update.add_argument("workspace")
    update.add_argument("--delete-buffer", type=int, help=_DELETE_BUFFER_HELP)
    update.add_argument("--json", action="store_true")
    _backend_flags(update)

    key = commands.add_parser("key", help="manage a workspace's Data API key")
    key_commands = key.add_subparsers(dest="action", required=True)
    for name in ("regenerate", "revoke"):
        sub = key_commands.add_parser(name, help=f"{name} the key (the old one stops at once)")
        sub.add_argument("workspace")
        sub.add_argument("--json", action="store_true")
        _backend_flags(sub)

    worker = commands.add_parser("worker", help="run the processor alone (scale-out)")
    worker.add_argument("--log-level", metavar=_LOG_LEVELS)
    _backend_flags(worker)

    events = commands.add_parser("events", help="read processed events")
    event_commands = events.add_subparsers(dest="action", required=True)
    export = event_commands.add_parser("export", help="stream a workspace's events to a file")
    export.add_argument("workspace")
    export.add_argument("--since", help="epoch or ISO 8601 (event time, inclusive)")
    export.add_argument("--until", help="epoch or ISO 8601 (event time, exclusive)")
    export.add_argument("--format", choices=["ndjson", "csv", "parquet"], default="ndjson")
    export.add_argument("--out", help="file to write (default: standard output)")
    _backend_flags(export)

    tail = commands.add_parser(
        "tail", help="follow a workspace's events as they are processed (a server's live stream)"
    )
    tail.add_argument("workspace")
    tail.add_argument("--url", default="http://127.0.0.1:8080", help="the server")
    tail.add_argument("--key", help="the workspace's Data API key (else the admin token)")
    tail.add_argument("--admin-token", help="the server's admin token (env TRACKD_ADMIN_TOKEN)")
    tail.add_argument("--customer-id", help="only this user's events")
    tail.add_argument("--action", help="only events of this name")
    tail.add_argument("--json", action="store_true", help="one JSON object per line (NDJSON)")
    _backend_flags(tail)

    send = commands.add_parser("send", help="send events from an NDJSON file to a server")
    send.add_argument("file", help="NDJSON file ('-' for standard input)")
    send.add_argument("--url", default="http://127.0.0.1:8080")
    send.add_argument("--workspace", required=True)
    send.add_argument("--key", required=True, help="the workspace's Data API key")
    send.add_argument("--concurrency", type=int, default=4)

    project = commands.add_parser("project", help="manage Portfolio projects")
    project_commands = project.add_subparsers(dest="action", required=True)
    sub = project_commands.add_parser("create", help="add a project code to a workspace")
    sub.add_argument("workspace")
    sub.add_argument("code")
    sub.add_argument("--json", action="store_true")
    _backend_flags(sub)

    migrate = commands.add_parser("migrate", help="create or upgrade the store's tables")
    migrate.add_argument("--store", help="store URL (env TRACKD_STORE)")
    migrate.add_argument("--data-dir", help="where embedded data lives (default ./trackd-data)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.load(vars(args))
    except ConfigError as exc:  # one line, as argparse words its own errors
        print(f"trackd: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # no line per request sent
    try:
        if args.command in _RUNNERS:
            return _RUNNERS[args.command](args, settings)
        return asyncio.run(workspaces.run(args, settings))
    except KeyboardInterrupt:
        return 130
    except NotFound as exc:
        print(f"trackd: {exc}", file=sys.stderr)
        return 1
    except (ConfigError, TrackdError) as exc:
        print(f"trackd: {exc}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from trackd.server import serve

    return serve(settings)


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from trackd.server import work

    return work(settings)


def _events(args: argparse.Namespace, settings: Settings) -> int:
    from trackd.cli.commands import export_events

    return asyncio.run(
        export_events(settings, args.workspace, args.format, args.out, args.since, args.until)
    )


def _tail(args: argparse.Namespace, settings: Settings) -> int:
    from trackd.cli.commands import tail

    return asyncio.run(tail(settings, args))


def _send(args: argparse.Namespace, settings: Settings) -> int:
    from trackd.cli.commands import send_file

    return asyncio.run(send_file(args.file, args.url, args.workspace, args.key, args.concurrency))


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from trackd.store import migrate

    applied = asyncio.run(migrate(settings.store_url()))
    for name in applied:
        print(f"applied {name}")
    if not applied:
        print("the store is up to date")
    return 0


_RUNNERS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "serve": _serve,
    "worker": _worker,
    "events": _events,
    "tail": _tail,
    "send": _send,
    "migrate": _migrate,
}
