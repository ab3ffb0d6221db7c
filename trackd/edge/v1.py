"""The `/v1` endpoints as a table, and the router that matches whole paths against it.

One row per MoEngage Data API endpoint that trackd serves: its path, where the workspace id is
found, the validator of its body (rows 16-25, in `trackd.wire`), its rate-limit bucket and what
counts against it, and the envelope kind the processor looks its step up by. Every row is
served by `trackd.edge.track.TrackEndpoint`, which runs the check table in order.

Adding an endpoint (docs/architecture.md): its validator in `trackd.wire`, one row here (and a
`Kind`), one processor step; store methods if it needs new data.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from trackd.errors import ContractError
from trackd.models import ROUTE_WORDS, Kind, Warning, Workspace
from trackd.queue.base import PROCESSOR, Queue
from trackd.store.base import EventStore
from trackd.wire import contract
from trackd.wire.bulk import BulkImportBody, validate_bulk
from trackd.wire.customer import TrackUserBody, validate_customer
from trackd.wire.delete import DeleteUserBody, validate_delete
from trackd.wire.device import TrackDeviceBody, validate_device
from trackd.wire.event import TrackEventRequest, Validated, decode_event, validate_event
from trackd.wire.export import GetUserBody, validate_export
from trackd.wire.gdpr import ErasureBody, validate_erasure
from trackd.wire.integration import TestConnectionBody, validate_test_connection
from trackd.wire.merge import MergeUsersBody, validate_merge

#: Rows 16-25: (JSON payload, workspace, project_code query, receive time in ms) -> Validated.
Validate = Callable[[object, Workspace, str | None, int], Validated]
#: A typed fast path over the raw body: Validated, or None to take `Validate`'s road.
Decode = Callable[[bytes, Workspace, str | None, int], Validated | None]
#: The 200's body: (request id, warnings) -> JSON bytes.
Answer = Callable[[str, list[Warning]], bytes]
#: A documented body: a msgspec Struct (its docstring the schema's description), or
#: ``Annotated[Struct, msgspec.Meta(extra_json_schema=...)]`` for what a Struct cannot say.
Body = Any

WORKSPACE = "{workspace_id}"


class WorkspaceFrom(enum.Enum):
    PATH = "path"  # the last path segment: /v1/event/{workspace_id}
    QUERY = "query"  # the `app_id` query parameter: /v1/customer/merge?app_id=...
    # -- Test connection (data-api.md §7) --
    #: the `MOE-APPKEY` header, its key the body's `app_secret` (no Basic auth)
    HEADER = "header"


class Bucket(enum.Enum):
    """A workspace's rate limits (REF §3): each its own window, under its own limiter key."""

    EVENTS = "events"
    USERS = "users"
    MERGES = "merges"  # Merge Users: user updates, a pair counts one
    # -- Track Device and Bulk Import (data-api.md §1, §2) --
    DEVICES = "devices"  # Track Device: device updates, a request counts one
    BULK_USERS = "bulk-users"  # Bulk Import: its customer and device elements
    BULK_EVENTS = "bulk-events"  # Bulk Import: its event elements' actions
    # -- Delete User (data-api.md §4) --
    DELETES = "deletes"  # Delete User: requests
    EXPORTS = "exports"  # Get User: users looked up
    ERASURES = "erasures"  # GDPR erasure: requests [trackd: REF documents no rate]

    def key(self, workspace_id: str) -> str:
        # Events kept the bare workspace id as their key (existing limiter state stays valid).
        # (`_EVENTS`, a global: an enum's class attribute costs a slow look-up on every call)
        return workspace_id if self is _EVENTS else f"{workspace_id}/{self.value}"

    def limit(self, workspace: Workspace) -> int:
        # One dict look-up, not a chain of comparisons (issue 14: on every request).
        return getattr(workspace, _LIMIT_FIELDS[self])  # type: ignore[no-any-return]


