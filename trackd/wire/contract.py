"""Every error body of `/v1/event`, in the order of the check table of `track-event.md` §2.

This module is the one place that knows MoEngage's statuses, types and messages. Each function
returns a fresh `ContractError`; the edge renders it as
``{"status": "fail", "error": {"message", "type", "request_id"[, "attribute"]}}``.
"""

from __future__ import annotations

import secrets
from typing import Any, Literal

import msgspec

from trackd.errors import ContractError, TitledError
from trackd.models import Warning

AUTH = "Authentication required"
MALFORMED_JSON = (
    "Could not decode the request body. The JSON was incorrect or not encoded as UTF-8."
)
MISSING = "MissingAttributeError"

SUCCESS_MESSAGE = "Your request has been accepted and will be processed soon."


def new_request_id() -> str:
    """16 URL-safe characters (96 random bits): no two requests share one."""
    return secrets.token_urlsafe(12)


def error_body(exc: ContractError, request_id: str) -> dict[str, object]:
    """``{"status": "fail", "error": {"message", "type"[, "attribute"], "request_id"}}``."""
    if isinstance(exc, TitledError):  # Delete User's 429 and 500 (REF §2.1)
        return {"status": "fail", "title": exc.type, "description": exc.message}
    error = {"message": exc.message, "type": exc.type}
    if exc.attribute is not None:
        error["attribute"] = exc.attribute
    error["request_id"] = request_id
    return {"status": "fail", "error": error}


def success_body(request_id: str, warnings: list[Any]) -> dict[str, object]:
    """The 200 body; `warnings` only when the edge dropped, cut or rewrote something."""
    body: dict[str, object] = {
        "status": "success",
        "message": SUCCESS_MESSAGE,
        "request_id": request_id,
    }
    if warnings:
        body["warnings"] = warnings
    return body


def success_json(request_id: str) -> bytes:
    """`success_body` without warnings, encoded: the template is cut from the encoded body once
    (a request id is URL-safe base64, so it needs no escaping)."""
    return _SUCCESS_HEAD + request_id.encode() + _SUCCESS_TAIL


_SUCCESS_HEAD, _SUCCESS_TAIL = msgspec.json.encode(success_body("\0", [])).split(b"\\u0000")


def payload_too_large() -> ContractError:  # row 1
    return ContractError(413, "PayloadTooLarge", "Payload size exceeds 128 KB")


def auth_header_required() -> ContractError:  # row 2
    return ContractError(401, AUTH, "Authentication Header Required")


def not_basic() -> ContractError:  # row 3 (trackd's wording)
    return ContractError(
        401, AUTH, "Invalid authorization used. Only 'Basic Auth' authorization is supported."
    )


def undecodable_credentials() -> ContractError:  # row 4
    return ContractError(401, AUTH, "Invalid identity information found")


def app_key_missing() -> ContractError:  # row 5
    return ContractError(401, AUTH, "APP_KEY missing in the authentication header")


def app_secret_missing() -> ContractError:  # row 5
    return ContractError(401, AUTH, "APP_SECRET missing in the authentication header")


def app_key_mismatch() -> ContractError:  # row 6
    return ContractError(
        409, "Authentication Mismatch", "App key mismatch in params and authentication"
    )


def moe_appkey_mismatch() -> ContractError:  # row 7
    return ContractError(
        401,
        AUTH,
        "MOE_APPKEY doesn't match the Username (APP_KEY) used in Basic Auth authorization.",
    )


def unknown_workspace() -> ContractError:  # row 8
    return ContractError(401, AUTH, "Invalid APP_ID used in Authentication Header")


def key_not_set() -> ContractError:  # row 9
    return ContractError(
        409, AUTH, "App Secret key is not set. Please login to the dashboard to set a key"
    )


def wrong_key() -> ContractError:  # row 10
    return ContractError(
        401, AUTH, "App Secret key mismatch. Please login to the dashboard to verify key"
    )


