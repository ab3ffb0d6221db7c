"""trackd's own read API under `/api/workspaces/{ws}/…`: users, events, schema, issues, stats;
and for the console (issue 13): requests (the request log), live (Server-Sent Events,
`trackd.edge.live`) and activity.

Authenticated with the workspace's Basic credentials (the same checks as `/v1`), or with
``Authorization: Bearer <admin token>`` for every workspace. A key of one workspace never reads
another: the Basic user must be the workspace in the path (403 otherwise).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from trackd.edge.http import Receive, Scope, Send, encode, header_map, send_json
from trackd.edge.live import LiveStream
from trackd.edge.registry import WorkspaceRegistry
from trackd.edge.v1 import Bucket
from trackd.errors import ContractError
from trackd.limiter.base import Limiter
from trackd.models import Workspace
from trackd.processor.identity import normalise
from trackd.queue.base import PROCESSOR, Queue
from trackd.store.base import EventQuery, EventStore, RequestLog, RequestQuery
from trackd.wire import contract
from trackd.wire.auth import admin_bearer, check_key, parse_basic
from trackd.wire.times import iso, parse_time

log = logging.getLogger(__name__)

PREFIX = "/api/workspaces/"
MAX_LIMIT = 1000
MAX_SEQ = 2**63 - 1  # event sequence numbers are signed 64-bit integers in every store
ALLOW_READ = (b"allow", b"GET, HEAD")
_RAW_PREFIX = PREFIX.encode()


class ReadAPI:
    def __init__(
        self,
        registry: WorkspaceRegistry,
        store: EventStore,
        queue: Queue,
        admin_token: str,
        stats: Any,
    ) -> None:
        self.registry = registry
        self.store = store
        self.queue = queue
        self.admin_token = admin_token
        self.stats = stats
        self.request_log: RequestLog | None = None
        self.limiter: Limiter | None = None
        self.buckets: tuple[Bucket, ...] = ()

    def console(self, request_log: RequestLog, limiter: Limiter) -> None:
        """The parts of the console's routes (issue 13): requests, live, activity."""
        self.request_log = request_log
        self.limiter = limiter
        self.buckets = tuple(Bucket)  # every rate limit a workspace has

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = contract.new_request_id()
        headers = [(b"x-request-id", request_id.encode())]
        try:
            status, body = await self._route(scope)
            if isinstance(body, LiveStream):  # answered as a stream, from here on
                await body(receive, send, headers)
                return
        except ContractError as exc:
            status, body = exc.status, contract.error_body(exc, request_id)
            if status == 405:
                headers.append(ALLOW_READ)
        except Exception:  # row 28's answer, never a bare 500 from the server
            log.exception("unexpected failure on read request %s", request_id)
            status, body = 500, contract.error_body(contract.unexpected(), request_id)
        await send_json(send, status, encode(body), headers)

    async def _route(self, scope: Scope) -> tuple[int, Any]:
        """The method, then the credentials, then the row (`READ_ROUTES`): a request to a
        path that is no row is refused as any other (405, 401...) before it is a 404."""
        parts = path_segments(scope)
        matched = match_read(parts[1:])
        methods = ("GET", "HEAD") if matched is None else matched[0].methods
        if scope["method"] not in methods:
            raise contract.method_not_allowed()
        workspace = await self._authorised(scope, parts[0])
        if matched is None:
            raise contract.not_found_route()
        route, args = matched
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        return 200, await route.answer(self, ReadRequest(workspace, query, args, scope))

    # -- the rows' answers (`READ_ROUTES`) --

    async def _user(self, request: ReadRequest) -> Any:
        user = await self.store.user(request.workspace.id, request.args[0])
        if user is None:
            raise contract.no_such_user()
        return user

    async def _users(self, request: ReadRequest) -> Any:
        """By moengage_id, or an Identity Resolution identifier's value."""
        return await self._user_by(request.workspace.id, request.query)

    async def _events(self, request: ReadRequest) -> Any:
        events, cursor = await self.store.events(_event_query(request.workspace.id, request.query))
        return {"events": events, "next_cursor": None if cursor is None else str(cursor)}

    async def _schema(self, request: ReadRequest) -> Any:
        return await self.store.schema(request.workspace.id)

    async def _issues(self, request: ReadRequest) -> Any:
        since = _time(request.query, "since")
        return {"issues": await self.store.issues(request.workspace.id, since)}

    async def _stats(self, request: ReadRequest) -> Any:
        return await self.stats(request.workspace.id)

    async def _erasures(self, request: ReadRequest) -> Any:
        """GDPR erasure (data-api.md §6): the audit records, never the values."""
        return {"erasures": await self.store.erasures(request.workspace.id)}

    # -- the console's data (issue 13) --

    async def _requests(self, request: ReadRequest) -> Any:
        if self.request_log is None:
            raise contract.not_found_route()
        query = _request_query(request.workspace.id, request.query)
        entries, cursor = await self.request_log.requests(query)
        return {"requests": entries, "next_cursor": None if cursor is None else str(cursor)}

    async def _live(self, request: ReadRequest) -> LiveStream:
        """The stream a `/live` request asks for, from `Last-Event-ID` or `?after=`."""
        query = request.query
        last_id = header_map(request.scope).get(b"last-event-id")
        if last_id is not None:
            after: str | None = last_id.decode("latin-1").strip()
            name = "Last-Event-ID"
        else:
            after, name = query.get("after"), "after"
        if after is not None and not (_digits(after) and int(after) <= MAX_SEQ):
            raise contract.invalid_param(name, "an event's seq (a live message's id)")
        return LiveStream(
            self.store,
            request.workspace.id,
            None if after is None else int(after),
            customer_id=query.get("customer_id"),
            action=query.get("action"),
        )

    async def _activity_of(self, request: ReadRequest) -> Any:
        return await self._activity(request.workspace, request.query)

    async def _activity(self, workspace: Workspace, query: dict[str, str]) -> dict[str, Any]:
        minutes = query.get("minutes", "60")
        if not _digits(minutes) or not 1 <= int(minutes) <= MAX_MINUTES:
            raise contract.invalid_param("minutes", f"an integer from 1 to {MAX_MINUTES}")
        now_ms = int(time.time() * 1000)
        current = now_ms - now_ms % MINUTE_MS
        first = current - (int(minutes) - 1) * MINUTE_MS
        counts = (
            {} if self.request_log is None else await self.request_log.minutes(workspace.id, first)
        )
        stats = await self.stats(workspace.id)
        newest, _ = await self.store.events(EventQuery(workspace_id=workspace.id, limit=1))
        received = parse_time(newest[0]["received_at"]) if newest else None
        rate_limit = {}
        for bucket in self.buckets if self.limiter is not None else ():
            decision = await self.limiter.peek(  # type: ignore[union-attr]
                bucket.key(workspace.id), bucket.limit(workspace)
            )
            rate_limit[bucket.value] = {
                "limit": decision.limit,
                "used": decision.limit - decision.remaining,
            }
        return {
            "minutes": [
                {
                    "at": iso(minute),
                    "accepted_events": counts.get(minute, (0, 0, 0))[0],
                    "rejected_requests": counts.get(minute, (0, 0, 0))[2],
                    "accepted_requests": counts.get(minute, (0, 0, 0))[1],
                }
                for minute in range(first, current + 1, MINUTE_MS)
            ],
            "queue_lag_events": stats["lag_events"],
            "freshness_seconds": None
            if received is None
            else round(max(0.0, (now_ms - received) / 1000), 3),
            "rate_limit": rate_limit,
        }

    async def _user_by(self, workspace_id: str, query: dict[str, str]) -> dict[str, Any]:
        """`?moengage_id=M`, or `?identifier=NAME&value=V` (compared as the processor stores
        identifiers, `trackd.processor.identity.normalise`): the profile, or 404."""
        if "moengage_id" in query:
            owner = await self.store.live_user(workspace_id, "moengage_id", query["moengage_id"])
        elif query.get("identifier") and "value" in query:
            name = query["identifier"]
            value = normalise(name, query["value"])
            owner = await self.store.identifier_owner(workspace_id, name, value)
        else:
            raise contract.invalid_param("identifier", "moengage_id=M, or identifier=NAME&value=V")
        user = None if owner is None else await self.store.user(workspace_id, owner)
        if user is None:
            raise contract.no_such_user()
        return user

    async def _authorised(self, scope: Scope, workspace_id: str) -> Workspace:
        """As `_authorise`; what the cache refuses is checked again after a `refresh`, so a
        workspace or key the CLI just made reads at once (read-your-writes). A wrong admin
        token is not the cache's to know: it is refused at once."""
        header = header_map(scope).get(b"authorization")
        admin = admin_bearer(header, self.admin_token)
        if admin is False:
            raise contract.invalid_admin_token()
        try:
            return self._authorise(header, bool(admin), workspace_id)
        except ContractError as exc:
            if exc.status not in (401, 403, 404, 409):
                raise
            await self.registry.refresh()
            return self._authorise(header, bool(admin), workspace_id)

    def _authorise(self, header: bytes | None, admin: bool, workspace_id: str) -> Workspace:
        if admin:
            workspace = self.registry.get(workspace_id)
        else:
            username, password = parse_basic(header)
            workspace = self.registry.get(username)
            if workspace is None:
                raise contract.unknown_workspace()
            check_key(password, workspace.key_hash)
            if username != workspace_id:
                raise contract.other_workspace()
        if workspace is None:
            raise contract.no_such_workspace()
        return workspace


