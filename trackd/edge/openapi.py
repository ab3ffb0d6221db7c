"""The OpenAPI 3.1 description of every route trackd serves, generated: each row of
`trackd.edge.v1.V1_ROUTES` (request and every response), the read API under
`/api/workspaces/{ws}/…`, and service routes.

Nothing of a `/v1` endpoint is written here: its path and parameters come from its row, its
request schema from the row's `body` and its 200 from the row's `success` (msgspec Structs beside
the validator in `trackd.wire` and the answers in `trackd.wire.contract`, turned into JSON Schema
by `msgspec.json.schema_components`), its errors from `contract.ErrorBody` following the check
table of `track-event.md` §2. A new row is documented as it lands. `tests/edge/test_openapi.py`
checks the document against the table; `tests/security/test_schemathesis.py` fuzzes the app
against it (no 5xx, every response conforming to its schema).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from trackd import __version__
from trackd.edge.read import MAX_LIMIT, MAX_MINUTES, READ_ROUTES, ReadRoute
from trackd.edge.v1 import V1_ROUTES, V1Route, WorkspaceFrom
from trackd.models import RequestError
from trackd.models import Warning as ModelWarning
from trackd.wire.contract import ErrorBody, error_shape

# -- the read API's answers (trackd.store.views); times are ISO 8601 UTC strings ----------------


class Device(msgspec.Struct):
    device_id: str | None
    platform: str | None
    app_version: str | None
    first_seen: str
    last_seen: str
    last_ip: str | None


class User(msgspec.Struct):
    customer_id: str
    #: trackd's stable internal id of the profile: 24 lowercase hex characters
    moengage_id: Annotated[str, Meta(pattern="^[0-9a-f]{24}$")]
    attributes: dict[str, Any]
    identifiers: dict[str, Any]
    first_seen: str
    last_seen: str
    event_count: int
    devices: list[Device]


class Event(msgspec.Struct):
    event_id: str
    request_id: str
    customer_id: str
    action: str
    attributes: dict[str, Any]
    platform: str
    platform_raw: str | None
    app_version: str | None
    user_time: str
    current_time: str
    user_timezone_offset: int
    received_at: str
    client_ip: str | None
    device_id: str | None
    project_code: str | None
    moe_os_type: str | None


class EventPage(msgspec.Struct):
    events: list[Event]
    next_cursor: str | None


class SchemaEvent(msgspec.Struct):
    action: str
    count: int
    first_seen: str
    last_seen: str
    #: attribute name -> type seen -> count
    attributes: dict[str, dict[str, int]]


class Schema(msgspec.Struct):
    events: list[SchemaEvent]


class Issue(msgspec.Struct):
    request_id: str
    index: int
    attribute: str | None
    reason: str
    at: str


class Issues(msgspec.Struct):
    issues: list[Issue]


class Stats(msgspec.Struct):
    accepted_events: int
    rejected_requests: int
    processed_events: int
    dropped_events: int
    lag_events: int
    lag_seconds: float


# -- the console's data (issue 13): /requests, /activity; /live is a text/event-stream --


class RequestView(msgspec.Struct):
    """One `/v1` request of the request log (`trackd.store.request_log.request_view`); `body`
    and `headers` only for a rejected request that passed authentication."""

    seq: int
    at: str
    endpoint: str
    method: str
    path: str
    status: int
    request_id: str
    client_ip: str | None
    user_agent: str | None
    event_count: int
    customer_id: str | None
    warnings: list[ModelWarning]
    error: RequestError | None
    body: str | None
    body_truncated: bool
    headers: dict[str, str] | None


class RequestPage(msgspec.Struct):
    requests: list[RequestView]
    next_cursor: str | None


class ActivityMinute(msgspec.Struct):
    at: str
    accepted_events: int
    rejected_requests: int
    accepted_requests: int


class RateLimitUse(msgspec.Struct):
    limit: int
    used: int


class Activity(msgspec.Struct):
    """Per-minute counts, queue lag, freshness (seconds since the newest event was received)
    and each rate limit's use, by bucket."""

    minutes: list[ActivityMinute]
    queue_lag_events: int
    freshness_seconds: float | None
    rate_limit: dict[str, RateLimitUse]


