"""`POST /v1/event/{workspace_id}`: rows 2-18 of the check table (track-event.md §2), and the
order of all the checks.

Every expected body is typed out here, so a wrong status, type, message or attribute fails.
Rows 19-25 are in `test_track_payload.py`; row 1 and rows 26-28 in `test_track_limits.py`.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.edge.answers import (
    AUTH,
    MALFORMED,
    MISSING,
    TIME,
    assert_accepted,
    assert_rejected,
    queued,
)
from tests.edge.payloads import DROP, action, body, httpx_json
from tests.factories import SEED_BODY
from tests.harness import Harness
from trackd import admin

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("inspecting")]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# Rows 2-5: the Authorization header -------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        pytest.param(None, "Authentication Header Required", id="row 2: no header"),
        pytest.param(
            "Bearer some-token",
            "Invalid authorization used. Only 'Basic Auth' authorization is supported.",
            id="row 3: Bearer",
        ),
        pytest.param(
            "Digest username=WS1",
            "Invalid authorization used. Only 'Basic Auth' authorization is supported.",
            id="row 3: Digest",
        ),
        pytest.param(
            "Basic %%%not-base64%%%", "Invalid identity information found", id="row 4: bad base64"
        ),
        pytest.param(
            "Basic " + b64("WS1-and-no-colon"),
            "Invalid identity information found",
            id="row 4: no colon",
        ),
        pytest.param(
            "Basic " + base64.b64encode(b"WS1:\xff\xfe").decode(),
            "Invalid identity information found",
            id="row 4: not UTF-8",
        ),
        pytest.param(
            "Basic " + b64(":some-key"),
            "APP_KEY missing in the authentication header",
            id="row 5: empty username",
        ),
        pytest.param(
            "Basic " + b64("WS1:"),
            "APP_SECRET missing in the authentication header",
            id="row 5: empty password",
        ),
    ],
)
async def test_unusable_authorization_is_rejected_with_401(
    harness: Harness, authorization: str | None, message: str
) -> None:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = await harness.post(SEED_BODY, headers=headers)
    await assert_rejected(harness, response, 401, message, AUTH)


async def test_lower_case_basic_scheme_is_accepted(harness: Harness) -> None:
    headers = harness.headers()
    headers["Authorization"] = "basic " + headers["Authorization"].split(" ", 1)[1]
    response = await harness.post(SEED_BODY, headers=headers)
    await assert_accepted(harness, response)


# Rows 6-7: the ids must agree -------------------------------------------------------------------


async def test_credentials_of_another_workspace_on_this_path_are_rejected_with_409(
    harness: Harness,
) -> None:
    other_id, other_key = await harness.create_workspace(workspace_id="WS2")
    response = await harness.post(SEED_BODY, headers=harness.headers(other_id, other_key))
    await assert_rejected(
        harness,
        response,
        409,
        "App key mismatch in params and authentication",
        "Authentication Mismatch",
    )


async def test_app_id_query_differing_from_the_username_is_rejected_with_409(
    harness: Harness,
) -> None:
    response = await harness.post(SEED_BODY, params={"app_id": "WS2"})
    await assert_rejected(
        harness,
        response,
        409,
        "App key mismatch in params and authentication",
        "Authentication Mismatch",
    )


async def test_app_id_query_equal_to_the_username_is_accepted(harness: Harness) -> None:
    response = await harness.post(SEED_BODY, params={"app_id": "WS1"})
    await assert_accepted(harness, response)


async def test_moe_appkey_differing_from_the_username_is_rejected_with_401(
    harness: Harness,
) -> None:
    headers = {**harness.headers(), "MOE-APPKEY": "WS2"}
    response = await harness.post(SEED_BODY, headers=headers)
    await assert_rejected(
        harness,
        response,
        401,
        "MOE_APPKEY doesn't match the Username (APP_KEY) used in Basic Auth authorization.",
        AUTH,
    )


async def test_moe_appkey_equal_to_the_username_is_accepted(harness: Harness) -> None:
    response = await harness.post(SEED_BODY, headers={**harness.headers(), "MOE-APPKEY": "WS1"})
    await assert_accepted(harness, response)


# Rows 8-11: the workspace and its key -----------------------------------------------------------


async def test_unknown_workspace_is_rejected_with_401(harness: Harness) -> None:
    response = await harness.post(
        SEED_BODY, workspace_id="NOPE", headers=harness.headers("NOPE", "whatever-key")
    )
    await assert_rejected(
        harness, response, 401, "Invalid APP_ID used in Authentication Header", AUTH
    )


async def test_workspace_without_an_active_key_is_rejected_with_409(harness: Harness) -> None:
    await admin.revoke_key(harness.store, "WS1")
    await harness.app.registry.reload()
    response = await harness.post(SEED_BODY)
    await assert_rejected(
        harness,
        response,
        409,
        "App Secret key is not set. Please login to the dashboard to set a key",
        AUTH,
    )


async def test_wrong_key_is_rejected_with_401(harness: Harness) -> None:
    response = await harness.post(SEED_BODY, headers=harness.headers("WS1", "not-the-key"))
    await assert_rejected(
        harness,
        response,
        401,
        "App Secret key mismatch. Please login to the dashboard to verify key",
        AUTH,
    )


async def test_old_key_is_rejected_and_new_key_accepted_after_regeneration(
    harness: Harness,
) -> None:
    new_key = await admin.regenerate_key(harness.store, "WS1")
    await harness.app.registry.reload()
    old = await harness.post(SEED_BODY)
    await assert_rejected(
        harness,
        old,
        401,
        "App Secret key mismatch. Please login to the dashboard to verify key",
        AUTH,
    )
    new = await harness.post(SEED_BODY, headers=harness.headers("WS1", new_key))
    await assert_accepted(harness, new)


async def test_suspended_workspace_is_rejected_with_403_and_accepted_once_resumed(
    harness: Harness,
) -> None:
    await admin.set_suspended(harness.store, "WS1", True)
    await harness.app.registry.reload()
    response = await harness.post(SEED_BODY)
    await assert_rejected(harness, response, 403, "Account Suspended", "Account Suspended")

    await admin.set_suspended(harness.store, "WS1", False)
    await harness.app.registry.reload()
    await assert_accepted(harness, await harness.post(SEED_BODY))


# Rows 12-16: headers and body -------------------------------------------------------------------


async def test_missing_content_type_is_rejected_with_400(harness: Harness) -> None:
    headers = {"Authorization": harness.headers()["Authorization"]}
    response = await harness.post(content=b'{"type": "event"}', headers=headers)
    await assert_rejected(
        harness, response, 400, "The Content-Type Header is required", "Missing header value"
    )


@pytest.mark.parametrize(
    ("content_type", "encoding"),
    [
        ("text/plain", None),
        ("application/x-www-form-urlencoded", None),
        ("application/json-patch+json", None),
        ("application/json", "br"),
        ("application/json", "deflate"),
    ],
)
async def test_other_media_type_or_encoding_is_rejected_with_415(
    harness: Harness, content_type: str, encoding: str | None
) -> None:
    headers = {**harness.headers(), "Content-Type": content_type}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    response = await harness.post(content=httpx_json(SEED_BODY), headers=headers)
    await assert_rejected(
        harness, response, 415, "Content type is not supported", "Unsupported media type"
    )


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF-8"],
)
async def test_json_content_type_with_charset_or_any_case_is_accepted(
    harness: Harness, content_type: str
) -> None:
    headers = {**harness.headers(), "Content-Type": content_type}
    response = await harness.post(content=httpx_json(SEED_BODY), headers=headers)
    await assert_accepted(harness, response)


async def test_empty_body_is_rejected_with_400(harness: Harness) -> None:
    response = await harness.post(content=b"")
    await assert_rejected(
        harness, response, 400, "A valid JSON document is required", "Empty request body"
    )


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"{not json", id="not JSON"),
        pytest.param(b'{"type": "event",}', id="trailing comma"),
        pytest.param(b'{"type": "event"', id="truncated"),
        pytest.param(b'{"type": "ev\xffent"}', id="not UTF-8 inside a string"),
        pytest.param("{}".encode("utf-16"), id="UTF-16"),
    ],
)
async def test_body_that_does_not_decode_is_rejected_with_400(
    harness: Harness, content: bytes
) -> None:
    response = await harness.post(content=content)
    await assert_rejected(harness, response, 400, MALFORMED, "Malformed JSON")


@pytest.mark.parametrize("content", [b"[]", b'[{"type": "event"}]', b'"event"', b"42", b"null"])
async def test_json_that_is_not_an_object_is_rejected_with_400(
    harness: Harness, content: bytes
) -> None:
    response = await harness.post(content=content)
    await assert_rejected(
        harness, response, 400, "A valid JSON document is required.", "Body type is not JSON"
    )


# Rows 17-18: type and project_code --------------------------------------------------------------


async def test_missing_type_is_rejected_with_400(harness: Harness) -> None:
    response = await harness.post(body(type=DROP))
    await assert_rejected(
        harness, response, 400, "type is not found in the payload", MISSING, "type"
    )


@pytest.mark.parametrize("value", ["Event", "EVENT", "customer", " event", 1])
async def test_type_other_than_event_is_rejected_with_400(harness: Harness, value: Any) -> None:
    response = await harness.post(body(type=value))
    await assert_rejected(harness, response, 400, "type should be event", "AttributeError", "type")


@pytest.fixture
async def portfolio(harness: Harness) -> tuple[str, str]:
    """A Portfolio workspace with one project, `shop`."""
    workspace_id, key = await harness.create_workspace(workspace_id="PF", portfolio=True)
    await admin.add_project(harness.store, workspace_id, "shop")
    await harness.app.registry.reload()
    return workspace_id, key


async def test_portfolio_workspace_without_project_code_is_rejected_with_400(
    harness: Harness, portfolio: tuple[str, str]
) -> None:
    response = await harness.post(SEED_BODY, workspace_id="PF", headers=harness.headers(*portfolio))
    await assert_rejected(
        harness,
        response,
        400,
        "project_code is required for this workspace",
        "InvalidParams",
        "project_code",
    )


async def test_portfolio_workspace_with_unknown_project_code_is_rejected_with_400(
    harness: Harness, portfolio: tuple[str, str]
) -> None:
    response = await harness.post(
        SEED_BODY,
        workspace_id="PF",
        headers=harness.headers(*portfolio),
        params={"project_code": "warehouse"},
    )
    await assert_rejected(
        harness, response, 400, "Given project_code is invalid.", "InvalidParams", "project_code"
    )


async def test_portfolio_workspace_with_known_project_code_queues_it(
    harness: Harness, portfolio: tuple[str, str]
) -> None:
    response = await harness.post(
        SEED_BODY,
        workspace_id="PF",
        headers=harness.headers(*portfolio),
        params={"project_code": "shop"},
    )
    await assert_accepted(harness, response)
    [envelope] = await queued(harness)
    assert (envelope.workspace_id, envelope.project_code) == ("PF", "shop")


async def test_project_code_is_not_kept_outside_portfolio_workspaces(harness: Harness) -> None:
    response = await harness.post(SEED_BODY, params={"project_code": "shop"})
    await assert_accepted(harness, response)
    [envelope] = await queued(harness)
    assert envelope.project_code is None


# The order of the checks ------------------------------------------------------------------------


async def test_missing_authorization_beats_missing_content_type(harness: Harness) -> None:
    response = await harness.post(content=b"not json", headers={})
    await assert_rejected(harness, response, 401, "Authentication Header Required", AUTH)


async def test_path_mismatch_beats_unknown_workspace(harness: Harness) -> None:
    response = await harness.post(SEED_BODY, headers=harness.headers("NOPE", "whatever"))
    await assert_rejected(
        harness,
        response,
        409,
        "App key mismatch in params and authentication",
        "Authentication Mismatch",
    )


async def test_moe_appkey_mismatch_beats_wrong_key(harness: Harness) -> None:
    headers = {**harness.headers("WS1", "not-the-key"), "MOE-APPKEY": "WS2"}
    response = await harness.post(SEED_BODY, headers=headers)
    await assert_rejected(
        harness,
        response,
        401,
        "MOE_APPKEY doesn't match the Username (APP_KEY) used in Basic Auth authorization.",
        AUTH,
    )


async def test_wrong_key_beats_bad_json(harness: Harness) -> None:
    response = await harness.post(content=b"{not json", headers=harness.headers("WS1", "nope"))
    await assert_rejected(
        harness,
        response,
        401,
        "App Secret key mismatch. Please login to the dashboard to verify key",
        AUTH,
    )


async def test_suspension_beats_bad_json_and_missing_content_type(harness: Harness) -> None:
    await admin.set_suspended(harness.store, "WS1", True)
    await harness.app.registry.reload()
    bad_json = await harness.post(content=b"{not json")
    await assert_rejected(harness, bad_json, 403, "Account Suspended", "Account Suspended")
    no_type = await harness.post(
        content=b"{not json", headers={"Authorization": harness.headers()["Authorization"]}
    )
    await assert_rejected(harness, no_type, 403, "Account Suspended", "Account Suspended")


async def test_missing_content_type_beats_empty_body(harness: Harness) -> None:
    response = await harness.post(
        content=b"", headers={"Authorization": harness.headers()["Authorization"]}
    )
    await assert_rejected(
        harness, response, 400, "The Content-Type Header is required", "Missing header value"
    )


async def test_unsupported_media_type_beats_bad_json(harness: Harness) -> None:
    headers = {**harness.headers(), "Content-Type": "text/plain"}
    response = await harness.post(content=b"{not json", headers=headers)
    await assert_rejected(
        harness, response, 415, "Content type is not supported", "Unsupported media type"
    )


async def test_wrong_type_beats_missing_customer_id_and_actions(harness: Harness) -> None:
    response = await harness.post({"type": "user"})
    await assert_rejected(harness, response, 400, "type should be event", "AttributeError", "type")


async def test_missing_project_code_beats_missing_customer_id(
    harness: Harness, portfolio: tuple[str, str]
) -> None:
    payload = body(customer_id=DROP, actions=DROP)
    response = await harness.post(payload, workspace_id="PF", headers=harness.headers(*portfolio))
    await assert_rejected(
        harness,
        response,
        400,
        "project_code is required for this workspace",
        "InvalidParams",
        "project_code",
    )


async def test_customer_id_is_checked_before_actions(harness: Harness) -> None:
    response = await harness.post(body(customer_id="", actions=[]))
    await assert_rejected(
        harness,
        response,
        400,
        "customer_id can not be empty Unicode String",
        MISSING,
        "customer_id",
    )


async def test_each_row_is_checked_over_every_action_before_the_next_row(
    harness: Harness,
) -> None:
    """Action 0 fails row 24 and action 1 fails row 23: row 23 wins, though it comes later."""
    payload = body(actions=[action(attributes="x"), action(action="")])
    response = await harness.post(payload)
    await assert_rejected(
        harness, response, 400, "action cannot be empty Unicode string", MISSING, "action"
    )


async def test_non_object_action_beats_earlier_action_errors(harness: Harness) -> None:
    payload = body(actions=[action(action=DROP, user_time="never"), "Purchased"])
    response = await harness.post(payload)
    await assert_rejected(harness, response, 400, MALFORMED, "Malformed JSON", "actions")


async def test_attributes_are_checked_before_times(harness: Harness) -> None:
    payload = body(actions=[action(user_time="never"), action(attributes=[1])])
    response = await harness.post(payload)
    await assert_rejected(
        harness, response, 400, "attributes is expected to be JSON Object", MISSING, "attributes"
    )


async def test_one_bad_action_rejects_the_whole_request(harness: Harness) -> None:
    payload = body(actions=[action(), action(), action(current_time="later")])
    response = await harness.post(payload)
    await assert_rejected(
        harness, response, 400, f"current_time is expected to be {TIME}", MISSING, "current_time"
    )
