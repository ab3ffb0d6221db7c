"""`trackd workspace …`, `key …` and `project …`: each action is one call into `trackd.admin` on
the workspace store, and prints the workspace (or its new key) as ``k=v`` pairs or ``--json``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import Any

from trackd import admin, services
from trackd.models import Workspace
from trackd.settings import Settings
from trackd.store import WorkspaceStore


def _describe(workspace: Workspace) -> dict[str, Any]:
    return {
        "workspace_id": workspace.id,
        "name": workspace.name,
        "suspended": workspace.suspended,
        "has_key": workspace.key_hash is not None,
        "rate_limit": workspace.rate_limit,
        "portfolio": workspace.portfolio,
        "projects": list(workspace.projects),
        "strict": workspace.strict,
        "identity_resolution": list(workspace.identity_resolution),
        "delete_buffer": workspace.delete_buffer,  # Delete User (data-api.md §4)
    }


def _print(args: argparse.Namespace, data: dict[str, Any] | list[dict[str, Any]]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data))
        return
    if isinstance(data, list):  # `workspace list`: a table (nothing when there are none)
        _table(data)
        return
    rows = [data]
    for row in rows:
        print("  ".join(f"{k}={v}" for k, v in row.items()))


def _table(rows: list[dict[str, Any]]) -> None:
    """Rows as a `rich` table on stdout, every value as text (never markup)."""
    if not rows:
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    columns = [c for c in rows[0] if c != "projects"]
    for column in columns:
        table.add_column(column.replace("_", " "))
    for row in rows:
        table.add_row(*(Text(_cell(row[c])) for c in columns))
    Console(highlight=False, markup=False, soft_wrap=True).print(table)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the `workspace`, `key` or `project` action `args` names; print what it returns."""
    store = services.workspace_store(settings)
    await store.open()
    try:
        handler = _HANDLERS[(args.command, args.action)]
        _print(args, await handler(store, args))
    finally:
        await store.aclose()
    return 0


async def _create(store: WorkspaceStore, args: argparse.Namespace) -> dict[str, Any]:
    identifiers = tuple(s.strip() for s in (args.identity_resolution or "").split(",") if s.strip())
    workspace, key = await admin.create_workspace(
        store,
        workspace_id=args.workspace_id,
        name=args.name,
        rate_limit=args.rate_limit,
        identity_resolution=identifiers,
        portfolio=args.portfolio,
        strict=args.strict,
        delete_buffer=args.delete_buffer,
    )
    return {"workspace_id": workspace.id, "api_key": key}


async def _list(store: WorkspaceStore, args: argparse.Namespace) -> list[dict[str, Any]]:
    return [_describe(w) for w in await store.list()]


async def _show(store: WorkspaceStore, args: argparse.Namespace) -> dict[str, Any]:
    return _describe(await admin.require(store, args.workspace))


async def _suspend(store: WorkspaceStore, args: argparse.Namespace) -> dict[str, Any]:
    return _describe(await admin.set_suspended(store, args.workspace, True))


async def _resume(store: WorkspaceStore, args: argparse.Namespace) -> dict[str, Any]:
    return _describe(await admin.set_suspended(store, args.workspace, False))


async def _regenerate(store: WorkspaceStore, args: argparse.Namespace) -> dict[str, Any]:
    key = await admin.regenerate_key(store, args.workspace)
    return {"workspace_id": args.workspace, "api_key": key}


async def _revoke(store: WorkspaceStore, args: argparse.Namespace) -> dict[str, Any]:
    return _describe(await admin.revoke_key(store, args.workspace))


async def _project(store: WorkspaceStore, args: argparse.Namespace) -> dict[str, Any]:
    return _describe(await admin.add_project(store, args.workspace, args.code))


# -- Delete User (data-api.md §4) --
async def _update(store: WorkspaceStore, args: argparse.Namespace) -> dict[str, Any]:
    workspace = await admin.require(store, args.workspace)
    if args.delete_buffer is not None:
        workspace = await admin.set_delete_buffer(store, args.workspace, args.delete_buffer)
    return _describe(workspace)


_HANDLERS: dict[tuple[str, str], Callable[[WorkspaceStore, argparse.Namespace], Awaitable[Any]]] = {
    ("workspace", "create"): _create,
    ("workspace", "list"): _list,
    ("workspace", "show"): _show,
    ("workspace", "suspend"): _suspend,
    ("workspace", "resume"): _resume,
    ("key", "regenerate"): _regenerate,
    ("key", "revoke"): _revoke,
    ("project", "create"): _project,
    ("workspace", "update"): _update,  # Delete User (data-api.md §4)
}