def suspended() -> ContractError:  # row 11
    return ContractError(403, "Account Suspended", "Account Suspended")


def content_type_missing() -> ContractError:  # row 12
    return ContractError(400, "Missing header value", "The Content-Type Header is required")


def unsupported_media_type() -> ContractError:  # row 13
    return ContractError(415, "Unsupported media type", "Content type is not supported")


def empty_body() -> ContractError:  # row 14
    return ContractError(400, "Empty request body", "A valid JSON document is required")


def malformed_json(attribute: str | None = None) -> ContractError:  # rows 15, 22, 23
    return ContractError(400, "Malformed JSON", MALFORMED_JSON, attribute)


def not_an_object() -> ContractError:  # row 16
    return ContractError(400, "Body type is not JSON", "A valid JSON document is required.")


def type_missing() -> ContractError:  # row 17
    return ContractError(400, MISSING, "type is not found in the payload", "type")


def type_not_event(expected: str = "event") -> ContractError:  # row 17
    return ContractError(400, "AttributeError", f"type should be {expected}", "type")


def project_code_required() -> ContractError:  # row 18
    return ContractError(
        400, "InvalidParams", "project_code is required for this workspace", "project_code"
    )


def project_code_invalid() -> ContractError:  # row 18
    return ContractError(400, "InvalidParams", "Given project_code is invalid.", "project_code")


def not_found(attribute: str) -> ContractError:  # rows 19, 21, 23
    return ContractError(400, MISSING, f"{attribute} is not found in the payload", attribute)


def customer_id_empty() -> ContractError:  # row 20
    return ContractError(400, MISSING, "customer_id can not be empty Unicode String", "customer_id")


def customer_id_not_string() -> ContractError:  # row 20
    return ContractError(
        400, MISSING, "customer_id is expected to be String or Unicode String.", "customer_id"
    )


def actions_not_array() -> ContractError:  # row 21
    return ContractError(400, MISSING, "actions is expected to be Array", "actions")


def actions_empty() -> ContractError:  # row 21
    return ContractError(400, MISSING, "actions can not be empty Array", "actions")


def action_empty() -> ContractError:  # row 23
    return ContractError(400, MISSING, "action cannot be empty Unicode string", "action")


def attributes_not_object() -> ContractError:  # row 24
    return ContractError(400, MISSING, "attributes is expected to be JSON Object", "attributes")


def expected(attribute: str, what: str) -> ContractError:  # row 25
    return ContractError(400, MISSING, f"{attribute} is expected to be {what}", attribute)


def rate_limited() -> ContractError:  # row 26
    return ContractError(
        429,
        "Rate Limits Exceeded",
        "Rate limits for customers exceeded. Please Try After Some Time",
    )


def queue_unavailable() -> ContractError:  # row 27
    return ContractError(503, "ServerError", "Service temporarily unavailable. Please retry.")


def unexpected() -> ContractError:  # row 28
    return ContractError(
        500, "ServerError", "An unexpected error was encountered while processing this request."
    )


# trackd's own, outside the table --------------------------------------------------------------

STRICT_TYPE = "StrictModeViolation"

#: What each warning reason means, for strict mode's 400 and for people reading issues.
REASONS = {
    "reserved_prefix": "uses the reserved prefix moe_",
    "name_truncated": "is longer than 200 characters",
    "name_collision": "is the same as an earlier attribute name once cut to 200 characters",
    "value_truncated": "has a value longer than 512 characters",
    "url_too_long": "has a URL value longer than 512 characters",
    "too_many_attributes": "is beyond the first 100 attributes of the event",
    "array_truncated": "has more than 50 array elements",
    "mixed_array": "is an array of mixed types",
    "object_flattened": "nests objects deeper than two levels",
    "future_dated": "is later than the receive time plus the workspace's clock-skew allowance",
    "customer_id_disallowed": "is a customer_id value MoEngage does not allow",
    "unknown_platform": "is not one of ANDROID, iOS, web, TV, unknown",
    "invalid_type": "has a type this field does not take",
    "reserved_name": "is a user attribute name MoEngage blocks (id, _id or empty)",
}


