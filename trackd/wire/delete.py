"""Validation of a Delete User body (`POST /v1/customer/delete?app_id={ws}`, data-api.md §4).

``{"identity_type": "customer_id" | "moengage_id", "identity_value": "..."}``, one user per
request (REF §6.5). The checks, in order:

1. the body is a JSON object (row 16's answer);
2. `identity_type`: present (``identity_type is not found in the payload``), a string (``… is
   expected to be String or Unicode String.``), one of the two types [trackd: ``identity_type
   should be customer_id/moengage_id``];
3. `identity_value`: present, a string, not empty, at most 512 characters (as `customer_id`).

Whether the user exists is decided by the edge against the store (`trackd.edge.v1`'s
`precheck`), and again when it is applied, in queue order (`trackd.processor.deletes`). A request
costs one against the Delete bucket (5,000 requests a minute, REF §3).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from trackd.models import UserDelete, Workspace
from trackd.wire import contract
from trackd.wire.event import Identifier, Validated, check_id


class DeleteUserBody(msgspec.Struct):
    """Delete User's body (REF §6.5): the one user to delete, by its customer id or its
    MoEngage id. It is hard-deleted after the workspace's delete buffer (default 24 hours)."""

    identity_type: Literal["customer_id", "moengage_id"]
    identity_value: Identifier


def validate_delete(
    payload: Any, workspace: Workspace, project_code: str | None, received_ms: int
) -> Validated:
    if not isinstance(payload, dict):
        raise contract.not_an_object()
    kind = payload.get("identity_type")
    if kind is None:
        raise contract.not_found("identity_type")
    if not isinstance(kind, str):
        raise contract.not_a_string("identity_type")
    if kind not in contract.DELETE_IDENTITY_TYPES:
        raise contract.identity_type_invalid()
    value = check_id(payload, "identity_value")
    delete = UserDelete(
        identity_type=kind, identity_value=value, buffer_ms=workspace.delete_buffer * 1000
    )
    return Validated(
        customer_id=value if kind == "customer_id" else None,
        device_id=None,
        user_identifiers=None,
        actions=[],
        warnings=[],
        event_count=1,
        delete=delete,
    )
