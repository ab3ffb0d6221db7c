"""Fuzzing `POST /v1/event/{id}` over HTTP: any body, any header mix, only contract answers.

Hypothesis drives an async test through anyio's pytest plugin, so every example runs on the
event loop of the `harness` fixture; the fixture (one app, one queue) is shared by the examples
of a test, which is why the function-scoped-fixture health check is silenced. Each example
compares the queue before and after its request: a 200 adds exactly its own envelope, anything
else adds nothing.
"""

from __future__ import annotations

import gzip
import time
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from tests.edge.answers import AUTH, MALFORMED
from tests.factories import SEED_BODY, basic
from tests.harness import Harness
from tests.wire.events import TABLE, almost_valid, json_values
from trackd.errors import ContractError
from trackd.models import Envelope, Workspace
from trackd.wire.event import validate_event

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("inspecting")]

SUCCESS = "Your request has been accepted and will be processed soon."
#: Every error this endpoint may answer, as (status, type, message, attribute): rows 1-15 and
#: 26-27 of the check table, plus rows 16-25 (shared with the validation tests).
ERRORS = TABLE | {
    (413, "PayloadTooLarge", "Payload size exceeds 128 KB", None),
    (401, AUTH, "Authentication Header Required", None),
    (
        401,
        AUTH,
        "Invalid authorization used. Only 'Basic Auth' authorization is supported.",
        None,
    ),
    (401, AUTH, "Invalid identity information found", None),
    (401, AUTH, "APP_KEY missing in the authentication header", None),
    (401, AUTH, "APP_SECRET missing in the authentication header", None),
    (409, "Authentication Mismatch", "App key mismatch in params and authentication", None),
    (
        401,
        AUTH,
        "MOE_APPKEY doesn't match the Username (APP_KEY) used in Basic Auth authorization.",
        None,
    ),
    (401, AUTH, "Invalid APP_ID used in Authentication Header", None),
    (401, AUTH, "App Secret key mismatch. Please login to the dashboard to verify key", None),
    (400, "Missing header value", "The Content-Type Header is required", None),
    (415, "Unsupported media type", "Content type is not supported", None),
    (400, "Empty request body", "A valid JSON document is required", None),
    (400, "Malformed JSON", MALFORMED, None),
    (
        429,
        "Rate Limits Exceeded",
        "Rate limits for customers exceeded. Please Try After Some Time",
        None,
    ),
    (503, "ServerError", "Service temporarily unavailable. Please retry.", None),
}
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def workspace(harness: Harness) -> Workspace:
    found = harness.app.registry.get(harness.workspace_id)
    assert found is not None
    return found


def predicted(payload: Any, ws: Workspace, received_ms: int) -> tuple[int, dict[str, Any], list]:
    """Status, body (without request_id) and the indexes of the actions kept, as the check
    table and `validate_event` give them for a well-formed, authenticated request."""
    try:
        validated = validate_event(payload, ws, None, received_ms)
    except ContractError as exc:
        error = {"message": exc.message, "type": exc.type}
        if exc.attribute is not None:
            error["attribute"] = exc.attribute
        return exc.status, {"status": "fail", "error": error}, []
    body: dict[str, Any] = {"status": "success", "message": SUCCESS}
    if validated.warnings:
        body["warnings"] = msgspec.to_builtins(validated.warnings)
    return 200, body, [action.index for action in validated.actions]