class Erasure(msgspec.Struct):
    """A GDPR erasure's audit record: never the values that named the users."""

    request_id: str
    submitted_time: str | None
    received_at: int
    applied_at: int
    identity_types: list[str]
    users: int
    events: int


class Erasures(msgspec.Struct):
    erasures: list[Erasure]


class Status(msgspec.Struct):
    status: str


_RATE_HEADERS = {
    name: {"schema": {"type": "integer"}, "description": text}
    for name, text in (
        ("x-ratelimit-limit", "what the endpoint's rate limit allows per 60 s for this workspace"),
        ("x-ratelimit-remaining", "what it still allows in the current window"),
        ("x-ratelimit-reset", "seconds until the window allows the request"),
    )
}
_REQUEST_ID = {"X-Request-Id": {"schema": {"type": "string"}}}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}}}

#: Every error status of a `/v1` endpoint: the check table's, and trackd's 422.
FAILURES: dict[str, str] = {
    "400": "Rows 12, 14-25: a header, the body or a field is wrong (and strict-mode rejections)",
    "401": "Rows 2-5, 7, 8, 10: authentication failed",
    "403": "Row 11: the workspace is suspended",
    "409": "Rows 6, 9: path and credentials disagree, or the workspace has no key",
    "413": "Row 1: the body (declared, read or inflated) is over 131072 bytes",
    "415": "Row 13: not application/json, or an encoding other than gzip/identity",
    "422": "trackd: the Idempotency-Key was used before for another body or endpoint",
    "429": "Row 26: the workspace's {bucket} rate limit would be exceeded",
    "500": "Row 28: an unexpected failure; nothing was kept",
    "503": "Row 27: the durable queue cannot take the request; retry after Retry-After",
}
_REF = "#/components/schemas/{name}"
ERROR = ErrorBody.__name__


def _response(description: str, ref: str, headers: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": description,
        "headers": headers,
        "content": {"application/json": {"schema": {"$ref": _REF.format(name=ref)}}},
    }


def _with_schema(
    description: str, schema: dict[str, Any], headers: dict[str, Any]
) -> dict[str, Any]:
    return {
        "description": description,
        "headers": headers,
        "content": {"application/json": {"schema": schema}},
    }


_HEADERS = ("MOE-APPKEY", "X-Forwarded-For", "Content-Encoding", "Idempotency-Key")


def _parameter(name: str, where: str, required: bool | None = None) -> dict[str, Any]:
    required = where == "path" if required is None else required
    return {"name": name, "in": where, "required": required, "schema": {"type": "string"}}


def operation_ids(routes: Iterable[V1Route]) -> dict[str, str]:
    """Each pattern's operationId: its endpoint's name in camel case (``trackEvent``); a second
    row of the same endpoint (its `app_id` form) gets ``…WithAppId``."""
    ids: dict[str, str] = {}
    for route in routes:
        first, *rest = route.name.split()
        name = first.lower() + "".join(word.capitalize() for word in rest)
        if name in ids.values():
            name += "WithAppId" if route.workspace_from is WorkspaceFrom.QUERY else "ByPath"
        ids[route.pattern] = name
    return ids


