"""An in-memory WorkspaceStore for tests (one process)."""

from __future__ import annotations

from trackd.errors import ConfigError, NotFound
from trackd.models import Workspace


class MemoryWorkspaceStore:
    def __init__(self) -> None:
        self._workspaces: dict[str, Workspace] = {}
        self._revision = 0

    async def open(self) -> None:
        pass

    async def create(self, workspace: Workspace) -> None:
        if workspace.id in self._workspaces:
            raise ConfigError(f"workspace {workspace.id!r} already exists")
        self._workspaces[workspace.id] = workspace
        self._revision += 1

    async def save(self, workspace: Workspace) -> None:
        if workspace.id not in self._workspaces:
            raise NotFound(f"no workspace {workspace.id!r}")
        self._workspaces[workspace.id] = workspace
        self._revision += 1

    async def get(self, workspace_id: str) -> Workspace | None:
        return self._workspaces.get(workspace_id)

    async def list(self) -> list[Workspace]:
        return [self._workspaces[k] for k in sorted(self._workspaces)]

    async def revision(self) -> int:
        return self._revision

    async def aclose(self) -> None:
        pass
