"""Validation of a Track Event body: contract rows 16-25, then §3 times and §4 names and values.

`validate_event` is a pure function of the decoded JSON, the workspace and the receive time. It
raises the contract's `ContractError` for the first failing row (each row checked over the whole
request before the next), and otherwise returns the normalised actions with the warnings for
everything it dropped, cut or rewrote. In a strict workspace the first warning becomes a 400.
"""

from __future__ import annotations

from typing import Any

import msgspec

from trackd.models import Action, Warning, Workspace
from trackd.wire import contract, times, values

PLATFORMS = {p.lower(): p for p in ("ANDROID", "iOS", "web", "TV", "unknown")}

#: customer_id values MoEngage does not allow (REF §5), compared case-insensitively.
DISALLOWED_CUSTOMER_IDS = frozenset(
    {
        "unknown", "guest", "null", "0", "1", "true", "false", "user_attribute_unique_id",
        "(empty)", "na", "n/a", "", "dummy_seller_code", "user_id", "id", "customer_id", "uid",
        "userid", "none", "-2", "-1", "2",
    }
)  # fmt: skip


class Validated(msgspec.Struct, frozen=True):
    customer_id: str | None
    device_id: str | None
    user_identifiers: dict[str, str] | None
    actions: list[Action]
    warnings: list[Warning]
    event_count: int  # actions as sent: what the rate limit counts
    user_attributes: dict[str, Any] | None = None  # Track User only
    update_existing_only: bool = False  # Track User only


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
    return {
        name: str(raw[name])
        for name in workspace.identity_resolution
        if isinstance(raw.get(name), str | int)
        and not isinstance(raw.get(name), bool)
        and str(raw[name]).strip()
    }


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
    parsed: list[int | None] = []
    for field in ("user_time", "current_time"):
        value = action.get(field)
        ms = None if value is None else times.parse_time(value)
        if value is not None and ms is None:
            raise contract.expected(field, times.TIME_EXPECTED)
        parsed.append(ms)
    raw_offset = action.get("user_timezone_offset")
    offset = None if raw_offset is None else times.parse_offset(raw_offset)
    if raw_offset is not None and offset is None:
        raise contract.expected("user_timezone_offset", times.OFFSET_EXPECTED)
    return parsed[0], parsed[1], offset


def _device_id(
    payload: dict[str, Any], customer_id: str | None, count: int, warnings: list[Warning]
) -> str | None:
    value = payload.get("device_id")
    if value is None or value == "":
        return customer_id
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
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
    name = raw["action"]
    if values.is_reserved(name):
        warnings.append(Warning(index, "reserved_prefix"))
        return None
    user_time, current_time, offset = times.resolve(*parsed, received_ms, workspace.timezone_offset)
    if current_time > received_ms + workspace.clock_skew * 1000:
        warnings.append(Warning(index, "future_dated"))
        return None
    problems: list[values.Problem] = []
    name = values.clean_name(name, problems, "action")
    attributes, attribute_problems = values.clean_attributes(raw.get("attributes") or {})
    problems.extend(attribute_problems)
    platform, platform_raw = _platform(raw.get("platform"), problems)
    app_version = _optional_text(raw, "app_version", problems)
    moe_os_type = _optional_text(raw, "moe_os_type", problems)
    real_time_action = _optional_text(raw, "real_time_action", problems)
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
    canonical = PLATFORMS.get(raw.lower()) if isinstance(raw, str) else None
    if canonical is not None:
        return canonical, None
    problems.append(("platform", "unknown_platform"))
    return "unknown", raw if isinstance(raw, str) else msgspec.json.encode(raw).decode()


def _optional_text(raw: dict[str, Any], field: str, problems: list[values.Problem]) -> str | None:
    value = raw.get(field)
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