_EVENTS = Bucket.EVENTS
#: The `Workspace` field that holds each bucket's limit.
_LIMIT_FIELDS = {
    Bucket.EVENTS: "rate_limit",
    Bucket.USERS: "user_rate_limit",
    Bucket.MERGES: "merge_rate_limit",
    # -- Track Device and Bulk Import --
    Bucket.DEVICES: "device_rate_limit",
    Bucket.BULK_USERS: "bulk_user_rate_limit",
    Bucket.BULK_EVENTS: "bulk_event_rate_limit",
    # -- Delete User --
    Bucket.DELETES: "delete_rate_limit",
    Bucket.EXPORTS: "export_rate_limit",
    Bucket.ERASURES: "erasure_rate_limit",
}


#: A check against the store after the validator and before the rate limit (Delete User's
#: not-found): (events store, queue, workspace, validated) -> None, raising the contract's
#: error.
Precheck = Callable[[EventStore, Queue, Workspace, Validated], Awaitable[None]]
#: How long a read that decides an answer waits for the processor to apply every request
#: answered before it (data-api.md §0), then 503 (`contract.not_caught_up`).
CAUGHT_UP_SECONDS = 5.0
#: A synchronous row's 200 body: (events store, queue, workspace, validated) -> JSON bytes.
Respond = Callable[[EventStore, Queue, Workspace, Validated], Awaitable[bytes]]
CAUGHT_UP_POLL_SECONDS = 0.01

#: What a request costs, bucket by bucket (`V1Route.costs`).
Costs = Callable[[Validated], tuple[tuple[Bucket, int], ...]]


def track_answer(request_id: str, warnings: list[Warning]) -> bytes:
    """Track Event's 200 (`contract.success_body`), the default of every row."""
    if warnings:
        return msgspec.json.encode(contract.success_body(request_id, warnings))
    return contract.success_json(request_id)


@dataclass(frozen=True, slots=True)
class V1Route:
    name: str  # as MoEngage's documentation names it
    pattern: str  # the whole path; `{workspace_id}` only as its last segment
    #: The envelope kind, the processor's step; None for a row answered from the store
    #: (`respond`, Get User), which queues nothing.
    kind: Kind | None
    validate: Validate
    #: The limit it counts against; it costs `Validated.event_count` (actions as sent, or 1
    #: per user update).
    bucket: Bucket
    #: Whether that cost is events: counted as the envelope's `event_count` (the stats'
    #: accepted events, `trackd_events_accepted_total`); user updates are not events.
    counts_events: bool
    workspace_from: WorkspaceFrom = WorkspaceFrom.PATH
    decode: Decode | None = None
    #: Its 200 body, and its row-26 (429) error: Track Event's unless REF gives the endpoint
    #: its own (REF §2.3; data-api.md §0: one wording per endpoint).
    answer: Answer = track_answer
    rate_limited: Callable[[], ContractError] = contract.rate_limited
    #: The documented shape of its body (a msgspec Struct beside its validator in `trackd.wire`):
    #: what `/openapi.json` shows as the request (issue 12 item 5: generated, never hand-written).
    body: Body = None
    # -- Track Device and Bulk Import (data-api.md §1, §2) --
    #: What a request costs in each bucket it charges, in order (all or none are charged; the
    #: 200's rate-limit headers are the first bucket's, a 429's the refusing one's). None:
    #: `event_count` in `bucket` alone.
    costs: Costs | None = None
    #: Its row-15 error (undecodable JSON): Track Event's unless REF gives the endpoint its own.
    malformed_json: Callable[[], ContractError] = contract.malformed_json
    # -- Delete User (data-api.md §4) --
    #: Its row-28 (500) error: Track Event's unless REF gives the endpoint its own.
    unexpected: Callable[[], ContractError] = contract.unexpected
    #: A check against the store before the rate limit (`Precheck`), or None.
    precheck: Precheck | None = None
    # -- Get User (data-api.md §5) --
    #: A synchronous row: after rows 1-26 its 200 body is this answer from the store
    #: (`Respond`), and nothing is queued (`kind` None).
    respond: Respond | None = None
    # -- generated /openapi.json (issue 12 item 5) --
    #: The documented shape of its 200 body, the Struct beside `answer` in `trackd.wire.contract`.
    success: Body = contract.SuccessBody

    def charges(self, validated: Validated) -> tuple[tuple[Bucket, int], ...]:
        """The buckets a request charges and what it costs in each (`costs`)."""
        if self.costs is None:
            return ((self.bucket, validated.event_count),)
        return self.costs(validated)