def strict_violation(attribute: str, reason: str) -> ContractError:
    """Strict mode: a per-event problem rejects the whole request, naming the field."""
    return ContractError(
        400, STRICT_TYPE, f"{attribute} {REASONS[reason]} (strict mode: {reason})", attribute
    )


def invalid_http() -> ContractError:
    """A request the HTTP parser cannot read (uvicorn's wording)."""
    return ContractError(400, "Bad Request", "Invalid HTTP request received.")


def url_too_long() -> ContractError:
    return ContractError(414, "URI Too Long", "The request URL is too long")


def head_too_large() -> ContractError:
    return ContractError(
        431, "Request Header Fields Too Large", "The request headers are too many or too large"
    )


def not_found_route() -> ContractError:
    return ContractError(404, "NotFound", "No such endpoint")


def method_not_allowed() -> ContractError:
    return ContractError(405, "MethodNotAllowed", "Method not allowed on this endpoint")


def params_required() -> ContractError:  # data-api.md §0: a query route without `app_id`
    return ContractError(400, "ParamsRequired", "app_id is required in path/query params.")


# trackd's read API and admin routes ----------------------------------------------------------


def invalid_param(attribute: str, expected: str) -> ContractError:
    return ContractError(
        400, "InvalidParams", f"{attribute} is expected to be {expected}", attribute
    )


def admin_token_required() -> ContractError:
    return ContractError(401, AUTH, "Admin token required")


def invalid_admin_token() -> ContractError:
    return ContractError(401, AUTH, "Invalid admin token")


def other_workspace() -> ContractError:
    return ContractError(403, "Forbidden", "These credentials are for another workspace")


def no_such_workspace() -> ContractError:
    return ContractError(404, "NotFound", "No such workspace")


def no_such_user() -> ContractError:
    return ContractError(404, "NotFound", "No such user", "customer_id")


def idempotency_key_reused() -> ContractError:  # the IETF Idempotency-Key draft, §2.7
    return ContractError(
        422,
        "IdempotencyKeyReused",
        "This Idempotency-Key was already used for a different request (another body or "
        "endpoint); use a new key for a new request.",
        "Idempotency-Key",
    )


def id_too_long(attribute: str, limit: int) -> ContractError:  # rows 19-20's family [trackd]
    return ContractError(
        400, MISSING, f"{attribute} is expected to be at most {limit} characters", attribute
    )


# Merge Users (data-api.md §3, REF §6.4) ---------------------------------------------------------

MERGE_SUCCESS_OPERATION = "created"
MAX_MERGE_PAIRS = 50


def merge_success_json(request_id: str, warnings: list[Any]) -> bytes:
    """Merge Users' 200: ``{"status": "success", "operation": "created", "request_id": R}``
    (REF §6.4's body, with trackd's request id); it drops nothing, so it has no warnings."""
    body = {"status": "success", "operation": MERGE_SUCCESS_OPERATION, "request_id": request_id}
    return msgspec.json.encode(body)


def empty_array(attribute: str) -> ContractError:  # row 21's wording for another array
    return ContractError(400, MISSING, f"{attribute} can not be empty Array", attribute)


def limit_breached(attribute: str, limit: int) -> ContractError:  # REF §3 (Get User's wording)
    return ContractError(400, "LimitBreached", f"max limit allowed is {limit}", attribute)


def not_a_string(attribute: str) -> ContractError:  # REF §2.3, Merge's example
    return expected(attribute, "String or Unicode String.")


def empty_string(attribute: str) -> ContractError:  # row 20's wording for another id
    return ContractError(400, MISSING, f"{attribute} can not be empty Unicode String", attribute)


def rate_limit_error() -> ContractError:  # REF §2.3: Track User's, Get User's and Merge's 429
    return ContractError(429, "RateLimitError", "Rate limit exceeded")


