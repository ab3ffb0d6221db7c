"""Store protocols: `WorkspaceStore` (workspaces, key hashes, projects) and `EventStore`."""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from trackd.models import Plan, Workspace


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


FROM_END = -1


class EventQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Filters of `GET /api/workspaces/{ws}/events`; times are epoch ms of `current_time`."""

    workspace_id: str
    customer_id: str | None = None
    action: str | None = None
    since: int | None = None
    until: int | None = None
    limit: int = 100
    before_seq: int | None = None  # the cursor: events stored before this position
    after_seq: int | None = None  # following (tail): events stored after this, oldest first


class EventStore(Protocol):
    """Where processed envelopes become users, devices, events, schema and issues.

    Contract, for every adapter:

    - `apply` processes a batch of plans (`trackd.processor.plan`) in order, in one transaction:
      all of it is stored or none of it. A plan whose `request_id` was applied before changes
      nothing, so redelivery after a crash never double-counts.
    - `user` returns the profile dict of `product.md` (with `devices`), or None.
    - `events` returns events newest first (by processing order) and the cursor of the next page
      (None on the last page); with `after_seq`, oldest first after that position, and the
      position of the last one returned (None when there is none); with `after_seq == FROM_END`,
      no events and the position of the newest one (0 when none), where a follower starts.
    - `schema`, `issues`, `counts` return what the read API shows for one workspace;
      `add_counts` adds to named per-workspace counters (`{(workspace, name): n}`).
    - `aclose` releases the engine. Idempotent.
    """

    async def open(self) -> None: ...

    async def apply(self, plans: list[Plan]) -> None: ...

    async def user(self, workspace_id: str, customer_id: str) -> dict[str, Any] | None: ...

    async def events(self, query: EventQuery) -> tuple[list[dict[str, Any]], int | None]: ...

    async def schema(self, workspace_id: str) -> dict[str, Any]: ...

    async def issues(self, workspace_id: str, since: int | None) -> list[dict[str, Any]]: ...

    async def counts(self, workspace_id: str) -> dict[str, int]: ...

    async def add_counts(self, counts: dict[tuple[str, str], int]) -> None: ...

    async def aclose(self) -> None: ...
