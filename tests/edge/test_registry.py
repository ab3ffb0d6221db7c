"""The workspace cache (trackd/edge/registry.py): `refresh` sees every change committed before
it was called, and concurrent refreshes share looks at the store."""

from __future__ import annotations

import asyncio

import pytest

from trackd import admin
from trackd.edge.registry import WorkspaceRegistry
from trackd.store.memory import MemoryWorkspaceStore

pytestmark = pytest.mark.anyio


class CountedStore(MemoryWorkspaceStore):
    """The memory store, counting its revision reads, each of which answers 10 ms late (what
    it read at the start)."""

    def __init__(self) -> None:
        super().__init__()
        self.revision_reads = 0

    async def revision(self) -> int:
        self.revision_reads += 1
        revision = await super().revision()
        await asyncio.sleep(0.01)
        return revision


async def test_refresh_sees_a_workspace_created_just_before_it() -> None:
    store = CountedStore()
    registry = WorkspaceRegistry(store, refresh_seconds=3600)  # the timer never fires here
    await registry.start()
    try:
        await admin.create_workspace(store, workspace_id="NEW")
        assert registry.get("NEW") is None
        await registry.refresh()
        assert registry.get("NEW") is not None
    finally:
        await registry.stop()


async def test_a_flood_of_refreshes_costs_two_looks_at_the_store() -> None:
    store = CountedStore()
    registry = WorkspaceRegistry(store, refresh_seconds=3600)
    await registry.start()
    try:
        before = store.revision_reads
        await asyncio.gather(*(registry.refresh() for _ in range(500)))
        # the first caller's look, and one more shared by all who came while it ran
        assert store.revision_reads - before == 2
    finally:
        await registry.stop()


async def test_a_refresh_called_during_a_look_waits_for_the_next_one() -> None:
    """A look that began before the call may have read the store before the change: the
    caller must not settle for it."""
    store = CountedStore()
    registry = WorkspaceRegistry(store, refresh_seconds=3600)
    await registry.start()
    try:
        first = asyncio.create_task(registry.refresh())
        await asyncio.sleep(0.005)  # the first look has read the revision (or is reading it)
        await admin.create_workspace(store, workspace_id="LATE")
        await registry.refresh()
        assert registry.get("LATE") is not None
        await first
    finally:
        await registry.stop()
