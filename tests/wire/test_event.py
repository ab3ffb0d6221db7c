"""`validate_event`: contract rows 16-25, then what is dropped, cut or rewritten, and why."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.factories import SEED_BODY
from tests.wire.events import (
    IDENTITY,
    IST,
    MALFORMED,
    MISSING,
    PLAIN,
    PORTFOLIO,
    RECEIVED,
    ROW_16,
    STRICT,
    TABLE,
    TYPE_MISSING,
    TYPE_NOT_EVENT,
    almost_valid,
    json_values,
    projects,
    workspaces,
)
from trackd.errors import ContractError
from trackd.models import Action, Warning, Workspace
from trackd.wire.event import Validated, validate_event
from trackd.wire.times import OFFSET_EXPECTED

STRICT_REASONS = {
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
}
WHOLE_EVENT_REASONS = {"reserved_prefix", "future_dated", "customer_id_disallowed"}
PLATFORMS = {"ANDROID", "iOS", "web", "TV", "unknown"}


def rejection(payload: Any, workspace: Workspace = PLAIN, project: str | None = None) -> tuple:
    with pytest.raises(ContractError) as caught:
        validate_event(payload, workspace, project, RECEIVED)
    exc = caught.value
    return exc.status, exc.type, exc.message, exc.attribute


def event(*actions: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"type": "event", "customer_id": "u1", "actions": list(actions), **top}


# Unit examples -----------------------------------------------------------------------------


def test_the_seed_request_validates_to_one_android_action() -> None:
    assert validate_event(SEED_BODY, PLAIN, None, RECEIVED) == Validated(
        customer_id="123",
        device_id="123",
        user_identifiers=None,
        actions=[
            Action(
                index=0,
                action="ProductAdded",
                attributes={"product": "Accessories", "color": "Black", "Brand": "Adidas"},
                platform="ANDROID",
                app_version="1.2.3",
                current_time=1708939453396,
                user_time=1708939453396,
                user_timezone_offset=0,
            )
        ],
        warnings=[],
        event_count=1,
    )


def test_every_drop_and_rewrite_is_reported_with_its_action_index() -> None:
    payload = event(
        {"action": "moe_app_opened"},
        {"action": "Bought", "current_time": RECEIVED + 301_000},
        {
            "action": "Viewed",
            "current_time": RECEIVED + 300_000,
            "attributes": {"MOE_x": 1, "ok": 2, "gone": None},
            "platform": "Windows",
        },
    )
    result = validate_event(payload, PLAIN, None, RECEIVED)
    assert result.warnings == [
        Warning(0, "reserved_prefix"),
        Warning(1, "future_dated"),
        Warning(2, "reserved_prefix", "MOE_x"),
        Warning(2, "unknown_platform", "platform"),
    ]
    assert result.actions == [
        Action(
            index=2,
            action="Viewed",
            attributes={"ok": 2},
            platform="unknown",
            platform_raw="Windows",
            current_time=RECEIVED + 300_000,
            user_time=RECEIVED + 300_000,
            user_timezone_offset=0,
        )
    ]
    assert result.event_count == 3


def test_strict_mode_rejects_the_first_warning_naming_its_field() -> None:
    payload = event({"action": "Viewed", "attributes": {"moe_x": 1}}, {"action": "moe_y"})
    assert rejection(payload, STRICT) == (
        400,
        "StrictModeViolation",
        "moe_x uses the reserved prefix moe_ (strict mode: reserved_prefix)",
        "moe_x",
    )


def test_attribute_names_colliding_after_the_cut_keep_the_first_value_and_say_so() -> None:
    exact, long = "n" * 200, "n" * 230
    result = validate_event(
        event({"action": "A", "attributes": {exact: 1, long: 2}}), PLAIN, None, RECEIVED
    )
    assert [a.attributes for a in result.actions] == [{exact: 1}]
    assert result.warnings == [
        Warning(0, "name_collision", f"{long} (collides with {exact})"),
    ]


def test_strict_mode_rejects_a_name_collision_naming_both_names() -> None:
    exact, long = "n" * 200, "n" * 230
    payload = event({"action": "A", "attributes": {exact: 1, long: 2}})
    attribute = f"{long} (collides with {exact})"
    assert rejection(payload, STRICT) == (
        400,
        "StrictModeViolation",
        f"{attribute} is the same as an earlier attribute name once cut to 200 characters"
        " (strict mode: name_collision)",
        attribute,
    )


def test_strict_mode_names_current_time_for_a_future_dated_event() -> None:
    payload = event({"action": "Viewed", "current_time": RECEIVED + 3_600_000})
    assert rejection(payload, STRICT) == (
        400,
        "StrictModeViolation",
        "current_time is later than the receive time plus the workspace's clock-skew allowance"
        " (strict mode: future_dated)",
        "current_time",
    )


@pytest.mark.parametrize("customer_id", ["Guest", "NULL", "0", "n/a", "(empty)", "-1", 2])
def test_a_disallowed_customer_id_drops_every_action(customer_id: object) -> None:
    payload = event({"action": "A"}, {"action": "B"}, customer_id=customer_id)
    result = validate_event(payload, PLAIN, None, RECEIVED)
    assert result.actions == []
    assert result.warnings == [
        Warning(0, "customer_id_disallowed"),
        Warning(1, "customer_id_disallowed"),
    ]
    assert result.event_count == 2


@pytest.mark.parametrize("field", ["app_version", "moe_os_type", "real_time_action"])
def test_optional_text_fields_of_the_wrong_type_are_reported(field: str) -> None:
    result = validate_event(event({"action": "A", field: ["x"]}), PLAIN, None, RECEIVED)
    assert [getattr(a, field) for a in result.actions] == [None]
    assert result.warnings == [Warning(0, "invalid_type", field)]


def test_numeric_optional_text_fields_are_kept_as_text() -> None:
    action = {"action": "A", "app_version": 3, "moe_os_type": 1.5, "real_time_action": "true"}
    [kept] = validate_event(event(action), PLAIN, None, RECEIVED).actions
    assert (kept.app_version, kept.moe_os_type, kept.real_time_action) == ("3", "1.5", "true")


def test_long_event_names_are_cut_and_reported_as_action() -> None:
    name = "E" * 250
    result = validate_event(event({"action": name}), PLAIN, None, RECEIVED)
    assert [a.action for a in result.actions] == ["E" * 200]
    assert result.warnings == [Warning(0, "name_truncated", "action")]


@pytest.mark.parametrize(
    ("raw", "platform"),
    [("android", "ANDROID"), ("IOS", "iOS"), ("Web", "web"), ("tv", "TV"), ("", "unknown")],
)
def test_platforms_are_matched_case_insensitively(raw: str, platform: str) -> None:
    result = validate_event(event({"action": "A", "platform": raw}), PLAIN, None, RECEIVED)
    assert [(a.platform, a.platform_raw) for a in result.actions] == [(platform, None)]
    assert result.warnings == []


def test_device_id_defaults_to_customer_id_and_a_bad_one_is_reported() -> None:
    default = validate_event(event({"action": "A"}), PLAIN, None, RECEIVED)
    assert (default.customer_id, default.device_id) == ("u1", "u1")
    bad = validate_event(event({"action": "A"}, {"action": "B"}, device_id={}), PLAIN, None, 0)
    assert bad.device_id == "u1"
    assert bad.warnings == [
        Warning(0, "invalid_type", "device_id"),
        Warning(1, "invalid_type", "device_id"),
    ]


def test_an_integer_customer_id_is_kept_as_text() -> None:
    result = validate_event(event({"action": "A"}, customer_id=123), PLAIN, None, RECEIVED)
    assert (result.customer_id, result.device_id) == ("123", "123")


def test_the_workspace_offset_fills_in_missing_times() -> None:
    [kept] = validate_event(event({"action": "A"}), IST, None, RECEIVED).actions
    assert (kept.current_time, kept.user_time, kept.user_timezone_offset) == (
        RECEIVED,
        RECEIVED + 19_800_000,
        19800,
    )


def test_identity_resolution_accepts_identifiers_instead_of_a_customer_id() -> None:
    payload = {
        "type": "event",
        "user_identifiers": {"moe_mobile": "+9198765", "email": " ", "other": "x"},
        "actions": [{"action": "A"}],
    }
    result = validate_event(payload, IDENTITY, None, RECEIVED)
    assert (result.customer_id, result.device_id) == (None, None)
    assert result.user_identifiers == {"moe_mobile": "+9198765"}
    assert [a.action for a in result.actions] == ["A"]


@pytest.mark.parametrize(
    ("payload", "workspace", "project", "expected"),
    [
        pytest.param([], PLAIN, None, ROW_16, id="16 body is an array"),
        pytest.param("event", PLAIN, None, ROW_16, id="16 body is a string"),
        pytest.param({"customer_id": "u1"}, PLAIN, None, TYPE_MISSING, id="17 no type"),
        pytest.param({"type": "Event"}, PLAIN, None, TYPE_NOT_EVENT, id="17 type in capitals"),
        pytest.param(
            event({"action": "A"}),
            PORTFOLIO,
            None,
            (400, "InvalidParams", "project_code is required for this workspace", "project_code"),
            id="18 portfolio without project_code",
        ),
        pytest.param(
            event({"action": "A"}),
            PORTFOLIO,
            "P2",
            (400, "InvalidParams", "Given project_code is invalid.", "project_code"),
            id="18 unknown project_code",
        ),
        pytest.param(
            {"type": "event", "user_identifiers": {"moe_mobile": "  "}, "actions": []},
            IDENTITY,
            None,
            (400, MISSING, "customer_id is not found in the payload", "customer_id"),
            id="19 only blank identifiers",
        ),
        pytest.param(
            event({"action": "A"}, customer_id=True),
            PLAIN,
            None,
            (
                400,
                MISSING,
                "customer_id is expected to be String or Unicode String.",
                "customer_id",
            ),
            id="20 boolean customer_id",
        ),
        pytest.param(
            event({"action": "A"}, customer_id=""),
            PLAIN,
            None,
            (400, MISSING, "customer_id can not be empty Unicode String", "customer_id"),
            id="20 empty customer_id",
        ),
        pytest.param(
            event({"action": "A"}, "A"),
            PLAIN,
            None,
            (400, "Malformed JSON", MALFORMED, "actions"),
            id="22 an action that is not an object",
        ),
        pytest.param(
            event({"action": "A"}, {"action": 5}),
            PLAIN,
            None,
            (400, "Malformed JSON", MALFORMED, "action"),
            id="23 action not a string",
        ),
        pytest.param(
            event({"action": "A", "user_timezone_offset": 54001}),
            PLAIN,
            None,
            (
                400,
                MISSING,
                f"user_timezone_offset is expected to be {OFFSET_EXPECTED}",
                "user_timezone_offset",
            ),
            id="25 offset out of range",
        ),
    ],
)
def test_rows_16_to_25_reject_with_their_exact_error(
    payload: Any, workspace: Workspace, project: str | None, expected: tuple
) -> None:
    assert rejection(payload, workspace, project) == expected


# Properties --------------------------------------------------------------------------------


def outcome(payload: Any, workspace: Workspace, project: str | None) -> Validated | None:
    """The validation result, after checking that a rejection is one of the contract's 400s."""
    try:
        return validate_event(payload, workspace, project, RECEIVED)
    except ContractError as exc:
        got = (exc.status, exc.type, exc.message, exc.attribute)
        if exc.type == "StrictModeViolation":
            assert workspace.strict
            assert exc.status == 400
            assert exc.attribute
            assert any(
                exc.message == f"{exc.attribute} {text} (strict mode: {reason})"
                for reason, text in STRICT_REASONS.items()
            )
        else:
            assert got in TABLE
        return None


