"""Store protocols: `WorkspaceStore` (workspaces, key hashes, projects) and `EventStore`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import msgspec

from trackd.models import Plan, RequestEntry, Workspace
from trackd.store.records import (
    Changes,
    DeviceWrite,
    IdentifierKey,
    MergeWrite,
    Profile,
    StoredDevice,
    UserKey,
)


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
    # -- Live stream (issue 13 item 2) --
    with_seq: bool = False  # each event also shows its position, "seq"


class Batch(Protocol):
    """One transaction of an event store, open for a batch of plans (`EventStore.batch`).

    The processor (`trackd.processor.apply`) decides what the batch does; a batch reads and
    writes only what it is told. Calls, in this order, each at most once:

    - `claim` first: the first plan of each request id not claimed before (by any batch of
      this store, in any process), in order, each marked as claimed in this transaction. They
      come back as the store holds them (PostgreSQL: U+0000 in text becomes U+FFFD), so what
      the processor derives from them matches what is stored. On PostgreSQL it first takes
      a transaction-level advisory lock per workspace of `plans` (in one order, so nodes never
      deadlock): batches of one workspace commit one after another, in the order their events
      get positions, and nothing below races another node.
    - `owners`: the customer id each of these identifier values names, for those that name
      one (Identity Resolution).
    - `profiles`: the stored profiles of these users, for those that have one.
    - `write`: store `changes` (`trackd.store.records.Changes`) as given.

    Merges (Merge Users, Identity Resolution) split a batch into runs: after `claim`, the
    processor may repeat `aliases`, `owners`, `merged_on`, `profiles`, `write` and `merge`, in
    any order, each seeing what the calls before it stored in this transaction:

    - `aliases`: the live customer id each of these users' customer ids is an alias of, for
      those that are aliases (a merged user's id; an alias always names a live profile).
    - `merged_on`: how many users were merged on each of these identifier values so far (an
      Identity Resolution merge's `MergeWrite.via`), for those with any.
    - `merge`: apply each `MergeWrite`, in order (see there).

    It is all stored when the `batch()` block exits cleanly, and none of it when the block
    raises: a claimed request id that is not committed is claimed again by a later batch.
    """

    async def claim(self, plans: list[Plan]) -> list[Plan]: ...

    async def owners(self, keys: list[IdentifierKey]) -> dict[IdentifierKey, str]: ...

    async def profiles(self, users: list[UserKey]) -> dict[UserKey, Profile]: ...

    async def write(self, changes: Changes) -> None: ...

    # -- merges (Merge Users, Identity Resolution) --

    async def aliases(self, users: list[UserKey]) -> dict[UserKey, str]: ...

    async def merged_on(self, keys: list[IdentifierKey]) -> dict[IdentifierKey, int]: ...

    async def merge(self, merges: list[MergeWrite]) -> None: ...

    # -- Track Device (data-api.md §1): any number of times, in any order, after `claim`, each
    # seeing what the calls before it stored in this transaction --

    async def devices(self, users: list[UserKey]) -> dict[UserKey, list[StoredDevice]]:
        """Each of these users' devices (by device id), for those that have any."""
        ...

    async def put_devices(self, writes: list[DeviceWrite]) -> None:
        """Apply each `DeviceWrite`, in order (see there)."""
        ...

    # -- Delete User (data-api.md §4): any number of times, in any order, after `claim` (the
    # processor's sweep claims no plan: `claim([])`, then `due_deletes` and `hard_delete`) --

    async def live_user(self, workspace_id: str, identity_type: str, value: str) -> str | None:
        """The customer id of the live profile that `value` names, or None: by `identity_type`
        "customer_id" (an alias names the profile it went into) or "moengage_id"."""
        ...

    async def schedule_delete(self, user: UserKey, request_id: str, due_at: int) -> None:
        """Mark `user` for hard delete at `due_at` (epoch ms); marked already: the earlier."""
        ...

    async def due_deletes(self, now_ms: int, limit: int) -> list[UserKey]:
        """At most `limit` users marked for hard delete at or before `now_ms`, earliest first."""
        ...

    async def hard_delete(self, users: list[UserKey]) -> int:
        """Remove each user's profile, devices, identifier values, aliases, delete mark and
        events; how many events were purged. PostgreSQL first takes the users' workspaces'
        advisory locks (the sweep's batch claims none)."""
        ...

    # -- GDPR erasure (data-api.md §6) --

    async def users_matching(self, workspace_id: str, identity_type: str, value: str) -> list[str]:
        """The customer ids of every live profile an erasure identity names: `ID` a customer id
        (or alias); the others the profile attribute (`email`, `mobile`, `user_secondary_id`,
        `advertising_identifier`; `google_advertising_id` is `moe_gaid`) equal to `value`, an
        identifier value of that name equal to it (or to it lowercased), or a device attribute
        of that name equal to it. Sorted."""
        ...

    async def erase_issues(self, users: list[UserKey]) -> None:
        """Remove the issues of every request whose events these users have (call before
        `hard_delete`, which removes the events)."""
        ...

    async def erase_recorded_requests(self, workspace_id: str, customer_ids: list[str]) -> None:
        """Remove every request the request log (`RequestLog`, in the same database) recorded
        naming one of these users, in this transaction, and mark them erased for
        `trackd.store.request_log.ERASED_KEPT_MS` (a hash, never the id): an entry still in an
        edge's buffer (flushed within half a second), recorded at or before the mark, is then
        not kept when it arrives (docs/api-compatibility.md)."""
        ...

    async def record_erasure(self, record: dict[str, object]) -> None:
        """Store the audit record of one erasure (keys: workspace, request_id, submitted_time,
        received_at, applied_at, identity_types (comma-separated), users, events); a second
        record of the same request id changes nothing."""
        ...


class EventStore(Protocol):
    """Where processed envelopes become users, devices, events, schema and issues.

    Contract, for every adapter:

    - `batch` opens one transaction (`Batch`): committed when its block exits cleanly, rolled
      back when it raises. A request id claimed and committed before changes nothing again,
      so redelivery after a crash never double-counts. While a batch is open, the store's
      other calls never see its uncommitted rows (SQLite's wait for it to end).
    - `user` returns the profile dict of `product.md` (with `devices`), or None; for a merged
      user's customer id (an alias), the profile it was merged into, which lists its
      `aliases` (sorted; the key is there only when it has any).
    - `events` returns events newest first (by processing order) and the cursor of the next page
      (None on the last page); with `after_seq`, oldest first after that position, and the
      position of the last one returned (None when there is none); a `customer_id` that is an
      alias filters on the profile it names; with `after_seq == FROM_END`,
      no events and the position of the newest one (0 when none), where a follower starts.
    - `event_lines` yields what `events` pages of the same query show, as NDJSON (what
      `trackd events export` writes): each page (up to `query.limit` events, newest first,
      from `query.before_seq` on, until the last) is byte for byte what
      ``msgspec.json.Encoder().encode_lines`` makes of that page of `events`, so each event
      is one line ending in "\\n" (JSON text has no raw newline: count them to count
      events). No empty page is yielded. The store may read the next page while the caller
      handles this one; a batch may commit between two pages (events it adds come after the
      cursor, so the pages do not show them). A query with `after_seq`, `with_seq` or a
      `limit` under 1 raises `ConfigError`.
    - `schema`, `issues`, `counts` return what the read API shows for one workspace;
      `add_counts` adds to named per-workspace counters (`{(workspace, name): n}`).
    - `aclose` releases the engine. Idempotent. A store that is not open raises `StoreError`.
    """

    async def open(self) -> None: ...

    def batch(self) -> AbstractAsyncContextManager[Batch]: ...

    async def user(self, workspace_id: str, customer_id: str) -> dict[str, Any] | None: ...

    async def events(self, query: EventQuery) -> tuple[list[dict[str, Any]], int | None]: ...

    def event_lines(self, query: EventQuery) -> AsyncIterator[bytes]: ...

    async def schema(self, workspace_id: str) -> dict[str, Any]: ...

    async def issues(self, workspace_id: str, since: int | None) -> list[dict[str, Any]]: ...

    async def counts(self, workspace_id: str) -> dict[str, int]: ...

    async def add_counts(self, counts: dict[tuple[str, str], int]) -> None: ...

    # -- Delete User (data-api.md §4): `user` shows `deletion_scheduled_at` (epoch ms) while
    # the user is marked for hard delete --

    async def live_user(self, workspace_id: str, identity_type: str, value: str) -> str | None:
        """As `Batch.live_user`, outside a batch (the edge's not-found check)."""
        ...

    async def identifier_owner(self, workspace_id: str, name: str, value: str) -> str | None:
        """The customer id of the profile an Identity Resolution identifier value names (as
        the processor stored it, normalised), or None (the console's Users lookup)."""
        ...

    async def erasures(self, workspace_id: str) -> list[dict[str, object]]:
        """The workspace's erasure audit records, oldest applied first (GDPR, data-api.md §6):
        request_id, submitted_time, received_at, applied_at, identity_types, users, events."""
        ...

    async def aclose(self) -> None: ...

    # -- Live stream (issue 13 item 2) --

    async def request_warnings(
        self, workspace_id: str, request_ids: list[str], since: int, until: int
    ) -> dict[str, list[dict[str, Any]]]:
        """The warnings (issues: index, reason, attribute when there is one) of each of these
        requests received from `since` to `until` (epoch ms, inclusive), for those with any,
        in the order they were stored."""
        ...


# -- Request log (issue 13 item 1) --

#: Per-minute counts of one workspace: (accepted events, accepted requests, rejected requests).
MinuteCounts = tuple[int, int, int]
#: How long the per-minute counts are kept, in ms (the console shows the last hour).
MINUTES_KEPT_MS = 86_400_000


class RequestQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Filters of `GET /api/workspaces/{ws}/requests`: `status` an exact code, or with
    `status_class` (4 for 4xx) every code of that hundred; `since` epoch ms of `at`."""

    workspace_id: str
    status: int | None = None
    status_class: int | None = None
    since: int | None = None
    before_seq: int | None = None  # the cursor: entries stored before this position
    limit: int = 100


class RequestLog(Protocol):
    """The last requests of each workspace, written in batches by the edges.

    Contract, for every adapter:

    - `append` stores `entries` (in order: later entries get higher positions), then keeps only
      the newest `keep` of each workspace it touched (by position).
    - `requests` returns entries newest first (by position), as
      `trackd.store.request_log.request_view` shows them, and the cursor of the next page
      (None on the last page).
    - `add_minutes` adds to per-(workspace, minute start in epoch ms) counts, and forgets the
      minutes older than `MINUTES_KEPT_MS` before the newest of each workspace it touched;
      `minutes` returns a workspace's counts from `since` (a minute start) on.
    - `erase` removes every entry of these customers in the workspace (GDPR erasure) and
      returns how many it removed; `append` keeps no entry of theirs recorded at or before the
      erasure, for `trackd.store.request_log.ERASED_KEPT_MS` after it (the same holds after
      `EventStore`'s `Batch.erase_recorded_requests` in the same database).
    - Every value is kept as given (PostgreSQL: U+0000 in `customer_id` becomes U+FFFD).
    - `aclose` releases the engine. Idempotent.
    """

    async def open(self) -> None: ...

    async def append(self, entries: list[RequestEntry], keep: int) -> None: ...

    async def requests(self, query: RequestQuery) -> tuple[list[dict[str, Any]], int | None]: ...

    async def add_minutes(self, counts: dict[tuple[str, int], MinuteCounts]) -> None: ...

    async def minutes(self, workspace_id: str, since: int) -> dict[int, MinuteCounts]: ...

    async def erase(self, workspace_id: str, customer_ids: list[str]) -> int: ...

    async def aclose(self) -> None: ...
