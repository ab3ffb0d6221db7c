"""Every process's cache of workspaces, reloaded within `registry_refresh_seconds` of a change.

The hot path reads only this dict; a background task watches the store's revision and swaps in
a fresh dict when it moves, so a suspension or a key revoked by the CLI is honoured by every
process within one second, without a restart.

Read-your-writes for what the CLI grants: a request the cache would refuse (an unknown
workspace, a key or project code it does not know, a suspension) asks for `refresh` and is
checked again before it is refused, so a workspace created, a key regenerated or a project
added is seen by the very next request. Refreshes are coalesced: one look at the store at a
time, and every caller that arrives during a look shares the next one, so a flood of requests
for unknown workspaces costs one revision read at a time, not one each.
"""

from __future__ import annotations

import asyncio
import logging

from trackd.models import Workspace
from trackd.store.base import WorkspaceStore

log = logging.getLogger(__name__)


class WorkspaceRegistry:
    def __init__(self, store: WorkspaceStore, refresh_seconds: float) -> None:
        self._store = store
        self._refresh_seconds = refresh_seconds
        self._workspaces: dict[str, Workspace] = {}
        self._revision = -1
        self._task: asyncio.Task[None] | None = None
        self._looking = asyncio.Lock()
        self._looks = 0  # looks at the store begun by `refresh`

    def get(self, workspace_id: str) -> Workspace | None:
        return self._workspaces.get(workspace_id)

    def ids(self) -> list[str]:
        return sorted(self._workspaces)

    async def reload(self) -> None:
        revision = await self._store.revision()
        if revision != self._revision:
            self._workspaces = {w.id: w for w in await self._store.list()}
            self._revision = revision

    async def refresh(self) -> None:
        """Return once a look at the store that began after this call has finished (its
        changes are in the cache): the caller's next `get` sees every change committed before
        it called."""
        wanted = self._looks + 1
        async with self._looking:
            if self._looks >= wanted:  # a look that began after our call has finished
                return
            self._looks += 1
            await self.reload()

    async def start(self) -> None:
        await self.reload()
        self._task = asyncio.create_task(self._watch(), name="trackd-registry")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            try:
                await self.reload()
            except Exception:  # keep serving from the cache; say so
                log.exception("reloading workspaces failed; serving the cached ones")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