def path_segments(scope: Scope) -> list[str]:
    """The segments after `PREFIX`, each percent-decoded on its own, so that an id holding
    `/` or any other character reads back as `%2F`… (the server's `path` decodes `%2F`
    before it can be split). Invalid UTF-8 decodes to U+FFFD, matching no stored id."""
    raw: bytes | None = scope.get("raw_path")
    if raw is None or not raw.startswith(_RAW_PREFIX):  # none, or the prefix itself encoded
        return str(scope["path"])[len(PREFIX) :].split("/")
    text = raw.decode("latin-1")[len(PREFIX) :]
    return [unquote(segment, errors="replace") for segment in text.split("/")]


def _time(query: dict[str, str], name: str) -> int | None:
    if name not in query:
        return None
    value = parse_time(query[name])
    if value is None:
        raise contract.invalid_param(name, "an epoch timestamp or an ISO 8601 date-time")
    return value


def _digits(text: str) -> bool:
    """ASCII digits only: `str.isdigit` also takes "²", which `int` refuses."""
    return text.isascii() and text.isdigit()


def _event_query(workspace_id: str, query: dict[str, str]) -> EventQuery:
    limit = query.get("limit", "100")
    if not _digits(limit) or not 1 <= int(limit) <= MAX_LIMIT:
        raise contract.invalid_param("limit", f"an integer from 1 to {MAX_LIMIT}")
    cursor = query.get("cursor")
    if cursor is not None and not (_digits(cursor) and int(cursor) <= MAX_SEQ):
        raise contract.invalid_param("cursor", "a next_cursor value")
    return EventQuery(
        workspace_id=workspace_id,
        customer_id=query.get("customer_id"),
        action=query.get("action"),
        since=_time(query, "since"),
        until=_time(query, "until"),
        limit=int(limit),
        before_seq=int(cursor) if cursor is not None else None,
    )