# -- Track Device and Bulk Import (data-api.md §1, §2; REF §6.3, §6.2) ---------------------------


def device_not_found(attribute: str) -> ContractError:  # REF §6.3: customer_id, attributes
    return ContractError(400, MISSING, f"'{attribute}' is not found in the payload", attribute)


def device_attribute_not_found(attribute: str) -> ContractError:  # REF §6.3: platform, push_id
    return ContractError(400, MISSING, f"'{attribute}' is not found in payload", attribute)


def invalid_device_platform() -> ContractError:  # REF §6.3
    return ContractError(400, "ValueError", "'platform' is not a valid platform.", "platform")


def elements_empty() -> ContractError:  # REF §6.2, leading apostrophe included
    return ContractError(400, MISSING, "'elements cannot be empty array", "elements")


def element_type_invalid() -> ContractError:  # REF §6.2, leading apostrophe included
    return ContractError(
        400, "AttributeError", "'type in elements should be customer/event/device", "type"
    )


def bulk_malformed_json() -> ContractError:  # REF §6.2's Malformed JSON, apostrophe included
    return ContractError(400, "Malformed JSON", "'" + MALFORMED_JSON)


REASONS.update(
    {
        "custom_device_attribute": "is not a device attribute MoEngage keeps",
        "identifier_platform_mismatch": "is an advertising identifier of another platform",
        "invalid_element": "is an element its own endpoint would refuse",
    }
)


# -- Delete User (data-api.md §4; REF §6.5, §2.1) -----------------------------------------------

DELETE_IDENTITY_TYPES = ("customer_id", "moengage_id")


def user_does_not_exist(value: str) -> ContractError:  # REF §6.5, its wording verbatim
    return ContractError(400, "Not Found", f"User doesn't exists with customer id {value}")


def delete_rate_limited() -> ContractError:  # REF §6.5: Delete's own 429, not the envelope
    return TitledError(429, "Rate limit exceeded", "Exceeded rate limit for this url")


def delete_unexpected() -> ContractError:  # REF §6.5: Delete's own 500, not the envelope
    return TitledError(500, "Internal Error", "Please contact the MoEngage team.")


def identity_type_invalid() -> ContractError:  # [trackd]: REF names the two types only
    return ContractError(
        400, MISSING, "identity_type should be customer_id/moengage_id", "identity_type"
    )


def not_caught_up() -> ContractError:  # [trackd] data-api.md §0: read-your-writes, bounded
    return ContractError(
        503,
        "ServerError",
        "Earlier requests are still being processed; the answer would not include them. "
        "Please retry.",
    )


# -- Get User (data-api.md §5; REF §6.7) --------------------------------------------------------

MAX_EXPORT_USERS = 20
EXPORT_IDENTIFIER_TYPES = ("customer_id", "moengage_id", "id")  # "id": REF's example, customer_id


def export_identifier_type_invalid() -> ContractError:  # [trackd]: REF names the types only
    return ContractError(
        400,
        MISSING,
        "identifier_type should be customer_id/moengage_id",
        "identifier_type",
    )