def _v1(
    route: V1Route, operation_id: str, request: dict[str, Any], success: dict[str, Any]
) -> dict[str, Any]:
    answered = (
        "Answered" if route.respond is not None or route.kind is None else "Accepted and durable"
    )
    responses = {"200": _with_schema(answered, success, _RATE_HEADERS | _REQUEST_ID)}
    for status, text in FAILURES.items():
        extra = _RETRY_AFTER if status in ("429", "503") else {}
        text = text.format(bucket=route.bucket.value)
        shape = error_shapes(route)[status].__name__
        responses[status] = _response(text, shape, _RATE_HEADERS | _REQUEST_ID | extra)
    if route.workspace_from is WorkspaceFrom.PATH:
        where = [_parameter("workspace_id", "path"), _parameter("app_id", "query")]
    elif route.workspace_from is WorkspaceFrom.QUERY:
        where = [_parameter("app_id", "query", required=True)]
    else:  # Test connection: the MOE-APPKEY header, its key the body's app_secret
        where = []
    security: list[dict[str, list[str]]] = (
        [] if route.workspace_from is WorkspaceFrom.HEADER else [{"basic": []}]
    )
    return {
        "post": {
            "operationId": operation_id,
            "summary": f"{route.name} (MoEngage Data API)",
            "security": security,
            "parameters": [
                *where,
                _parameter("project_code", "query"),
                *(_parameter(n, "header") for n in _HEADERS),
            ],
            "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
            "responses": responses,
        }
    }


def error_shapes(route: V1Route) -> dict[str, type]:
    """Each error status's documented body: the contract's envelope, or the row's own (Delete
    User's 429 and 500, `contract.TitledErrorBody`)."""
    shapes: dict[str, type] = dict.fromkeys(FAILURES, ErrorBody)
    shapes["429"] = error_shape(route.rate_limited())
    shapes["500"] = error_shape(route.unexpected())
    return shapes


def v1_paths(routes: Iterable[V1Route], components: dict[str, Any]) -> dict[str, Any]:
    """The paths of `routes`; the schemas they name are added to `components`."""
    routes = list(routes)
    ids = operation_ids(routes)
    paths: dict[str, Any] = {}
    for route in routes:
        request, success = request_schema(route, components), success_schema(route, components)
        for shape in error_shapes(route).values():
            _schema_of(shape, components)
        paths[route.pattern] = _v1(route, ids[route.pattern], request, success)
    return paths


def _schema_of(body: Any, components: dict[str, Any]) -> dict[str, Any]:
    (schema,), found = msgspec.json.schema_components([body], ref_template=_REF)
    for name, value in found.items():
        if components.setdefault(name, value) != value:
            raise ValueError(f"two documented shapes are named {name}")
    return schema


def request_schema(route: V1Route, components: dict[str, Any]) -> dict[str, Any]:
    """`route.body`'s JSON Schema (any JSON object when it has none)."""
    if route.body is None:
        return {"type": "object"}
    return _schema_of(route.body, components)


def success_schema(route: V1Route, components: dict[str, Any]) -> dict[str, Any]:
    return _schema_of(route.success, components)


_READ_FAILURES: dict[str, str] = {
    "400": "A query parameter is not what the endpoint takes (InvalidParams)",
    "401": "Authentication failed (rows 2-5, 8, 10 of the check table, or a wrong admin token)",
    "403": "The Basic credentials are another workspace's",
    "404": "No such workspace (admin token), user, or endpoint",
    "409": "The workspace has no active key (row 9)",
}
_WORKSPACE = _parameter("workspace_id", "path")


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


_EVENT_FILTERS = [
    _query("customer_id", "only this user's events"),
    _query("action", "only events of this name"),
    _query("since", "event time at or after (epoch or ISO 8601)"),
    _query("until", "event time before (epoch or ISO 8601)"),
    _query(
        "limit",
        "events per page, 1-1000 (default 100)",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100},
    ),
    _query("cursor", "the previous page's next_cursor", {"type": "string", "pattern": "^[0-9]+$"}),
]


def _read(operation_id: str, summary: str, ref: str, extra: list[dict[str, Any]]) -> dict[str, Any]:
    responses = {"200": _response(summary, ref, _REQUEST_ID)}
    for status, text in _READ_FAILURES.items():
        responses[status] = _response(text, ERROR, _REQUEST_ID)
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "security": [{"basic": []}, {"admin": []}],
            "parameters": [_WORKSPACE, *extra],
            "responses": responses,
        }
    }


def _json(description: str, ref: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def _probe(description: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": description,
            "responses": {"200": _json("yes", "Status"), "503": _json("no", "Status")},
        }
    }


