"""Validation of a Bulk Import body (`POST /v1/transition/{workspace_id}`, data-api.md §2).

``{"type": "transition", "elements": [...]}``. The whole request is refused, in this order:

1. the body is not a JSON object (row 16's answer); undecodable JSON is REF §6.2's Malformed
   JSON, leading apostrophe included (`contract.bulk_malformed_json`, the row's wording);
2. `type` missing or not ``"transition"`` (row 17's wording);
3. `project_code` in a Portfolio workspace (row 18), once for every element;
4. `elements` missing (``elements is not found in the payload``), not an array (``elements is
   expected to be Array``) [trackd: Track Event's wordings], or empty (REF: ``'elements cannot
   be empty array``);
5. an element that is not an object, or whose `type` is not ``customer``, ``event`` or
   ``device`` (REF: ``'type in elements should be customer/event/device``, `AttributeError`).

Each element is then validated exactly as its own endpoint validates its body (Track User,
Track Event, Track Device). One that its endpoint would refuse is dropped and reported as the
warning ``{"index": i, "reason": "invalid_element", "type": T, "message": M}`` (M that 400's
message); the request still gets its 200 (REF: "All bulk API requests return a 200"). The
warnings of a valid element are reported with its index. The request costs its valid customer
and device elements against the users limit and its valid event elements' actions against the
events limit (REF §3: 60,000 of each a minute).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec

from trackd.errors import ContractError
from trackd.models import Kind, Warning, Workspace
from trackd.wire import contract
from trackd.wire.customer import TrackUserBody, validate_customer
from trackd.wire.device import TrackDeviceBody, validate_device
from trackd.wire.event import (
    TrackEventBody,
    Validated,
    check_project,
    check_type,
    validate_event,
)

ElementValidate = Callable[[Any, Workspace, str | None, int], Validated]
#: An element's `type`, the kind its own endpoint queues, and that endpoint's validator.
ELEMENT_KINDS: dict[str, tuple[Kind, ElementValidate]] = {
    "customer": (Kind.CUSTOMER, validate_customer),
    "event": (Kind.EVENT, validate_event),
    "device": (Kind.DEVICE, validate_device),
}


class BulkImportBody(msgspec.Struct):
    """Bulk Import's request body (`POST /v1/transition/{workspace_id}`, REF §6.2): customer,
    event and device elements, each shaped and validated as its own endpoint's body, applied
    in order; an invalid element is dropped with a warning, never failing the request."""

    type: Literal["transition"]
    #: Each element its own endpoint's documented body, told apart by `type`.
    elements: Annotated[
        list[TrackUserBody | TrackEventBody | TrackDeviceBody], msgspec.Meta(min_length=1)
    ]


def validate_bulk(
    payload: Any, workspace: Workspace, project_code: str | None, received_ms: int
) -> Validated:
    if not isinstance(payload, dict):
        raise contract.not_an_object()
    check_type(payload, "transition")
    check_project(workspace, project_code)
    raw = payload.get("elements")
    if raw is None:
        raise contract.not_found("elements")
    if not isinstance(raw, list):
        raise contract.expected("elements", "Array")
    if not raw:
        raise contract.elements_empty()
    if not all(isinstance(e, dict) and e.get("type") in ELEMENT_KINDS for e in raw):
        raise contract.element_type_invalid()
    elements: list[tuple[Kind, Validated]] = []
    warnings: list[Warning] = []
    users = events = 0
    for index, element in enumerate(raw):
        kind, validate = ELEMENT_KINDS[element["type"]]
        try:
            validated = validate(element, workspace, project_code, received_ms)
        except ContractError as exc:
            warnings.append(
                Warning(index, "invalid_element", type=element["type"], message=exc.message)
            )
            continue
        elements.append((kind, validated))
        warnings.extend(
            Warning(index, w.reason, w.attribute, w.type, w.message) for w in validated.warnings
        )
        if kind is Kind.EVENT:
            events += validated.event_count
        else:
            users += 1
    return Validated(
        customer_id=None,
        device_id=None,
        user_identifiers=None,
        actions=[],
        warnings=warnings,
        event_count=events,
        elements=elements,
        users=users,
    )