async def caught_up(queue: Queue) -> None:
    """Return once the processor has applied every put that returned before this call
    (`Queue.head`, `Queue.applied`): read-your-writes for the reads that decide an answer
    (data-api.md §0). Not within `CAUGHT_UP_SECONDS`: 503 `contract.not_caught_up`."""
    head = await queue.head()
    deadline = time.monotonic() + CAUGHT_UP_SECONDS
    while await queue.applied(PROCESSOR) < head:
        if time.monotonic() >= deadline:
            raise contract.not_caught_up()
        await asyncio.sleep(CAUGHT_UP_POLL_SECONDS)


async def delete_precheck(
    events: EventStore, queue: Queue, workspace: Workspace, validated: Validated
) -> None:
    """Delete User: the user must exist (REF §6.5: a 400 ``Not Found`` otherwise), seen once
    every request answered before this one is applied (`caught_up`)."""
    delete = validated.delete
    if delete is None:
        return
    if await events.live_user(workspace.id, delete.identity_type, delete.identity_value):
        return  # there already: no wait
    await caught_up(queue)
    found = await events.live_user(workspace.id, delete.identity_type, delete.identity_value)
    if found is None:
        raise contract.user_does_not_exist(delete.identity_value)


async def export_users(
    events: EventStore, queue: Queue, workspace: Workspace, validated: Validated
) -> bytes:
    """Get User's 200 (REF §6.7): each identifier's user, or it in `users_not_found`, read once
    every request answered before this one is applied (`caught_up`)."""
    lookup = validated.lookup
    assert lookup is not None  # the row's validator always sets it
    await caught_up(queue)
    users: list[dict[str, object]] = []
    not_found: list[dict[str, str]] = []
    for kind, value in lookup.identifiers:
        identity = "moengage_id" if kind == "moengage_id" else "customer_id"
        customer_id = await events.live_user(workspace.id, identity, value)
        profile = None if customer_id is None else await events.user(workspace.id, customer_id)
        if profile is None:
            not_found.append({"identifier_type": kind, "identifier": value})
        else:
            users.append({"user_attributes": contract.export_attributes(profile, lookup.fields)})
    return msgspec.json.encode(contract.export_body(users, not_found))


async def test_connection(
    events: EventStore, queue: Queue, workspace: Workspace, validated: Validated
) -> bytes:
    """Test connection's 200 (REF §6.8): the workspace's name."""
    return msgspec.json.encode(contract.test_connection_body(workspace.name))


def no_costs(validated: Validated) -> tuple[tuple[Bucket, int], ...]:
    """A row that charges no bucket (Test connection: REF documents no limit)."""
    return ()


def bulk_costs(validated: Validated) -> tuple[tuple[Bucket, int], ...]:
    """Bulk Import: its users, then its events (REF §3: 60,000 of each a minute)."""
    return ((Bucket.BULK_USERS, validated.users), (Bucket.BULK_EVENTS, validated.event_count))


def path_and_query(route: V1Route) -> tuple[V1Route, V1Route]:
    """A path row (`…/{workspace_id}`) and the same endpoint with its workspace in the `app_id`
    query (`…?app_id=`), as MoEngage serves Track Device and Bulk Import."""
    query = dataclasses.replace(
        route,
        pattern=route.pattern.removesuffix("/" + WORKSPACE),
        workspace_from=WorkspaceFrom.QUERY,
    )
    return route, query


