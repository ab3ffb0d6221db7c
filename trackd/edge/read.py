"""trackd's own read API under `/api/workspaces/{ws}/…`: users, events, schema, issues, stats.

Authenticated with the workspace's Basic credentials (the same checks as `/v1`), or with
``Authorization: Bearer <admin token>`` for every workspace. A key of one workspace never reads
another: the Basic user must be the workspace in the path (403 otherwise).
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import parse_qs, unquote

from trackd.edge.http import Receive, Scope, Send, encode, header_map, send_json
from trackd.edge.registry import WorkspaceRegistry
from trackd.errors import ContractError
from trackd.models import Workspace
from trackd.queue.base import PROCESSOR, Queue
from trackd.store.base import EventQuery, EventStore
from trackd.wire import contract
from trackd.wire.auth import admin_bearer, check_key, parse_basic
from trackd.wire.times import parse_time

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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = contract.new_request_id()
        headers = [(b"x-request-id", request_id.encode())]
        try:
            status, body = await self._route(scope)
        except ContractError as exc:
            status, body = exc.status, contract.error_body(exc, request_id)
            if status == 405:
                headers.append(ALLOW_READ)
        except Exception:  # row 28's answer, never a bare 500 from the server
            log.exception("unexpected failure on read request %s", request_id)
            status, body = 500, contract.error_body(contract.unexpected(), request_id)
        await send_json(send, status, encode(body), headers)

    async def _route(self, scope: Scope) -> tuple[int, Any]:
        parts = path_segments(scope)
        if scope["method"] not in ("GET", "HEAD"):
            raise contract.method_not_allowed()
        workspace = await self._authorised(scope, parts[0])
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        match parts[1:]:
            case ["users", customer_id] if customer_id:
                user = await self.store.user(workspace.id, customer_id)
                if user is None:
                    raise contract.no_such_user()
                return 200, user
            case ["events"]:
                events, cursor = await self.store.events(_event_query(workspace.id, query))
                return 200, {
                    "events": events,
                    "next_cursor": None if cursor is None else str(cursor),
                }
            case ["schema"]:
                return 200, await self.store.schema(workspace.id)
            case ["issues"]:
                return 200, {"issues": await self.store.issues(workspace.id, _time(query, "since"))}
            case ["stats"]:
                return 200, await self.stats(workspace.id)
            # -- GDPR erasure (data-api.md §6): the audit records, never the values --
            case ["erasures"]:
                return 200, {"erasures": await self.store.erasures(workspace.id)}
        raise contract.not_found_route()

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
