"""Workspace administration: what `trackd workspace …`, `key …` and `project …` do.

Plain keys exist only in the return values of `create_workspace` and `regenerate_key`, to be
shown once; the store sees only their hashes.
"""

from __future__ import annotations

import re
import secrets
import string
import time

import msgspec

from trackd.errors import ConfigError, NotFound
from trackd.models import DEFAULT_RATE_LIMIT, ROUTE_WORDS, Workspace
from trackd.store.base import WorkspaceStore
from trackd.wire.auth import hash_key, new_key

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ID_ALPHABET = string.ascii_uppercase + string.digits


def new_workspace_id() -> str:
    """A MoEngage-looking workspace id: 20 upper-case letters and digits."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(20))


async def require(store: WorkspaceStore, workspace_id: str) -> Workspace:
    workspace = await store.get(workspace_id)
    if workspace is None:
        raise NotFound(f"no workspace {workspace_id!r}")
    return workspace


async def create_workspace(
    store: WorkspaceStore,
    *,
    workspace_id: str | None = None,
    name: str | None = None,
    rate_limit: int | None = None,
    identity_resolution: tuple[str, ...] = (),
    portfolio: bool = False,
    strict: bool = False,
    delete_buffer: int | None = None,  # Delete User (data-api.md §4)
) -> tuple[Workspace, str]:
    workspace_id = workspace_id or new_workspace_id()
    if not ID_PATTERN.fullmatch(workspace_id):
        raise ConfigError("a workspace id is 1-64 letters, digits, '_' or '-'")
    if workspace_id.lower() in ROUTE_WORDS:
        raise ConfigError(f"{workspace_id!r} is a Data API route word, not a workspace id")
    # `demo` beside `DEMO` would be two workspaces a person cannot tell apart.
    folded = workspace_id.casefold()
    for existing in await store.list():
        if existing.id != workspace_id and existing.id.casefold() == folded:
            raise ConfigError(f"workspace {existing.id!r} already exists (ids differ only in case)")
    if rate_limit is not None and rate_limit < 1:
        raise ConfigError("--rate-limit must be at least 1 event per minute")
    _check_delete_buffer(delete_buffer)
    key = new_key()
    workspace = Workspace(
        id=workspace_id,
        name=name or workspace_id,
        key_hash=hash_key(key),
        rate_limit=rate_limit or DEFAULT_RATE_LIMIT,
        identity_resolution=identity_resolution,
        portfolio=portfolio,
        strict=strict,
        created_at=time.time(),
    )
    if delete_buffer is not None:
        workspace = msgspec.structs.replace(workspace, delete_buffer=delete_buffer)
    await store.create(workspace)
    return workspace, key


async def _update(store: WorkspaceStore, workspace_id: str, **changes: object) -> Workspace:
    workspace = msgspec.structs.replace(await require(store, workspace_id), **changes)
    await store.save(workspace)
    return workspace


async def regenerate_key(store: WorkspaceStore, workspace_id: str) -> str:
    """A new key; the old one stops working as soon as every process has reloaded (< 1 s)."""
    key = new_key()
    await _update(store, workspace_id, key_hash=hash_key(key))
    return key


async def revoke_key(store: WorkspaceStore, workspace_id: str) -> Workspace:
    """No active key: requests get contract row 9 until a key is regenerated."""
    return await _update(store, workspace_id, key_hash=None)


async def set_suspended(store: WorkspaceStore, workspace_id: str, suspended: bool) -> Workspace:
    return await _update(store, workspace_id, suspended=suspended)


async def add_project(store: WorkspaceStore, workspace_id: str, code: str) -> Workspace:
    workspace = await require(store, workspace_id)
    if not ID_PATTERN.fullmatch(code):
        raise ConfigError("a project code is 1-64 letters, digits, '_' or '-'")
    if code in workspace.projects:
        raise ConfigError(f"project {code!r} already exists in {workspace_id!r}")
    return await _update(store, workspace_id, projects=(*workspace.projects, code))


# -- Delete User (data-api.md §4) --


def _check_delete_buffer(seconds: int | None) -> None:
    if seconds is not None and seconds < 0:
        raise ConfigError("--delete-buffer is seconds, 0 or more (0: hard delete at once)")


async def set_delete_buffer(store: WorkspaceStore, workspace_id: str, seconds: int) -> Workspace:
    """The seconds between a Delete User and its hard delete, for requests accepted from now."""
    _check_delete_buffer(seconds)
    return await _update(store, workspace_id, delete_buffer=seconds)