def _read_paths() -> dict[str, Any]:
    """The read API's rows (`trackd.edge.read.READ_ROUTES`), each with its parameters."""
    base = "/api/workspaces/{workspace_id}"
    paths = {}
    for route in READ_ROUTES:
        if route.operation_id == "streamEvents":
            paths[f"{base}/{route.path}"] = _live(route)
            continue
        parameters = [
            _parameter(segment[1:-1], "path")
            for segment in route.segments
            if segment.startswith("{")
        ]
        parameters += _READ_QUERIES.get(route.operation_id, [])
        paths[f"{base}/{route.path}"] = _read(
            route.operation_id, route.summary, route.shape, parameters
        )
    return paths


_REQUEST_FILTERS = [
    _query(
        "limit",
        "entries per page, 1-1000 (default 100)",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100},
    ),
    _query("before", "the previous page's next_cursor", {"type": "string", "pattern": "^[0-9]+$"}),
    _query(
        "status",
        "only this status (400) or class (4xx)",
        {"type": "string", "pattern": "^[1-5]([0-9]{2}|xx)$"},
    ),
    _query("since", "received at or after (epoch or ISO 8601)"),
]


#: The query parameters of the read API's rows, by operation id.
_READ_QUERIES: dict[str, list[dict[str, Any]]] = {
    "findUser": [
        _query("moengage_id", "the profile's moengage_id"),
        _query("identifier", "an identifier's name (with value)"),
        _query("value", "the identifier's value, compared as stored (normalised)"),
    ],
    "listEvents": _EVENT_FILTERS,
    "listIssues": [_query("since", "received at or after (epoch or ISO 8601)")],
    "listRequests": _REQUEST_FILTERS,
    "getActivity": [
        _query(
            "minutes",
            f"how many minutes back, 1-{MAX_MINUTES} (default 60)",
            {"type": "integer", "minimum": 1, "maximum": MAX_MINUTES, "default": 60},
        )
    ],
}


def _live(route: ReadRoute) -> dict[str, Any]:
    """`/live`: processed events as Server-Sent Events, resumable (`Last-Event-ID`)."""
    operation = _read(route.operation_id, route.summary, route.shape, [])
    get = operation["get"]
    get["parameters"] += [
        _query("customer_id", "only this user's events"),
        _query("action", "only events of this name"),
        _query("after", "resume after this seq", {"type": "string", "pattern": "^[0-9]+$"}),
        _parameter("Last-Event-ID", "header"),
    ]
    get["responses"]["200"] = {
        "description": "text/event-stream: `id: <seq>`, `event: event`, `data: <the event as"
        " /events shows it, with seq and warnings>`; it does not end while the client listens",
        "headers": _REQUEST_ID,
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
    return operation


#: The read API's and service routes' answers.
_READ_COMPONENTS: list[type[msgspec.Struct]] = [ErrorBody, User, EventPage, Schema, Issues, Stats]
_READ_COMPONENTS += [Status, RequestPage, Activity, Erasures]


def openapi_document(routes: Iterable[V1Route] = V1_ROUTES) -> dict[str, Any]:
    """The document of an app serving `routes` (`trackd.edge.app.TrackdApp`'s)."""
    components: dict[str, Any] = {}
    for shape in _READ_COMPONENTS:
        _schema_of(shape, components)
    v1 = v1_paths(routes, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "trackd",
            "version": __version__,
            "description": "A self-hosted server for MoEngage's Data API.",
        },
        "paths": {
            **v1,
            **_read_paths(),
            "/healthz": _probe("Alive while the process lives"),
            "/readyz": _probe(
                "Ready while this process keeps up (it sheds no load), the durable queue can take"
                " writes and the rate limiter answers"
            ),
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (with an admin token configured: Bearer it)",
                    "responses": {
                        "200": {
                            "description": "text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "401": _response(
                            "An admin token is configured and was not presented",
                            ERROR,
                            _REQUEST_ID,
                        ),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "admin": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the admin token (TRACKD_ADMIN_TOKEN): reads every workspace",
                },
            },
        },
    }