def without_request_id(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    request_id = response.headers["x-request-id"]
    if body.get("status") == "success":
        assert body.pop("request_id") == request_id
    else:
        assert body["error"].pop("request_id") == request_id
    return body


def assert_contract_response(response: httpx.Response) -> None:
    """A contract status and body, never a 500; the rate-limit headers on every answer."""
    body = response.json()
    event(f"HTTP {response.status_code}")  # shown by --hypothesis-show-statistics
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(
        response.headers
    )
    if response.status_code == 200:
        assert body["status"] == "success"
        assert set(body) <= {"status", "message", "request_id", "warnings"}
        assert (body["message"], body["request_id"]) == (SUCCESS, response.headers["x-request-id"])
        return
    assert body["status"] == "fail"
    assert set(body) == {"status", "error"}
    error = body["error"]
    assert error["request_id"] == response.headers["x-request-id"]
    assert set(error) <= {"message", "type", "attribute", "request_id"}
    got = (response.status_code, error["type"], error["message"], error.get("attribute"))
    assert got in ERRORS


async def assert_queue_follows(
    harness: Harness, response: httpx.Response, before: int
) -> list[Envelope]:
    """A 200 adds its own envelope and nothing else; any other answer adds nothing.

    `before` is how many envelopes the queue held before the request."""
    added = (await harness.queued())[before:]
    if response.status_code == 200:
        assert [envelope.request_id for envelope in added] == [response.headers["x-request-id"]]
    else:
        assert added == []
    return added


# Well-formed requests carrying any JSON ----------------------------------------------------


@FUZZ
@given(payload=json_values | almost_valid)
async def test_any_json_body_gets_the_answer_of_the_check_table(
    harness: Harness, payload: Any
) -> None:
    raw = msgspec.json.encode(payload)
    queued = len(await harness.queued())
    before = int(time.time() * 1000)
    response = await harness.post(content=raw)
    after = int(time.time() * 1000)
    assert_contract_response(response)
    added = await assert_queue_follows(harness, response, queued)
    status, body, kept = predicted(payload, workspace(harness), before)
    if (status, body, kept) == predicted(payload, workspace(harness), after):  # else the clock
        assert (response.status_code, without_request_id(response)) == (status, body)
        assert [[action.index for action in envelope.actions] for envelope in added] == (
            [kept] if status == 200 else []
        )


# Any bytes with any headers ----------------------------------------------------------------

CONTENT_TYPES = [
    None,
    "application/json",
    "application/json; charset=utf-8",
    "Application/JSON",
    "application/json;charset=latin-1",
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/jsonp",
    "",
]
CONTENT_ENCODINGS = [None, "gzip", "GZIP", "x-gzip", "identity", "", "br", "deflate", "gzip, br"]


def _gzip(raw: bytes) -> bytes:
    return gzip.compress(raw, mtime=0)


BODY_SHAPES = {
    "as is": lambda raw: raw,
    "gzip": _gzip,
    "gzip cut short": lambda raw: _gzip(raw)[:-5],
    "gzip then junk": lambda raw: _gzip(raw) + b"junk",
    "padded past 128 KB": lambda raw: raw + b" " * 131_073,
    "gzip of more than 128 KB": lambda raw: _gzip(raw + b" " * 140_000),
}
shapes = st.sampled_from(["as is"] * 4 + ["gzip"] * 3 + sorted(BODY_SHAPES))
raw_bodies = st.one_of(
    st.binary(max_size=300),
    almost_valid.map(msgspec.json.encode),
    st.just(msgspec.json.encode(SEED_BODY)),
    json_values.map(msgspec.json.encode),
    st.text(max_size=50).map(lambda text: text.encode("utf-16")),
)


def authorization(harness: Harness, choice: str) -> str | None:
    return {
        "valid": basic(harness.workspace_id, harness.key),
        "wrong key": basic(harness.workspace_id, "not-the-key"),
        "other workspace": basic("WS2", harness.key),
        "bearer": f"Bearer {harness.key}",
        "garbage": "Basic ???",
        "missing": None,
    }[choice]


header_choices = st.fixed_dictionaries(
    {
        "Authorization": st.sampled_from(
            ["valid"] * 8 + ["wrong key", "other workspace", "bearer", "garbage", "missing"]
        ),
        "Content-Type": st.sampled_from(["application/json"] * 4 + CONTENT_TYPES),
        "Content-Encoding": st.sampled_from(["as the body is"] * 4 + CONTENT_ENCODINGS),
        "MOE-APPKEY": st.sampled_from([None, None, "WS1", "WS2"]),
        "X-Forwarded-For": st.sampled_from([None, "203.0.113.195, 10.0.0.1", "not an ip", "::1"]),
    }
)


VALID: dict[str, str | None] = {
    "Authorization": "valid",
    "Content-Type": "application/json",
    "Content-Encoding": "as the body is",
    "MOE-APPKEY": None,
    "X-Forwarded-For": None,
}


def build_headers(harness: Harness, choices: dict[str, str | None], shape: str) -> dict[str, str]:
    chosen = {**choices, "Authorization": authorization(harness, str(choices["Authorization"]))}
    if chosen["Content-Encoding"] == "as the body is":
        chosen["Content-Encoding"] = "gzip" if shape.startswith("gzip") else None
    return {name: value for name, value in chosen.items() if value is not None}


@FUZZ
@given(raw=raw_bodies, shape=shapes, choices=header_choices)
@example(raw=b"[" * 50_000 + b"]" * 50_000, shape="as is", choices=VALID)
@example(raw=b'{"a":' * 20_000 + b"1" + b"}" * 20_000, shape="gzip", choices=VALID)
@example(raw=b"\xef\xbb\xbf" + msgspec.json.encode(SEED_BODY), shape="as is", choices=VALID)
@example(raw=b'{"type":"event","customer_id":NaN}', shape="as is", choices=VALID)
@example(raw=b'{"type":"event","customer_id":1e400}', shape="as is", choices=VALID)
@example(raw=b'{"type":"event","customer_id":"\xff"}', shape="as is", choices=VALID)
@example(raw=b"1" + b"0" * 5000, shape="as is", choices=VALID)
async def test_any_bytes_with_any_headers_get_a_contract_answer(
    harness: Harness, raw: bytes, shape: str, choices: dict[str, str | None]
) -> None:
    content = BODY_SHAPES[shape](raw)
    headers = build_headers(harness, choices, shape)
    queued = len(await harness.queued())
    response = await harness.post(content=content, headers=headers)
    assert_contract_response(response)
    await assert_queue_follows(harness, response, queued)
