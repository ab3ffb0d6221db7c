"""The records that cross trackd's seams: workspaces, the queue's envelope, warnings."""

from __future__ import annotations

import enum
from typing import Any

import msgspec

DEFAULT_RATE_LIMIT = 30_000  # events per 60 s, per workspace (REF §3)
DEFAULT_USER_RATE_LIMIT = 10_000
DEFAULT_MERGE_RATE_LIMIT = 1_000  # Merge Users: user updates (pairs) per 60 s (REF §3)
DEFAULT_CLOCK_SKEW = 300  # seconds an event may lie in the future (track-event.md §3)
# -- Track Device and Bulk Import (data-api.md §1, §2) --
DEFAULT_DEVICE_RATE_LIMIT = 10_000  # Track Device: device updates per 60 s (REF §3)
DEFAULT_BULK_USER_RATE_LIMIT = 60_000  # Bulk Import: users (and devices) per 60 s (REF §3)
DEFAULT_BULK_EVENT_RATE_LIMIT = 60_000  # Bulk Import: events per 60 s (REF §3)
# -- Delete User (data-api.md §4) --
DEFAULT_DELETE_RATE_LIMIT = 5_000  # Delete User: requests per 60 s (REF §3)
DEFAULT_DELETE_BUFFER = 86_400  # seconds between a Delete User and the hard delete (REF §6.5)
DEFAULT_EXPORT_RATE_LIMIT = 1_000  # Get User: users looked up per 60 s (REF §3)
DEFAULT_ERASURE_RATE_LIMIT = 1_000  # GDPR erasure: requests per 60 s [trackd: REF has none]


class Kind(enum.StrEnum):
    """What an accepted `/v1` request is: one per endpoint that queues envelopes. The edge's
    endpoint table (`trackd.edge.v1`) names it, the processor looks up its step by it."""

    EVENT = "event"  # Track Event, POST /v1/event/{ws}
    CUSTOMER = "customer"  # Track User, POST /v1/customer/{ws}
    MERGE = "merge"  # Merge Users, POST /v1/customer/merge?app_id={ws}
    # -- Track Device and Bulk Import (data-api.md §1, §2) --
    DEVICE = "device"  # Track Device, POST /v1/device/{ws}
    BULK = "transition"  # Bulk Import, POST /v1/transition/{ws}: elements of the kinds above
    # -- Delete User (data-api.md §4) --
    DELETE = "delete"  # Delete User, POST /v1/customer/delete?app_id={ws}
    ERASE = "erase"  # GDPR erasure, POST /v1/opengdpr_requests/{ws} (data-api.md §6)


#: Path words of MoEngage's Data API (`/v1/customer/merge`, `…/delete`, `/v1/customers/export`):
#: never workspace ids, so a route is never mistaken for a workspace (data-api.md §0).
ROUTE_WORDS = frozenset({"merge", "delete", "export"})


class Workspace(msgspec.Struct, frozen=True, kw_only=True):
    """A workspace as every edge process caches it."""

    id: str
    name: str
    key_hash: str | None  # sha256 hex of the Data API key; None: no active key (row 9)
    suspended: bool = False
    rate_limit: int = DEFAULT_RATE_LIMIT
    user_rate_limit: int = DEFAULT_USER_RATE_LIMIT  # Track User updates per 60 s (REF §3)
    portfolio: bool = False
    strict: bool = False
    identity_resolution: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    timezone_offset: int = 0
    clock_skew: int = DEFAULT_CLOCK_SKEW
    created_at: float = 0.0
    merge_rate_limit: int = DEFAULT_MERGE_RATE_LIMIT  # Merge Users pairs per 60 s (REF §3)
    # -- Track Device and Bulk Import (data-api.md §1, §2) --
    device_rate_limit: int = DEFAULT_DEVICE_RATE_LIMIT
    bulk_user_rate_limit: int = DEFAULT_BULK_USER_RATE_LIMIT
    bulk_event_rate_limit: int = DEFAULT_BULK_EVENT_RATE_LIMIT
    # -- Delete User (data-api.md §4) --
    delete_rate_limit: int = DEFAULT_DELETE_RATE_LIMIT
    delete_buffer: int = DEFAULT_DELETE_BUFFER  # seconds; 0: hard delete at once
    export_rate_limit: int = DEFAULT_EXPORT_RATE_LIMIT  # Get User (data-api.md §5)
    erasure_rate_limit: int = DEFAULT_ERASURE_RATE_LIMIT  # GDPR erasure (data-api.md §6)


