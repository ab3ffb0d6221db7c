"""Validation of a GDPR / CCPA erasure body (`POST /v1/opengdpr_requests/{ws}`, data-api.md
§6, REF §6.6): ``{"request_type": "erasure", "submitted_time": "...", "identities":
[{"identity_type", "identity_value"}], "api_version": "1.0"}``. The checks, in order:

1. the body is a JSON object (row 16's answer);
2. `request_type` there (``request_type is not found in the payload``, REF), then `erasure`
   [trackd: ``request_type should be erasure``];
3. `identities` a non-empty array (``identities is not found in the payload``, REF) of objects
   (Malformed JSON, attribute `identities`);
4. in each, `identity_type` one of REF's six and `identity_value` a non-empty string of at most
   512 characters (Merge's wordings for ids);
5. `submitted_time`, when sent, a string (``submitted_time is expected to be String or Unicode
   String.``); `api_version` is accepted as sent.

Applied at once, without the delete buffer, in queue order (`trackd.processor.erasures`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from trackd.models import Erasure, Workspace
from trackd.wire import contract
from trackd.wire.event import NonEmpty, Validated, check_id


class ErasureIdentity(msgspec.Struct):
    """One identity whose every profile is erased (an email shared by several users erases
    all of them, REF §6.6)."""

    identity_type: Literal[
        "ID", "user_secondary_id", "email", "mobile", "google_advertising_id",
        "advertising_identifier",
    ]  # fmt: skip
    identity_value: NonEmpty


class ErasureBody(msgspec.Struct):
    """A GDPR / CCPA erasure request (REF §6.6): applied at once, without the delete buffer."""

    request_type: Literal["erasure"]
    identities: Annotated[list[ErasureIdentity], msgspec.Meta(min_length=1)]
    submitted_time: str | None = None
    api_version: str | None = None


def validate_erasure(
    payload: Any, workspace: Workspace, project_code: str | None, received_ms: int
) -> Validated:
    if not isinstance(payload, dict):
        raise contract.not_an_object()
    request_type = payload.get("request_type")
    if request_type is None:
        raise contract.not_found("request_type")
    if request_type != "erasure":
        raise contract.erasure_request_type_invalid()
    identities = payload.get("identities")
    if not isinstance(identities, list) or not identities:
        raise contract.not_found("identities")
    if not all(isinstance(i, dict) for i in identities):
        raise contract.malformed_json("identities")
    found = [_identity(i) for i in identities]
    submitted = payload.get("submitted_time")
    if submitted is not None and not isinstance(submitted, str):
        raise contract.not_a_string("submitted_time")
    return Validated(
        customer_id=None,
        device_id=None,
        user_identifiers=None,
        actions=[],
        warnings=[],
        event_count=1,
        erasure=Erasure(identities=found, submitted_time=submitted),
    )


def _identity(item: dict[str, Any]) -> tuple[str, str]:
    kind = item.get("identity_type")
    if kind is None:
        raise contract.not_found("identity_type")
    if kind not in contract.ERASURE_IDENTITY_TYPES:
        raise contract.erasure_identity_type_invalid()
    return kind, check_id(item, "identity_value")