V1_ROUTES: tuple[V1Route, ...] = (
    V1Route(
        name="Track Event",
        pattern="/v1/event/{workspace_id}",
        kind=Kind.EVENT,
        validate=validate_event,
        decode=decode_event,
        bucket=Bucket.EVENTS,
        counts_events=True,
        body=TrackEventRequest,
    ),
    V1Route(
        name="Track User",
        pattern="/v1/customer/{workspace_id}",
        kind=Kind.CUSTOMER,
        validate=validate_customer,
        bucket=Bucket.USERS,
        counts_events=False,
        body=TrackUserBody,
    ),
    # -- Merge Users (data-api.md §3) --
    V1Route(
        name="Merge Users",
        pattern="/v1/customer/merge",
        kind=Kind.MERGE,
        validate=validate_merge,
        bucket=Bucket.MERGES,
        counts_events=False,
        workspace_from=WorkspaceFrom.QUERY,
        answer=contract.merge_success_json,
        rate_limited=contract.rate_limit_error,
        body=MergeUsersBody,
        success=contract.MergeSuccessBody,
    ),
    # -- Track Device and Bulk Import (data-api.md §1, §2) --
    *path_and_query(
        V1Route(
            name="Track Device",
            pattern="/v1/device/{workspace_id}",
            kind=Kind.DEVICE,
            validate=validate_device,
            bucket=Bucket.DEVICES,
            counts_events=False,
            body=TrackDeviceBody,
        )
    ),
    *path_and_query(
        V1Route(
            name="Bulk Import",
            pattern="/v1/transition/{workspace_id}",
            kind=Kind.BULK,
            validate=validate_bulk,
            bucket=Bucket.BULK_USERS,
            counts_events=True,
            costs=bulk_costs,
            malformed_json=contract.bulk_malformed_json,
            body=BulkImportBody,
        )
    ),
    # -- Delete User (data-api.md §4) --
    V1Route(
        name="Delete User",
        pattern="/v1/customer/delete",
        kind=Kind.DELETE,
        validate=validate_delete,
        bucket=Bucket.DELETES,
        counts_events=False,
        workspace_from=WorkspaceFrom.QUERY,
        rate_limited=contract.delete_rate_limited,
        unexpected=contract.delete_unexpected,
        precheck=delete_precheck,
        body=DeleteUserBody,
    ),
    # -- Get User (data-api.md §5): answered from the store, queues nothing --
    V1Route(
        name="Get User",
        pattern="/v1/customers/export",
        kind=None,
        validate=validate_export,
        bucket=Bucket.EXPORTS,
        counts_events=False,
        workspace_from=WorkspaceFrom.QUERY,
        rate_limited=contract.rate_limit_error,
        respond=export_users,
        body=GetUserBody,
        success=contract.ExportSuccessBody,
    ),
    # -- GDPR erasure (data-api.md §6) --
    V1Route(
        name="GDPR erasure",
        pattern="/v1/opengdpr_requests/{workspace_id}",
        kind=Kind.ERASE,
        validate=validate_erasure,
        bucket=Bucket.ERASURES,
        counts_events=False,
        answer=contract.erasure_success_json,
        body=ErasureBody,
    ),
    # -- Test connection (data-api.md §7): answered at once, queues nothing --
    V1Route(
        name="Test connection",
        pattern="/v1/integrations/authentication",
        kind=None,
        validate=validate_test_connection,
        bucket=Bucket.EXPORTS,  # never charged (`no_costs`)
        costs=no_costs,
        counts_events=False,
        workspace_from=WorkspaceFrom.HEADER,
        respond=test_connection,
        body=TestConnectionBody,
        success=contract.TestConnectionSuccessBody,
    ),
)


class Router:
    """Whole-path matching: a path names a route exactly (a query route) or is a path route's
    prefix plus one non-empty segment that is not a route word."""

    def __init__(self, routes: Iterable[V1Route]) -> None:
        self.exact: dict[str, V1Route] = {}
        self.prefixed: dict[str, V1Route] = {}
        for route in routes:
            if route.pattern.endswith("/" + WORKSPACE):
                self._add(self.prefixed, route.pattern[: -len(WORKSPACE)], route)
            elif WORKSPACE in route.pattern or route.workspace_from is WorkspaceFrom.PATH:
                raise ValueError(f"{route.pattern}: {WORKSPACE} can only be the last segment")
            else:
                self._add(self.exact, route.pattern, route)

    @staticmethod
    def _add(table: dict[str, V1Route], key: str, route: V1Route) -> None:
        if key in table:
            raise ValueError(f"two routes for {route.pattern}")
        table[key] = route

    def match(self, path: str) -> tuple[V1Route, str | None] | None:
        """The route and the workspace id of its path (None for a query route), or None."""
        route = self.exact.get(path)
        if route is not None:
            return route, None
        prefix, _, last = path.rpartition("/")
        route = self.prefixed.get(prefix + "/")
        if route is None or not last or last in ROUTE_WORDS:
            return None
        return route, last