async def workspace_stats(
    store: EventStore, queue: Queue, workspace_id: str, now_ms: int | None = None
) -> dict[str, int | float]:
    """`accepted_events` = processed + dropped + still waiting in the queue."""
    counts = await store.counts(workspace_id)
    backlog = await queue.backlog(PROCESSOR, workspace_id)
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    processed = counts.get("processed_events", 0)
    dropped = counts.get("dropped_events", 0)
    lag_seconds = 0.0
    if backlog.oldest_received_at is not None:
        lag_seconds = max(0.0, (now_ms - backlog.oldest_received_at) / 1000)
    return {
        "accepted_events": processed + dropped + backlog.events,
        "rejected_requests": counts.get("rejected_requests", 0),
        "processed_events": processed,
        "dropped_events": dropped,
        "lag_events": backlog.events,
        "lag_seconds": round(lag_seconds, 3),
    }


# -- the console's data (issue 13) --

MINUTE_MS = 60_000
MAX_MINUTES = 1440


def _request_query(workspace_id: str, query: dict[str, str]) -> RequestQuery:
    limit = query.get("limit", "100")
    if not _digits(limit) or not 1 <= int(limit) <= MAX_LIMIT:
        raise contract.invalid_param("limit", f"an integer from 1 to {MAX_LIMIT}")
    before = query.get("before")
    if before is not None and not (_digits(before) and int(before) <= MAX_SEQ):
        raise contract.invalid_param("before", "a next_cursor value")
    status, status_class = query.get("status"), None
    if status is not None:
        text = status.strip().lower()
        if len(text) == 3 and text[0] in "12345" and text[1:] == "xx":
            status, status_class = None, int(text[0])
        elif len(text) == 3 and _digits(text) and 100 <= int(text) <= 599:
            status = text
        else:
            raise contract.invalid_param("status", "a status code like 400, or a class like 4xx")
    return RequestQuery(
        workspace_id=workspace_id,
        status=None if status is None else int(status),
        status_class=status_class,
        since=_time(query, "since"),
        before_seq=None if before is None else int(before),
        limit=int(limit),
    )


