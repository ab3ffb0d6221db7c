"""What trackd owes a request at the edge: the exact answer bodies (their request id taken from
the `x-request-id` header) and the queue as the inspecting consumer reads it afterwards."""

from __future__ import annotations

from typing import Any

import httpx

from tests.harness import Harness

AUTH = "Authentication required"
MISSING = "MissingAttributeError"
MALFORMED = "Could not decode the request body. The JSON was incorrect or not encoded as UTF-8."
TIME = "an epoch timestamp in seconds or milliseconds, or an ISO 8601 date-time"


def failure(
    response: httpx.Response, message: str, type_: str, attribute: str | None = None
) -> dict[str, Any]:
    """The exact error body owed to `response` (its request id from the header)."""
    error: dict[str, Any] = {"message": message, "type": type_}
    if attribute is not None:
        error["attribute"] = attribute
    error["request_id"] = response.headers["x-request-id"]
    return {"status": "fail", "error": error}


def success(
    response: httpx.Response, warnings: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The exact 200 body owed to `response`; `warnings` None: the body has no such key."""
    body: dict[str, Any] = {
        "status": "success",
        "message": "Your request has been accepted and will be processed soon.",
        "request_id": response.headers["x-request-id"],
    }
    if warnings is not None:
        body["warnings"] = warnings
    return body


async def queued(harness: Harness) -> list[Any]:
    """Every envelope in the queue; `nack` rewinds the inspecting consumer so it reads them all
    again next time (`Harness.queued` alone moves its cursor past what it returned)."""
    envelopes = await harness.queued()
    await harness.queue.nack("inspect")
    return envelopes


async def assert_rejected(
    harness: Harness,
    response: httpx.Response,
    status: int,
    message: str,
    type_: str,
    attribute: str | None = None,
    *,
    already_queued: int = 0,
) -> None:
    assert response.status_code == status
    assert response.json() == failure(response, message, type_, attribute)
    assert len(await queued(harness)) == already_queued


async def assert_accepted(
    harness: Harness, response: httpx.Response, *, already_queued: int = 0
) -> None:
    assert response.status_code == 200
    assert response.json() == success(response)
    envelopes = await queued(harness)
    assert len(envelopes) == already_queued + 1
    assert envelopes[-1].request_id == response.headers["x-request-id"]
