"""Store protocols. `WorkspaceStore` keeps workspaces, their key hashes and projects."""

from __future__ import annotations

from typing import Protocol

from trackd.models import Workspace


class WorkspaceStore(Protocol):
    """Where workspaces live; every trackd process reads them, admin commands write them.

    Contract, for every adapter:

    - `create` stores a new workspace and raises `ConfigError` if the id is taken.
    - `save` replaces an existing workspace whole (raises `NotFound` if absent).
    - `get` returns the workspace or None; `list` returns all of them, by id.
    - `revision` is a number that changes whenever any workspace changes, in any process, so a
      cache may reload only when it moves (every process checks it at least every second).
    - Keys are held only as hashes (`Workspace.key_hash`); no adapter ever sees a plain key.
    - `aclose` releases the engine. Idempotent.
    """

    async def open(self) -> None: ...

    async def create(self, workspace: Workspace) -> None: ...

    async def save(self, workspace: Workspace) -> None: ...

    async def get(self, workspace_id: str) -> Workspace | None: ...

    async def list(self) -> list[Workspace]: ...

    async def revision(self) -> int: ...

    async def aclose(self) -> None: ...