def export_attributes(profile: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """A profile as Get User's `user_attributes` [trackd]: its ids (`customer_id`,
    `moengage_id`, always there), its attributes, `first_seen`/`last_seen`; with `fields`,
    only those of them (the ids stay)."""
    attributes: dict[str, Any] = {
        "customer_id": profile["customer_id"],
        "moengage_id": profile["moengage_id"],
        **profile["attributes"],
        "first_seen": profile["first_seen"],
        "last_seen": profile["last_seen"],
    }
    if fields is None:
        return attributes
    kept = {"customer_id", "moengage_id", *fields}
    return {k: v for k, v in attributes.items() if k in kept}


def export_body(users: list[dict[str, Any]], not_found: list[dict[str, str]]) -> dict[str, Any]:
    """Get User's 200, REF §6.7's shape exactly."""
    return {
        "status": "success",
        "type": "export_users",
        "data": {"users_not_found": not_found, "users": users},
    }


# -- Test connection (data-api.md §7; REF §6.8, §2.3) -------------------------------------------


def moe_appkey_missing() -> ContractError:  # REF §2.3, Merge's example
    return ContractError(401, AUTH, "MOE-APPKEY is missing in Header")


def no_identity() -> ContractError:  # REF §2.3: an empty body gives no identity
    return ContractError(401, AUTH, "No identity information found")


def test_connection_body(app_name: str) -> dict[str, str]:
    """Test connection's 200, REF §6.8's shape."""
    return {"status": "success", "app_name": app_name}


# -- GDPR erasure (data-api.md §6; REF §6.6) ----------------------------------------------------

ERASURE_IDENTITY_TYPES = (
    "ID", "user_secondary_id", "email", "mobile", "google_advertising_id",
    "advertising_identifier",
)  # fmt: skip


def erasure_request_type_invalid() -> ContractError:  # [trackd]: REF documents erasure only
    return ContractError(400, MISSING, "request_type should be erasure", "request_type")


def erasure_identity_type_invalid() -> ContractError:  # [trackd]: REF names the six types
    return ContractError(
        400,
        MISSING,
        "identity_type should be ID/user_secondary_id/email/mobile/google_advertising_id/"
        "advertising_identifier",
        "identity_type",
    )


def erasure_success_json(request_id: str, warnings: list[Any]) -> bytes:
    """GDPR erasure's 200 (REF §6.6's body; its `request_id` is trackd's request id)."""
    body = {"status": "success", "message": SUCCESS_MESSAGE, "request_id": request_id}
    return msgspec.json.encode(body)


# -- the documented answers (/openapi.json is generated from these, issue 12 item 5) -------------
#
# Each describes the body built above it in this module; tests/wire/test_contract.py decodes the
# real bodies with them, so the document cannot drift from what is answered.


class ErrorDetail(msgspec.Struct, omit_defaults=True):
    """What failed: MoEngage's message and type, the attribute at fault, trackd's request id."""

    message: str
    type: str
    request_id: str
    attribute: str | None = None


class ErrorBody(msgspec.Struct):
    """Every error's envelope (`error_body`), on every route."""

    status: Literal["fail"]
    error: ErrorDetail


class SuccessBody(msgspec.Struct, omit_defaults=True):
    """Track Event's 200 (`success_body`), every row's unless its own: accepted and durable;
    `warnings` only when something was dropped, cut or rewritten."""

    status: Literal["success"]
    message: str
    request_id: str
    warnings: list[Warning] | None = None


class MergeSuccessBody(msgspec.Struct):
    """Merge Users' 200 (`merge_success_json`, REF §6.4)."""

    status: Literal["success"]
    operation: Literal["created"]
    request_id: str


class TitledErrorBody(msgspec.Struct):
    """Delete User's 429 and 500 (`error_body` of a `TitledError`, REF §2.1)."""

    status: Literal["fail"]
    title: str
    description: str


def error_shape(exc: ContractError) -> type:
    """The documented shape `error_body` gives `exc`."""
    return TitledErrorBody if isinstance(exc, TitledError) else ErrorBody


class ExportUserNotFound(msgspec.Struct):
    identifier_type: str
    identifier: str


class ExportedUser(msgspec.Struct):
    user_attributes: dict[str, Any]


class ExportAnswer(msgspec.Struct):
    users_not_found: list[ExportUserNotFound]
    users: list[ExportedUser]


class ExportSuccessBody(msgspec.Struct):
    """Get User's 200 (`export_body`, REF §6.7's shape exactly)."""

    status: Literal["success"]
    type: Literal["export_users"]
    data: ExportAnswer


class TestConnectionSuccessBody(msgspec.Struct):
    """Test connection's 200 (`test_connection_body`, REF §6.8): the workspace's name."""

    status: Literal["success"]
    app_name: str
