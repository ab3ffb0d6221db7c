"""Workspace administration (trackd/admin.py): the ids it refuses."""

from __future__ import annotations

import pytest

from trackd import admin
from trackd.errors import ConfigError
from trackd.store.memory import MemoryWorkspaceStore

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("word", ["merge", "delete", "export", "MERGE"])
async def test_a_route_word_cannot_be_a_workspace_id(word: str) -> None:
    store = MemoryWorkspaceStore()
    with pytest.raises(ConfigError, match="is a Data API route word, not a workspace id"):
        await admin.create_workspace(store, workspace_id=word)
    assert await store.list() == []


async def test_two_workspace_ids_that_differ_only_in_case_are_refused() -> None:
    store = MemoryWorkspaceStore()
    await admin.create_workspace(store, workspace_id="DEMO")
    with pytest.raises(ConfigError, match=r"workspace 'DEMO' already exists \(ids differ only"):
        await admin.create_workspace(store, workspace_id="demo")
    with pytest.raises(ConfigError, match=r"workspace 'DEMO' already exists$"):
        await admin.create_workspace(store, workspace_id="DEMO")
    assert [w.id for w in await store.list()] == ["DEMO"]