def check_indexes(result: Validated, sent: int) -> None:
    """Each action sent is kept or dropped with a whole-event reason, never both."""
    assert result.event_count == sent
    kept = [action.index for action in result.actions]
    assert kept == sorted(set(kept))
    dropped = {w.index for w in result.warnings if w.attribute is None}
    for index in range(sent):
        assert (index in kept) != (index in dropped)
    for warning in result.warnings:
        assert 0 <= warning.index < sent
        assert warning.reason in STRICT_REASONS
        if warning.attribute is None:
            assert warning.reason in WHOLE_EVENT_REASONS
        elif warning.reason != "reserved_prefix":  # also said of an attribute
            assert warning.reason not in WHOLE_EVENT_REASONS


def check_action(action: Action, raw: dict[str, Any], workspace: Workspace) -> None:
    assert action.action == raw["action"][:200]
    assert action.action[:4].lower() != "moe_"
    assert action.platform in PLATFORMS
    assert action.current_time <= RECEIVED + workspace.clock_skew * 1000
    assert -54000 <= action.user_timezone_offset <= 54000
    if raw.get("user_time") is None or raw.get("current_time") is None:
        assert action.user_time - action.current_time == action.user_timezone_offset * 1000
    assert len(action.attributes) <= 100
    for name in action.attributes:
        assert len(name) <= 200
        assert name[:4].lower() != "moe_"


