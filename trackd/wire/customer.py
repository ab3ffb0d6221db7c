"""Validation of a Track User body (`POST /v1/customer/{workspace_id}`, REF §6.1).

The same error envelope and checks as Track Event where they apply: `type` must be
``"customer"``, `customer_id` as in rows 19-20, `attributes` an object (row 24). Attribute names
and values follow §4; MoEngage's standard `moe_` user attributes are allowed, and the blocked
names ``id``, ``_id`` and ``""`` are dropped (`reserved_name`). `platforms` may sit at the top level
or inside `attributes`; either way it is stored as the `platforms` attribute.
"""

from __future__ import annotations

from typing import Any

import msgspec

from trackd.models import Warning, Workspace
from trackd.wire import contract
from trackd.wire.event import (
    DISALLOWED_CUSTOMER_IDS,
    Identifier,
    Validated,
    check_customer_id,
    check_project,
    check_type,
    strict_error,
)
from trackd.wire.values import clean_attributes

#: MoEngage's standard user attributes that carry the system prefix (REF §6.1).
STANDARD_MOE_ATTRIBUTES = frozenset(
    {
        "moe_unsubscribe", "moe_spam", "moe_hard_bounce", "moe_sms_subscription",
        "moe_wa_subscription", "moe_email_optin_status", "moe_gaid",
    }
)  # fmt: skip
BLOCKED_NAMES = frozenset({"id", "_id", ""})


def validate_customer(
    payload: Any, workspace: Workspace, project_code: str | None, received_ms: int
) -> Validated:
    if not isinstance(payload, dict):
        raise contract.not_an_object()
    check_type(payload, "customer")
    check_project(workspace, project_code)
    if payload.get("customer_id") is None:
        raise contract.not_found("customer_id")
    customer_id = check_customer_id(payload)
    raw = payload.get("attributes")
    if raw is not None and not isinstance(raw, dict):
        raise contract.attributes_not_object()
    attributes: dict[str, Any] | None
    attributes, warnings = _clean(dict(raw or {}), payload.get("platforms"))
    if customer_id is not None and customer_id.lower() in DISALLOWED_CUSTOMER_IDS:
        warnings.append(Warning(0, "customer_id_disallowed"))
        attributes = None  # no profile for a disallowed id
    if workspace.strict and warnings:
        raise strict_error(warnings[0])
    return Validated(
        customer_id=customer_id,
        device_id=None,
        user_identifiers=None,
        actions=[],
        warnings=warnings,
        event_count=1,
        user_attributes=attributes,
        update_existing_only=payload.get("update_existing_only") is True,
    )


def _clean(raw: dict[str, Any], platforms: Any) -> tuple[dict[str, Any], list[Warning]]:
    if platforms is not None and "platforms" not in raw:
        raw["platforms"] = platforms
    standard = {k: raw.pop(k) for k in list(raw) if k in STANDARD_MOE_ATTRIBUTES}
    warnings = [Warning(0, "reserved_name", k) for k in list(raw) if k in BLOCKED_NAMES]
    for name in BLOCKED_NAMES:
        raw.pop(name, None)
    attributes, problems = clean_attributes(raw)
    warnings.extend(Warning(0, reason, attribute) for attribute, reason in problems)
    attributes.update({k: v for k, v in standard.items() if v is not None})
    return attributes, warnings


class TrackUserBody(msgspec.Struct, omit_defaults=True, tag_field="type", tag="customer"):
    """MoEngage's Track User body (`POST /v1/customer/{workspace_id}`, REF §6.1), `type`
    ``"customer"``: creates or updates the user. Unknown keys are ignored."""

    customer_id: Identifier | int
    attributes: dict[str, Any] | None = None
    platforms: list[dict[str, Any]] | None = None
    update_existing_only: bool | None = None