# -- the table of routes --


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """What a row's answer gets: the authorised workspace, the query (the last of each name),
    the path's parameters in order, and the ASGI scope (for headers)."""

    workspace: Workspace
    query: dict[str, str]
    args: tuple[str, ...]
    scope: Scope


@dataclass(frozen=True, slots=True)
class ReadRoute:
    """A row of the read API. `path` is what follows `/api/workspaces/{workspace_id}/`; a
    `{name}` segment matches any non-empty segment (percent-decoded) and is passed in
    `ReadRequest.args`. `answer` is the 200's body (a `LiveStream` is streamed instead).
    `operation_id`, `summary` and `shape` (a `trackd.edge.openapi` component) make the row's
    entry in `/openapi.json`; adding a row here serves and documents it."""

    path: str
    answer: Callable[[ReadAPI, ReadRequest], Awaitable[Any]]
    operation_id: str
    summary: str
    shape: str
    methods: tuple[str, ...] = ("GET", "HEAD")

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.path.split("/"))


READ_ROUTES: tuple[ReadRoute, ...] = (
    ReadRoute(
        "users/{customer_id}", ReadAPI._user, "readUser", "A user's profile and devices", "User"
    ),
    ReadRoute(
        "users",
        ReadAPI._users,
        "findUser",
        "A user's profile by moengage_id, or by an Identity Resolution identifier's value",
        "User",
    ),
    ReadRoute("events", ReadAPI._events, "listEvents", "Events, newest first", "EventPage"),
    ReadRoute(
        "schema", ReadAPI._schema, "getSchema", "Event names, attributes, types seen", "Schema"
    ),
    ReadRoute("issues", ReadAPI._issues, "listIssues", "Every drop, cut or rewrite", "Issues"),
    ReadRoute("stats", ReadAPI._stats, "getStats", "Accepted, rejected, processed; lag", "Stats"),
    ReadRoute(
        "erasures", ReadAPI._erasures, "listErasures", "GDPR erasures applied (audit)", "Erasures"
    ),
    # -- the console's data (issue 13) --
    ReadRoute(
        "requests",
        ReadAPI._requests,
        "listRequests",
        "The request log, newest first",
        "RequestPage",
    ),
    ReadRoute(
        "activity",
        ReadAPI._activity_of,
        "getActivity",
        "Activity by minute, queue lag, freshness, rate-limit use",
        "Activity",
    ),
    ReadRoute(
        "live",
        ReadAPI._live,
        "streamEvents",
        "Processed events, as they are stored",
        "Status",
        methods=("GET",),
    ),
)


def match_read(
    segments: list[str], routes: tuple[ReadRoute, ...] = READ_ROUTES
) -> tuple[ReadRoute, tuple[str, ...]] | None:
    """The row `segments` (the path after the workspace) names, with its parameters, or None."""
    for route in routes:
        pattern = route.segments
        if len(pattern) != len(segments):
            continue
        args: list[str] = []
        for want, got in zip(pattern, segments, strict=True):
            if want.startswith("{"):
                if not got:
                    break
                args.append(got)
            elif want != got:
                break
        else:
            return route, tuple(args)
    return None