def check_fields_kept_or_reported(result: Validated, sent: list[dict[str, Any]]) -> None:
    reported = {(w.index, w.attribute) for w in result.warnings}
    for action in result.actions:
        raw = sent[action.index]
        for field in ("app_version", "moe_os_type", "real_time_action"):
            if raw.get(field) is not None and getattr(action, field) is None:
                assert (action.index, field) in reported
        if action.platform_raw is not None:
            assert (action.index, "platform") in reported


def check_accepted(result: Validated, payload: dict[str, Any], workspace: Workspace) -> None:
    sent = payload["actions"]
    check_indexes(result, len(sent))
    for action in result.actions:
        check_action(action, sent[action.index], workspace)
    check_fields_kept_or_reported(result, sent)
    if workspace.strict:
        assert result.warnings == []
    customer_id = payload.get("customer_id")
    if customer_id is not None:
        assert result.customer_id == str(customer_id)


@settings(max_examples=300, deadline=None)
@given(payload=json_values, workspace=workspaces, project=projects)
def test_any_json_value_validates_or_gets_a_contract_400(
    payload: Any, workspace: Workspace, project: str | None
) -> None:
    result = outcome(payload, workspace, project)
    if not isinstance(payload, dict):
        assert result is None
        assert rejection(payload, workspace, project) == ROW_16
    elif "type" not in payload:
        assert rejection(payload, workspace, project) == TYPE_MISSING
    elif payload["type"] != "event":
        assert rejection(payload, workspace, project) == TYPE_NOT_EVENT
    if result is not None:
        check_accepted(result, payload, workspace)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=almost_valid, workspace=workspaces, project=projects)
def test_almost_valid_payloads_validate_or_get_a_contract_400(
    payload: dict[str, Any], workspace: Workspace, project: str | None
) -> None:
    result = outcome(payload, workspace, project)
    if result is not None:
        check_accepted(result, payload, workspace)
