"""Validation of a Merge Users body (`POST /v1/customer/merge?app_id={ws}`, data-api.md §3).

``{"merge_data": [{"merged_user": "...", "retained_user": "..."}, ...]}``, 1 to 50 pairs. The
checks, in order (each over the whole request before the next, as Track Event's rows are):

1. the body is a JSON object (row 16's answer);
2. `merge_data` is there (``merge_data is not found in the payload``), an array (``merge_data
   is expected to be Array``), not empty (``merge_data can not be empty Array``), at most 50
   elements (400 ``LimitBreached`` ``max limit allowed is 50``) [trackd: MoEngage documents the
   limit, not the answer];
3. every element is a JSON object (Malformed JSON with attribute `merge_data`, as row 22 answers
   an action that is not one);
4. in every element, `merged_user` then `retained_user`: present (``… is not found in the
   payload``), a string (``… is expected to be String or Unicode String.``, REF §2.3), not
   empty (``… can not be empty Unicode String``), at most 512 characters (as `customer_id`).

What a pair does (an unknown user or a cycle is skipped then, with an issue) is decided when it
is applied, in queue order (`trackd.processor.merge`). A pair costs one against the rate limit.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from trackd.models import MergePair, Workspace
from trackd.wire import contract
from trackd.wire.event import Identifier, Validated, check_id

FIELDS = ("merged_user", "retained_user")


def validate_merge(
    payload: Any, workspace: Workspace, project_code: str | None, received_ms: int
) -> Validated:
    if not isinstance(payload, dict):
        raise contract.not_an_object()
    pairs = _merge_data(payload)
    for field in FIELDS:
        for pair in pairs:
            check_id(pair, field)
    merges = [MergePair(pair["merged_user"], pair["retained_user"]) for pair in pairs]
    return Validated(
        customer_id=None,
        device_id=None,
        user_identifiers=None,
        actions=[],
        warnings=[],
        event_count=len(merges),
        merges=merges,
    )


def _merge_data(payload: dict[str, Any]) -> list[dict[str, Any]]:
    data = payload.get("merge_data")
    if data is None:
        raise contract.not_found("merge_data")
    if not isinstance(data, list):
        raise contract.expected("merge_data", "Array")
    if not data:
        raise contract.empty_array("merge_data")
    if len(data) > contract.MAX_MERGE_PAIRS:
        raise contract.limit_breached("merge_data", contract.MAX_MERGE_PAIRS)
    if not all(isinstance(pair, dict) for pair in data):
        raise contract.malformed_json("merge_data")
    return data


class MergePairBody(msgspec.Struct):
    """One pair: `merged_user`'s profile, events and devices go to `retained_user`."""

    merged_user: Identifier
    retained_user: Identifier


class MergeUsersBody(msgspec.Struct):
    """MoEngage's Merge Users body (`POST /v1/customer/merge?app_id={workspace_id}`, REF §6.4):
    1 to 50 pairs, applied in order."""

    merge_data: Annotated[
        list[MergePairBody], msgspec.Meta(min_length=1, max_length=contract.MAX_MERGE_PAIRS)
    ]