class Warning(msgspec.Struct, frozen=True, omit_defaults=True):
    """Something the edge dropped, cut or rewrote inside an accepted request."""

    index: int
    reason: str
    attribute: str | None = None
    # -- Bulk Import (data-api.md §2): an `invalid_element`'s kind and its endpoint's 400 --
    type: str | None = None
    message: str | None = None


class Action(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One validated, normalised action: it becomes one event with a stable id."""

    index: int  # position in the request's `actions`, kept for event ids and issues
    action: str
    attributes: dict[str, Any]
    platform: str = "unknown"
    platform_raw: str | None = None
    app_version: str | None = None
    current_time: int  # epoch milliseconds, UTC
    user_time: int  # epoch milliseconds of the user's wall clock
    user_timezone_offset: int  # seconds
    moe_os_type: str | None = None
    real_time_action: str | None = None


class MergePair(msgspec.Struct, frozen=True, array_like=True):
    """One element of Merge Users' `merge_data`: `merged_user` goes into `retained_user`."""

    merged_user: str
    retained_user: str


# -- Track Device (data-api.md §1) --
#: The device attributes Track Device keeps (REF §6.3), beside `platform` and `app_version`,
#: which are columns of the device.
DEVICE_ATTRIBUTES = (
    "push_id", "model", "moe_push_opted", "moe_push_provisional_opted", "os_version",
    "moe_gaid", "idfv",
)  # fmt: skip
#: The attributes that name a device: another device of the user with one of them equal is
#: replaced by the one sent (REF §6.3).
DEVICE_IDENTIFIERS = ("moe_gaid", "idfv", "push_id")


class Device(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Track Device's validated device: what the processor stores on the user, if it exists."""

    device_id: str
    platform: str  # ANDROID, iOS, web or TV
    app_version: str | None = None
    attributes: dict[str, Any] = {}  # of `DEVICE_ATTRIBUTES`, push_id always


# -- Delete User (data-api.md §4) --
class UserDelete(msgspec.Struct, frozen=True, kw_only=True):
    """Delete User's validated request: the user named, and when it is hard-deleted."""

    identity_type: str  # "customer_id" or "moengage_id"
    identity_value: str
    buffer_ms: int  # the workspace's delete buffer when the request was accepted


# -- GDPR erasure (data-api.md §6) --
class Erasure(msgspec.Struct, frozen=True, kw_only=True):
    """GDPR erasure's validated request: the identities (type, value), as sent."""

    identities: list[tuple[str, str]]
    submitted_time: str | None = None


# -- Get User (data-api.md §5) --
class UserLookup(msgspec.Struct, frozen=True, kw_only=True):
    """Get User's validated request: the users named, as sent, and the fields asked for."""

    identifiers: list[tuple[str, str]]  # (identifier_type, identifier), as sent
    fields: list[str] | None  # `user_fields_to_export`; None: every attribute


class Envelope(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What the edge appends to the durable queue for one accepted request."""

    request_id: str
    workspace_id: str
    received_at: int  # epoch milliseconds
    customer_id: str | None
    device_id: str | None
    actions: list[Action]
    kind: Kind = Kind.EVENT
    project_code: str | None = None
    client_ip: str | None = None
    user_identifiers: dict[str, str] | None = None
    warnings: list[Warning] = []
    #: Track User (`Kind.CUSTOMER`) only: the attributes to set on the profile.
    user_attributes: dict[str, Any] | None = None
    update_existing_only: bool = False

    #: Actions as sent (kept or dropped): what the rate limit and the stats count.
    event_count: int = 0

    #: Merge Users (`Kind.MERGE`) only: the pairs, in the order sent.
    merges: list[MergePair] | None = None

    # -- Track Device and Bulk Import (data-api.md §1, §2) --
    #: Track Device (`Kind.DEVICE`) only: the device.
    device: Device | None = None
    #: Bulk Import (`Kind.BULK`) only: its valid elements, in order, each as the envelope its
    #: own endpoint would have queued (their request id, workspace and receive time this one's).
    elements: list[Envelope] | None = None
    # -- Delete User (data-api.md §4) --
    #: Delete User (`Kind.DELETE`) only: the user and the buffer.
    delete: UserDelete | None = None
    #: GDPR erasure (`Kind.ERASE`) only: the identities.
    erasure: Erasure | None = None

    def encode(self) -> bytes:
        return _encoder.encode(self)

    @staticmethod
    def decode(raw: bytes) -> Envelope:
        return _decoder.decode(raw)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Envelope)


class EventRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One stored event, as the read API shows it (times in epoch ms)."""

    event_id: str
    request_id: str
    action: str
    attributes: dict[str, Any]
    platform: str
    platform_raw: str | None
    app_version: str | None
    user_time: int
    current_time: int
    user_timezone_offset: int
    received_at: int
    client_ip: str | None
    device_id: str | None
    project_code: str | None
    moe_os_type: str | None = None


class IssueRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Something dropped, cut or rewritten, with where it was."""

    request_id: str
    index: int
    reason: str
    attribute: str | None
    at: int  # receive time, epoch ms


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """What one envelope does to the store; built by `trackd.processor.plan`, applied whole."""

    request_id: str
    workspace_id: str
    kind: Kind
    customer_id: str | None
    identifiers: dict[str, str] | None
    device_id: str | None
    received_at: int
    client_ip: str | None
    events: list[EventRecord]
    schema: list[tuple[str, str, str]]  # (action, attribute, inferred type); attribute "" = event
    issues: list[IssueRecord]
    dropped_events: int
    user_attributes: dict[str, Any] | None = None
    update_existing_only: bool = False
    merges: list[MergePair] | None = None  # Merge Users only
    # -- Track Device and Bulk Import (data-api.md §1, §2) --
    device: Device | None = None  # Track Device only
    parts: list[Plan] | None = None  # Bulk Import only: its elements' plans, in order
    # -- Delete User (data-api.md §4) --
    delete: UserDelete | None = None  # Delete User only
    erasure: Erasure | None = None  # GDPR erasure only


# -- Request log (issue 13 item 1) --


class RequestError(msgspec.Struct, frozen=True, omit_defaults=True):
    """The contract error a rejected request was answered with (`wire.contract.error_body`)."""

    type: str
    message: str
    attribute: str | None = None


class RequestEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One `/v1` request to a known workspace, as the edge records it (`trackd.edge.request_log`)
    and the request log keeps it. `body` and `headers` only for a rejected request that passed
    authentication: `body` its first bytes (at most `REQUEST_BODY_BYTES`, cut on a character
    boundary), `headers` with Authorization redacted."""

    workspace_id: str
    at: int  # epoch ms, when it was received
    endpoint: str  # the V1Route's name: "Track Event"
    method: str
    path: str  # as sent, with its query string
    status: int
    request_id: str
    client_ip: str | None = None
    user_agent: str | None = None
    event_count: int = 0
    customer_id: str | None = None
    warnings: list[Warning] = []
    error: RequestError | None = None
    headers: dict[str, str] | None = None
    body: bytes | None = None
    body_truncated: bool = False


#: How much of a rejected request's body the request log keeps.
REQUEST_BODY_BYTES = 16384
