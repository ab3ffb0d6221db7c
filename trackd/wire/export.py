"""Validation of a Get User body (`POST /v1/customers/export?app_id={ws}`, data-api.md §5).

``{"data": {"identifiers": [{"identifier_type": "customer_id" | "moengage_id",
"identifier": "..."}], "user_fields_to_export": [...]}}``. The checks, in order (REF §6.7):

1. the body is a JSON object (row 16's answer);
2. `data` is an object (``data is not found in the payload``);
3. `identifiers` is a non-empty array (``identifiers is not found in the payload``) of at most
   20 (400 ``LimitBreached`` ``max limit allowed is 20``, attribute `users`, REF's wording);
4. each identifier an object (Malformed JSON, attribute `identifiers`) whose `identifier_type`
   is `customer_id`, `moengage_id` (or `id`, REF's example: a customer id) and `identifier` a
   non-empty string of at most 512 characters;
5. `user_fields_to_export`, when sent, an array of strings (``… is expected to be Array``).

It is answered from the store (`trackd.edge.v1`'s `respond`), never queued; each identifier
costs one against the Get User bucket (1,000 users a minute, REF §3).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from trackd.models import UserLookup, Workspace
from trackd.wire import contract
from trackd.wire.event import Identifier, Validated, check_id


class ExportIdentifier(msgspec.Struct):
    """One user to look up: by `customer_id` or `moengage_id`."""

    identifier_type: Literal["customer_id", "moengage_id", "id"]
    identifier: Identifier


class ExportData(msgspec.Struct):
    """The users to look up (at most 20) and the attributes to return (all when absent)."""

    identifiers: Annotated[
        list[ExportIdentifier], msgspec.Meta(min_length=1, max_length=contract.MAX_EXPORT_USERS)
    ]
    user_fields_to_export: list[str] | None = None


class GetUserBody(msgspec.Struct):
    """Get User's body (REF §6.7): answered at once from the store, never queued."""

    data: ExportData


def validate_export(
    payload: Any, workspace: Workspace, project_code: str | None, received_ms: int
) -> Validated:
    if not isinstance(payload, dict):
        raise contract.not_an_object()
    data = payload.get("data")
    if not isinstance(data, dict):
        raise contract.not_found("data")
    identifiers = data.get("identifiers")
    if not isinstance(identifiers, list) or not identifiers:
        raise contract.not_found("identifiers")
    if len(identifiers) > contract.MAX_EXPORT_USERS:
        raise contract.limit_breached("users", contract.MAX_EXPORT_USERS)
    if not all(isinstance(i, dict) for i in identifiers):
        raise contract.malformed_json("identifiers")
    found = [_identifier(i) for i in identifiers]
    fields = data.get("user_fields_to_export")
    if fields is not None and (
        not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)
    ):
        raise contract.expected("user_fields_to_export", "Array")
    return Validated(
        customer_id=None,
        device_id=None,
        user_identifiers=None,
        actions=[],
        warnings=[],
        event_count=len(found),
        lookup=UserLookup(identifiers=found, fields=fields),
    )


def _identifier(item: dict[str, Any]) -> tuple[str, str]:
    kind = item.get("identifier_type")
    if kind is None:
        raise contract.not_found("identifier_type")
    if not isinstance(kind, str):
        raise contract.not_a_string("identifier_type")
    if kind not in contract.EXPORT_IDENTIFIER_TYPES:
        raise contract.export_identifier_type_invalid()
    return kind, check_id(item, "identifier")
