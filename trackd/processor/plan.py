"""From an envelope to the `Plan` a store applies: pure, so reprocessing plans the same thing.

Event ids are ``{request_id}-{index}``: stable across redeliveries, so a store that has seen the
request id (or the event id) stores nothing twice.

This runs for every event the processor handles (bench/processor.py), so it avoids
per-value work that does not change the answer: `value_type` is `infer_type` with a dict lookup
for the plain JSON types and the date regex only for strings shaped like ``YYYY-…``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec

from trackd.models import Envelope, EventRecord, IssueRecord, Kind, Plan
from trackd.processor.identity import normalised
from trackd.wire.values import infer_type, is_datetime

#: The schema type of a value by its exact type; the rest take `value_type`'s longer road.
_PLAIN: dict[type, str] = {
    bool: "boolean",
    int: "number",
    float: "number",
    dict: "object",
    type(None): "null",
}
_ARRAYS: dict[str, str] = {}  # element type -> "array<element type>", made once each
#: Strings shaped like a date whose answer `value_type` remembers (bench/processor.py: a
#: `viewed_at` of the last hour repeats thousands of times; the regex and `date()` cost ~1 us).
DATE_MEMO = 8192


def event_id(request_id: str, index: int) -> str:
    return f"{request_id}-{index}"


def value_type(value: Any) -> str:
    """`trackd.wire.values.infer_type`, faster: every ISO 8601 date or date-time `is_datetime`
    accepts starts with four digits and a hyphen, so other strings are strings without the
    regex (tests/processor/test_plan.py checks the two agree)."""
    kind = _PLAIN.get(type(value))
    if kind is not None:
        return kind
    if type(value) is str:
        if len(value) >= 10 and value[4] == "-":
            return _dated(value)
        return "string"
    if type(value) is list:
        kinds = {value_type(item) for item in value}
        if len(kinds) != 1:
            return "array"
        element = kinds.pop()
        array = _ARRAYS.get(element)
        if array is None:
            array = _ARRAYS.setdefault(element, f"array<{element}>")
        return array
    return infer_type(value)  # subclasses and anything else: the reference rules


@lru_cache(maxsize=DATE_MEMO)
def _dated(value: str) -> str:
    """The type of a string shaped like a date, remembered for the last `DATE_MEMO` values."""
    return "datetime" if is_datetime(value) else "string"


def plan(envelope: Envelope) -> Plan:
    if envelope.kind == Kind.BULK:
        return _bulk(envelope)
    return _plan(envelope, envelope.request_id)


def _plan(envelope: Envelope, ids: str) -> Plan:
    """`envelope`'s plan, its event ids ``{ids}-{index}``."""
    request_id, received_at = envelope.request_id, envelope.received_at
    client_ip, device_id, project_code = (
        envelope.client_ip,
        envelope.device_id,
        envelope.project_code,
    )
    events = []
    schema: list[tuple[str, str, str]] = []
    for action in envelope.actions:
        name = action.action
        events.append(
            EventRecord(
                event_id=f"{ids}-{action.index}",
                request_id=request_id,
                action=name,
                attributes=action.attributes,
                platform=action.platform,
                platform_raw=action.platform_raw,
                app_version=action.app_version,
                user_time=action.user_time,
                current_time=action.current_time,
                user_timezone_offset=action.user_timezone_offset,
                received_at=received_at,
                client_ip=client_ip,
                device_id=device_id,
                project_code=project_code,
                moe_os_type=action.moe_os_type,
            )
        )
        _observe(schema, name, action.attributes)
    warnings = envelope.warnings
    dropped = 0
    if warnings and envelope.kind == Kind.EVENT:
        kept = {action.index for action in envelope.actions}
        dropped = len({w.index for w in warnings if w.index not in kept})
    return Plan(
        request_id=request_id,
        workspace_id=envelope.workspace_id,
        kind=envelope.kind,
        customer_id=envelope.customer_id,
        identifiers=normalised(envelope.user_identifiers),
        device_id=device_id,
        received_at=received_at,
        client_ip=client_ip,
        events=events,
        schema=schema,
        issues=[
            IssueRecord(
                request_id=request_id,
                index=w.index,
                reason=w.reason,
                attribute=w.attribute,
                at=received_at,
            )
            for w in warnings
        ],
        dropped_events=dropped,
        user_attributes=envelope.user_attributes,
        update_existing_only=envelope.update_existing_only,
        merges=envelope.merges,
        device=envelope.device,
        delete=envelope.delete,  # Delete User
        erasure=envelope.erasure,  # GDPR erasure
    )


# -- Bulk Import (data-api.md §2) --


def _bulk(envelope: Envelope) -> Plan:
    """A Bulk Import: its elements' plans as `parts`, in order, each as its own endpoint's
    envelope would plan it, with event ids ``{request_id}-{element}-{action}`` and its issues
    at the element's index (as the 200's warnings say); the bulk's own issues (its invalid
    elements) are the plan's. `trackd.processor.apply` applies the parts in its place."""
    own = _plan(msgspec.structs.replace(envelope, elements=None, actions=[]), envelope.request_id)
    elements = envelope.elements or []
    invalid = {w.index for w in envelope.warnings if w.reason == "invalid_element"}
    # The valid elements are those without an `invalid_element` warning, in order.
    indices = [i for i in range(len(elements) + len(invalid)) if i not in invalid]
    parts = []
    for index, element in zip(indices, elements, strict=False):
        part = _plan(element, f"{envelope.request_id}-{index}")
        issues = [msgspec.structs.replace(issue, index=index) for issue in part.issues]
        parts.append(msgspec.structs.replace(part, issues=issues))
    issues = [issue for issue in own.issues if issue.reason == "invalid_element"]
    return msgspec.structs.replace(own, issues=issues, parts=parts)


def _observe(schema: list[tuple[str, str, str]], name: str, attributes: dict[str, Any]) -> None:
    """Append the event itself (attribute "") and every attribute with its inferred type."""
    schema.append((name, "", "event"))
    plain = _PLAIN.get
    for attribute, value in attributes.items():
        kind = plain(type(value))
        if kind is None:  # `value_type`, with its string case inline (half the values)
            if type(value) is str:
                kind = _dated(value) if len(value) >= 10 and value[4] == "-" else "string"
            else:
                kind = value_type(value)
        schema.append((name, attribute, kind))
