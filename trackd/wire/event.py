"""Validation of a Track Event body: contract rows 16-25, then §3 times and §4 names and values.

`validate_event` is a pure function of the decoded JSON, the workspace and the receive time. It
raises the contract's `ContractError` for the first failing row (each row checked over the whole
request before the next), and otherwise returns the normalised actions with the warnings for
everything it dropped, cut or rewrote. In a strict workspace the first warning becomes a 400.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from trackd.errors import ContractError
from trackd.models import (
    Action,
    Device,
    Erasure,
    Kind,
    MergePair,
    UserDelete,
    UserLookup,
    Warning,
    Workspace,
)
from trackd.wire import contract, times, values

PLATFORMS = {p.lower(): p for p in ("ANDROID", "iOS", "web", "TV", "unknown")}
_EXACT_PLATFORMS = {p: p for p in PLATFORMS.values()}

#: customer_id values MoEngage does not allow (REF §5), compared case-insensitively.
DISALLOWED_CUSTOMER_IDS = frozenset(
    {
        "unknown", "guest", "null", "0", "1", "true", "false", "user_attribute_unique_id",
        "(empty)", "na", "n/a", "", "dummy_seller_code", "user_id", "id", "customer_id", "uid",
        "userid", "none", "-2", "-1", "2",
    }
)  # fmt: skip


#: The longest customer_id, identifier value and device_id accepted, in characters [trackd:
#: MoEngage documents none]. Every accepted id must read back through `/api/.../users/{id}`:
#: at most 9 bytes a character once percent-encoded, 512 stay within the 8 KB request line.
MAX_ID_LENGTH = 512


class Validated(msgspec.Struct, frozen=True):
    customer_id: str | None
    device_id: str | None
    user_identifiers: dict[str, str] | None
    actions: list[Action]
    warnings: list[Warning]
    event_count: int  # actions as sent: what the rate limit counts
    user_attributes: dict[str, Any] | None = None  # Track User only
    update_existing_only: bool = False  # Track User only
    merges: list[MergePair] | None = None  # Merge Users only
    # -- Track Device and Bulk Import (data-api.md §1, §2) --
    device: Device | None = None  # Track Device only
    #: Bulk Import only: its valid elements, in order, as their own endpoints validated them.
    elements: list[tuple[Kind, Validated]] | None = None
    #: Bulk Import only: the user updates it costs (its valid customer and device elements);
    #: `event_count` is its valid event elements' actions.
    users: int = 0
    # -- Delete User (data-api.md §4) --
    delete: UserDelete | None = None  # Delete User only
    lookup: UserLookup | None = None  # Get User only (answered, never queued)
    erasure: Erasure | None = None  # GDPR erasure only


def validate_event(
    payload: Any, workspace: Workspace, project_code: str | None, received_ms: int
) -> Validated:
    if not isinstance(payload, dict):
        raise contract.not_an_object()  # row 16
    check_type(payload, "event")  # row 17
    check_project(workspace, project_code)  # row 18
    customer_id, identifiers = _check_customer(payload, workspace)  # rows 19-20
    raw_actions = _check_actions(payload)  # rows 21-24
    parsed_times = [_check_times(a) for a in raw_actions]  # row 25

    warnings: list[Warning] = []
    device_id = _device_id(payload, customer_id, len(raw_actions), warnings)
    disallowed = customer_id is not None and customer_id.lower() in DISALLOWED_CUSTOMER_IDS
    actions: list[Action] = []
    for index, (raw, parsed) in enumerate(zip(raw_actions, parsed_times, strict=True)):
        if disallowed:
            warnings.append(Warning(index, "customer_id_disallowed"))
            continue
        action = _normalise(index, raw, parsed, workspace, received_ms, warnings)
        if action is not None:
            actions.append(action)
    if workspace.strict and warnings:
        raise strict_error(warnings[0])
    return Validated(customer_id, device_id, identifiers, actions, warnings, len(raw_actions))


# -- the typed fast path ------------------------------------------------------------------------
#
# Most bodies are plain: string names and ids, short scalar or string-array attributes, epoch or
# ISO times. msgspec checks that shape in C while it decodes, so such a body skips the generic
# walk above. Anything else (a wrong type, a null attribute, a long value, a nested object, a
# mixed array, a number where a string is usual) fails the typed decode and takes the generic
# path, which alone decides every error and every warning that needs a closer look. Both paths
# give the same `Validated` for a body the typed decode accepts (tests/wire/test_event_typed.py).

_Value = Annotated[str, msgspec.Meta(max_length=values.MAX_VALUE)]
#: A longer name is cut and may collide with another (`values.clean_attributes` decides): such a
#: body always takes the generic path.
_Name = Annotated[str, msgspec.Meta(max_length=values.MAX_NAME)]
_Array = Annotated[list[_Value], msgspec.Meta(max_length=values.MAX_ARRAY)]
_Attributes = Annotated[
    dict[_Name, _Value | int | float | bool | _Array],
    msgspec.Meta(max_length=values.MAX_ATTRIBUTES),
]


#: An epoch in range (row 25): seconds below `times.MS_THRESHOLD`, milliseconds from it on; a
#: negative or too large one fails the typed decode, and the generic path says why.
_Epoch = Annotated[int, msgspec.Meta(ge=0, le=times.MAX_MS)]
_Offset = Annotated[int, msgspec.Meta(ge=-times.MAX_OFFSET, le=times.MAX_OFFSET)]


class _TypedAction(msgspec.Struct):
    action: Annotated[str, msgspec.Meta(min_length=1)]
    attributes: _Attributes | None = None
    platform: str | None = None
    app_version: str | None = None
    user_time: _Epoch | str | None = None
    current_time: _Epoch | str | None = None
    user_timezone_offset: _Offset | None = None
    moe_os_type: str | None = None
    real_time_action: str | None = None


class _TypedEvent(msgspec.Struct):
    type: Literal["event"]
    actions: Annotated[list[_TypedAction], msgspec.Meta(min_length=1)]
    customer_id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)] | None = None
    device_id: Annotated[str, msgspec.Meta(max_length=MAX_ID_LENGTH)] | None = None
    user_identifiers: dict[str, Any] | None = None


_decode_typed = msgspec.json.Decoder(_TypedEvent).decode


def _maybe_reserved(attributes: dict[str, Any]) -> bool:
    """Whether a name might carry the reserved prefix: one scan in C instead of one per name
    (a false alarm, a NUL inside a name, only costs the closer look)."""
    return bool(attributes) and "\0moe_" in ("\0" + "\0".join(attributes)).lower()


def decode_event(
    body: bytes, workspace: Workspace, project_code: str | None, received_ms: int
) -> Validated | None:
    """`validate_event` of a plain body, decoded and checked in one step; None: not plain.

    A None sends the request down the generic path (`msgspec.json.decode`, `validate_event`),
    which raises the contract's error if there is one."""
    try:
        payload = _decode_typed(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    if workspace.portfolio:
        check_project(workspace, project_code)  # row 18, as the generic path would
    identifiers = _usable_identifiers(payload.user_identifiers, workspace) or None
    customer_id = payload.customer_id
    if customer_id is None and not identifiers:
        return None  # row 19
    raw_actions = payload.actions
    try:
        parsed_times = [_typed_times(a) for a in raw_actions]
    except ContractError:
        return None  # row 25
    warnings: list[Warning] = []
    device_id = customer_id if not payload.device_id else payload.device_id
    if customer_id is not None and customer_id.lower() in DISALLOWED_CUSTOMER_IDS:
        return None  # every action dropped: the generic path says so
    actions: list[Action] = []
    for index, (raw, parsed) in enumerate(zip(raw_actions, parsed_times, strict=True)):
        attributes = raw.attributes or {}
        action = normalise(
            index,
            raw.action,
            attributes,
            raw.platform,
            (raw.app_version, raw.moe_os_type, raw.real_time_action),
            parsed,
            workspace,
            received_ms,
            warnings,
            attributes_plain=not _maybe_reserved(attributes),
        )
        if action is not None:
            actions.append(action)
    if workspace.strict and warnings:
        raise strict_error(warnings[0])
    return Validated(customer_id, device_id, identifiers, actions, warnings, len(raw_actions))


def _typed_times(action: _TypedAction) -> Times:
    """`check_times` of a typed action, whose epochs and offset msgspec already bounded: an
    epoch only needs seconds made milliseconds (`times.parse_time` of an int in range), and
    only texts are parsed (`times.parse_text`, which remembers the ones it saw lately)."""
    user = action.user_time
    if isinstance(user, str):
        user = times.parse_text(user)
        if user is None:
            raise contract.expected("user_time", times.TIME_EXPECTED)
    elif user is not None:
        user = user if user >= times.MS_THRESHOLD else user * 1000
    current = action.current_time
    if isinstance(current, str):
        current = times.parse_text(current)
        if current is None:
            raise contract.expected("current_time", times.TIME_EXPECTED)
    elif current is not None:
        current = current if current >= times.MS_THRESHOLD else current * 1000
    return user, current, action.user_timezone_offset


def check_type(payload: dict[str, Any], expected: str) -> None:
    if "type" not in payload:
        raise contract.type_missing()
    if payload["type"] != expected:
        raise contract.type_not_event(expected)


def check_project(workspace: Workspace, project_code: str | None) -> None:
    """Row 18: Portfolio workspaces need a known `project_code` query parameter."""
    if not workspace.portfolio:
        return
    if not project_code:
        raise contract.project_code_required()
    if project_code not in workspace.projects:
        raise contract.project_code_invalid()


def check_id(item: dict[str, Any], field: str) -> str:
    """A required id of a Data API body (Merge's users, Delete's, Get User's and an erasure's
    values): present (``… is not found in the payload``), a string (``… is expected to be
    String or Unicode String.``, REF §2.3), not empty (``… can not be empty Unicode String``),
    at most `MAX_ID_LENGTH` characters (as `customer_id`)."""
    value = item.get(field)
    if value is None:
        raise contract.not_found(field)
    if not isinstance(value, str):
        raise contract.not_a_string(field)
    if not value:
        raise contract.empty_string(field)
    if len(value) > MAX_ID_LENGTH:
        raise contract.id_too_long(field, MAX_ID_LENGTH)
    return value


def check_customer_id(payload: dict[str, Any]) -> str | None:
    """Row 20 for a present `customer_id`; None when it is absent or null."""
    value = payload.get("customer_id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise contract.customer_id_not_string()
    text = str(value)
    if not text:
        raise contract.customer_id_empty()
    if len(text) > MAX_ID_LENGTH:
        raise contract.id_too_long("customer_id", MAX_ID_LENGTH)
    return text


def _check_customer(
    payload: dict[str, Any], workspace: Workspace
) -> tuple[str | None, dict[str, str] | None]:
    identifiers = _usable_identifiers(payload.get("user_identifiers"), workspace)
    if payload.get("customer_id") is None and not identifiers:
        raise contract.not_found("customer_id")  # row 19
    return check_customer_id(payload), identifiers or None


def _usable_identifiers(raw: Any, workspace: Workspace) -> dict[str, str]:
    """In an Identity Resolution workspace, the configured identifiers with non-blank values."""
    if not workspace.identity_resolution or not isinstance(raw, dict):
        return {}
    usable = {
        name: str(raw[name])
        for name in workspace.identity_resolution
        if isinstance(raw.get(name), str | int)
        and not isinstance(raw.get(name), bool)
        and str(raw[name]).strip()
    }
    for name, value in usable.items():
        if len(value) > MAX_ID_LENGTH:
            raise contract.id_too_long(f"user_identifiers.{name}", MAX_ID_LENGTH)
    return usable


def _check_actions(payload: dict[str, Any]) -> list[dict[str, Any]]:
    actions = payload.get("actions")
    if actions is None:
        raise contract.not_found("actions")  # row 21
    if not isinstance(actions, list):
        raise contract.actions_not_array()
    if not actions:
        raise contract.actions_empty()
    if not all(isinstance(a, dict) for a in actions):
        raise contract.malformed_json("actions")  # row 22 (rows 17-25 carry "attribute")
    for a in actions:  # row 23
        if a.get("action") is None:
            raise contract.not_found("action")
        if not isinstance(a["action"], str):
            raise contract.malformed_json("action")
        if not a["action"]:
            raise contract.action_empty()
    for a in actions:  # row 24
        if a.get("attributes") is not None and not isinstance(a["attributes"], dict):
            raise contract.attributes_not_object()
    return actions


Times = tuple[int | None, int | None, int | None]


def _check_times(action: dict[str, Any]) -> Times:
    """Row 25: present time fields must parse; null counts as absent."""
    return check_times(
        action.get("user_time"), action.get("current_time"), action.get("user_timezone_offset")
    )


def check_times(user_time: Any, current_time: Any, raw_offset: Any) -> Times:
    """Row 25 on the three raw values: epoch milliseconds, epoch milliseconds, seconds."""
    user_ms = None if user_time is None else _time(user_time, "user_time")
    current_ms = None if current_time is None else _time(current_time, "current_time")
    if raw_offset is None:
        return user_ms, current_ms, None
    offset = times.parse_offset(raw_offset)
    if offset is None:
        raise contract.expected("user_timezone_offset", times.OFFSET_EXPECTED)
    return user_ms, current_ms, offset


def _time(value: Any, field: str) -> int:
    ms = times.parse_time(value)
    if ms is None:
        raise contract.expected(field, times.TIME_EXPECTED)
    return ms


def _device_id(
    payload: dict[str, Any], customer_id: str | None, count: int, warnings: list[Warning]
) -> str | None:
    value = payload.get("device_id")
    if value is None or value == "":
        return customer_id
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        if len(str(value)) > MAX_ID_LENGTH:
            raise contract.id_too_long("device_id", MAX_ID_LENGTH)
        return str(value)
    warnings.extend(Warning(i, "invalid_type", "device_id") for i in range(count))
    return customer_id


def _normalise(
    index: int,
    raw: dict[str, Any],
    parsed: Times,
    workspace: Workspace,
    received_ms: int,
    warnings: list[Warning],
) -> Action | None:
    return normalise(
        index,
        raw["action"],
        raw.get("attributes") or {},
        raw.get("platform"),
        (raw.get("app_version"), raw.get("moe_os_type"), raw.get("real_time_action")),
        parsed,
        workspace,
        received_ms,
        warnings,
    )


def normalise(
    index: int,
    name: str,
    raw_attributes: dict[str, Any],
    raw_platform: Any,
    texts: tuple[Any, Any, Any],
    parsed: Times,
    workspace: Workspace,
    received_ms: int,
    warnings: list[Warning],
    attributes_plain: bool = False,
) -> Action | None:
    """One checked action as it is stored, or None when it is dropped whole (with its warning).

    `texts` holds the raw `app_version`, `moe_os_type` and `real_time_action`;
    `attributes_plain` says the typed decode found nothing in the attributes to clean."""
    if name[3:4] == "_" and values.is_reserved(name):
        warnings.append(Warning(index, "reserved_prefix"))
        return None
    user_time, current_time, offset = times.resolve(*parsed, received_ms, workspace.timezone_offset)
    if current_time > received_ms + workspace.clock_skew * 1000:
        warnings.append(Warning(index, "future_dated"))
        return None
    problems: list[values.Problem] = []
    if len(name) > values.MAX_NAME:
        name = values.clean_name(name, problems, "action")
    if attributes_plain:
        attributes = raw_attributes
    else:
        attributes, attribute_problems = values.clean_attributes(raw_attributes)
        problems.extend(attribute_problems)
    platform, platform_raw = _platform(raw_platform, problems)
    app_version = _optional_text(texts[0], "app_version", problems)
    moe_os_type = _optional_text(texts[1], "moe_os_type", problems)
    real_time_action = _optional_text(texts[2], "real_time_action", problems)
    if problems:
        warnings.extend(Warning(index, reason, attribute) for attribute, reason in problems)
    return Action(
        index=index,
        action=name,
        attributes=attributes,
        platform=platform,
        platform_raw=platform_raw,
        app_version=app_version,
        current_time=current_time,
        user_time=user_time,
        user_timezone_offset=offset,
        moe_os_type=moe_os_type,
        real_time_action=real_time_action,
    )


def _platform(raw: Any, problems: list[values.Problem]) -> tuple[str, str | None]:
    """Case-insensitive match; anything else is stored as unknown with the raw value kept."""
    if raw is None or raw == "":
        return "unknown", None
    canonical = None
    if isinstance(raw, str):
        canonical = _EXACT_PLATFORMS.get(raw) or PLATFORMS.get(raw.lower())
    if canonical is not None:
        return canonical, None
    problems.append(("platform", "unknown_platform"))
    return "unknown", raw if isinstance(raw, str) else msgspec.json.encode(raw).decode()


def _optional_text(value: Any, field: str, problems: list[values.Problem]) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    problems.append((field, "invalid_type"))
    return None


_WHOLE_EVENT_FIELDS = {
    "reserved_prefix": "action",
    "future_dated": "current_time",
    "customer_id_disallowed": "customer_id",
}


def strict_error(first: Warning) -> Exception:
    """Strict mode's 400 for the first warning, naming its field."""
    attribute = first.attribute or _WHOLE_EVENT_FIELDS.get(first.reason, "action")
    return contract.strict_violation(attribute, first.reason)


# -- the documented body (V1Route.body: /openapi.json is generated from it) ---------------------
#
# What rows 16-25 accept, so that a request generated from the schema is one the checks accept.
# Not the typed fast path's `_TypedEvent`: that is the narrower shape that skips the generic walk
# (a nested attribute or a long value is accepted too, with a warning).

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
#: A customer_id, identifier or other id as rows 19-20 take it.
Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
_DIGITS = "[0-9]"  # ASCII digits, as the server reads them (Python's \d is Unicode's)
_TIME_TEXT = (
    r"^\s*(D{1,16}(\.D{1,9})?|D{4}-D{2}-D{2}[Tt ]D{2}:D{2}(:D{2}([.,]D{1,9})?)?"
    r"([Zz]|[+-]D{2}:?D{2})?)\s*$"
).replace("D", _DIGITS)
#: A time as row 25 takes it (§3): epoch seconds or milliseconds, or ISO 8601 text.
Time = (
    Annotated[int, msgspec.Meta(ge=0, le=times.MAX_MS)]
    | Annotated[float, msgspec.Meta(ge=0, le=times.MAX_MS)]
    | Annotated[str, msgspec.Meta(pattern=_TIME_TEXT)]
)
Offset = Annotated[int, msgspec.Meta(ge=-times.MAX_OFFSET, le=times.MAX_OFFSET)]


class EventAction(msgspec.Struct, omit_defaults=True):
    """One event. Unknown keys are ignored."""

    action: NonEmpty
    attributes: dict[str, Any] | None = None
    platform: str | None = None
    app_version: str | None = None
    user_time: Time | None = None
    current_time: Time | None = None
    user_timezone_offset: Offset | None = None
    moe_os_type: str | None = None
    real_time_action: str | None = None


class TrackEventBody(msgspec.Struct, omit_defaults=True, tag_field="type", tag="event"):
    """MoEngage's Track Event body (`POST /v1/event/{workspace_id}`, REF §1.2), `type`
    ``"event"``: a `customer_id`, or (Identity Resolution workspaces only) `user_identifiers`."""

    actions: Annotated[list[EventAction], msgspec.Meta(min_length=1)]
    customer_id: Identifier | int | msgspec.UnsetType = msgspec.UNSET  # null counts as absent
    device_id: Annotated[str, msgspec.Meta(max_length=MAX_ID_LENGTH)] | None = None
    user_identifiers: dict[str, str] | None = None


#: `TrackEventBody` with row 19 (a customer_id or user_identifiers) in its schema.
TrackEventRequest = Annotated[
    TrackEventBody,
    msgspec.Meta(
        extra_json_schema={
            "anyOf": [{"required": ["customer_id"]}, {"required": ["user_identifiers"]}]
        }
    ),
]
