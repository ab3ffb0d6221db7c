"""The WorkspaceStore contract (trackd/store/base.py), run against every adapter; then what the
SQLite store promises to the other processes sharing its file."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from trackd.errors import ConfigError, NotFound
from trackd.models import Workspace
from trackd.store.base import WorkspaceStore
from trackd.store.sqlite import SQLiteWorkspaceStore

pytestmark = pytest.mark.anyio


def workspace(workspace_id: str = "WS1", **changes: object) -> Workspace:
    """A workspace with every field away from its default, so a round trip shows each one."""
    ws = Workspace(
        id=workspace_id,
        name=f"Shop {workspace_id}",
        key_hash="a" * 64,
        suspended=True,
        rate_limit=1234,
        portfolio=True,
        strict=True,
        identity_resolution=("email", "mobile"),
        projects=("web", "app"),
        timezone_offset=19800,
        clock_skew=60,
        created_at=1_708_939_453.5,
    )
    return msgspec.structs.replace(ws, **changes)


async def test_a_created_workspace_is_returned_by_get_with_every_field(
    workspace_store: WorkspaceStore,
) -> None:
    ws = workspace()
    await workspace_store.create(ws)
    assert await workspace_store.get("WS1") == ws


async def test_get_of_an_unknown_workspace_returns_none(workspace_store: WorkspaceStore) -> None:
    assert await workspace_store.get("nope") is None
    await workspace_store.create(workspace("WS1"))
    assert await workspace_store.get("nope") is None


async def test_list_returns_every_workspace_by_id(workspace_store: WorkspaceStore) -> None:
    assert await workspace_store.list() == []
    for workspace_id in ["b2", "A1", "c3", "a1"]:
        await workspace_store.create(workspace(workspace_id))
    assert await workspace_store.list() == [workspace(i) for i in ["A1", "a1", "b2", "c3"]]


async def test_creating_a_taken_id_raises_config_error_and_keeps_the_first(
    workspace_store: WorkspaceStore,
) -> None:
    first = workspace("WS1")
    await workspace_store.create(first)
    revision = await workspace_store.revision()
    with pytest.raises(ConfigError, match="WS1"):
        await workspace_store.create(workspace("WS1", name="Impostor", key_hash="b" * 64))
    assert await workspace_store.get("WS1") == first
    assert await workspace_store.list() == [first]
    assert await workspace_store.revision() == revision


async def test_save_replaces_the_workspace_whole(workspace_store: WorkspaceStore) -> None:
    await workspace_store.create(workspace("WS1"))
    await workspace_store.create(workspace("WS2"))
    replaced = Workspace(id="WS1", name="Renamed", key_hash=None)
    await workspace_store.save(replaced)
    assert await workspace_store.get("WS1") == replaced
    assert await workspace_store.get("WS2") == workspace("WS2")


async def test_saving_an_unknown_workspace_raises_not_found_and_stores_nothing(
    workspace_store: WorkspaceStore,
) -> None:
    await workspace_store.create(workspace("WS1"))
    revision = await workspace_store.revision()
    with pytest.raises(NotFound, match="WS2"):
        await workspace_store.save(workspace("WS2"))
    assert await workspace_store.get("WS2") is None
    assert await workspace_store.list() == [workspace("WS1")]
    assert await workspace_store.revision() == revision


async def test_revision_changes_on_every_change(workspace_store: WorkspaceStore) -> None:
    seen = [await workspace_store.revision()]
    await workspace_store.create(workspace("WS1"))
    seen.append(await workspace_store.revision())
    await workspace_store.create(workspace("WS2"))
    seen.append(await workspace_store.revision())
    await workspace_store.save(workspace("WS1", suspended=False))
    seen.append(await workspace_store.revision())
    await workspace_store.save(workspace("WS1", suspended=False))  # same content, still a save
    seen.append(await workspace_store.revision())
    assert len(set(seen)) == len(seen)


async def test_revision_holds_still_while_nothing_changes(
    workspace_store: WorkspaceStore,
) -> None:
    await workspace_store.create(workspace("WS1"))
    revision = await workspace_store.revision()
    await workspace_store.get("WS1")
    await workspace_store.list()
    assert await workspace_store.revision() == revision


async def test_aclose_is_idempotent(workspace_store: WorkspaceStore) -> None:
    await workspace_store.create(workspace("WS1"))
    await workspace_store.aclose()
    await workspace_store.aclose()


# -- SQLite only ------------------------------------------------------------------------------


async def test_sqlite_change_through_another_store_on_the_file_is_seen(tmp_path: Path) -> None:
    reader = SQLiteWorkspaceStore(tmp_path / "store.db")
    writer = SQLiteWorkspaceStore(tmp_path / "store.db")
    await reader.open()
    await writer.open()
    try:
        start = await reader.revision()
        await writer.create(workspace("WS1"))
        created = await reader.revision()
        assert created != start
        assert await reader.get("WS1") == workspace("WS1")

        await writer.save(workspace("WS1", key_hash="c" * 64))
        saved = await reader.revision()
        assert saved not in (start, created)
        assert await reader.get("WS1") == workspace("WS1", key_hash="c" * 64)
        assert await reader.list() == [workspace("WS1", key_hash="c" * 64)]

        with pytest.raises(ConfigError):
            await reader.create(workspace("WS1"))
        assert await writer.revision() == saved
    finally:
        await reader.aclose()
        await writer.aclose()


async def test_sqlite_workspaces_survive_a_reopen(tmp_path: Path) -> None:
    first = SQLiteWorkspaceStore(tmp_path / "store.db")
    await first.open()
    await first.create(workspace("WS1"))
    revision = await first.revision()
    await first.aclose()
    second = SQLiteWorkspaceStore(tmp_path / "store.db")
    await second.open()
    try:
        assert await second.list() == [workspace("WS1")]
        assert await second.revision() == revision
    finally:
        await second.aclose()
