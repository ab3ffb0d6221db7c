"""`POST /v1/event/{workspace_id}`: names and values (track-event.md §4).

In a normal workspace what the edge drops, cuts or rewrites is listed in the 200 body's
`warnings` and kept on the queued envelope; in a strict workspace the first such problem
rejects the whole request with a 400 naming the field.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.edge.answers import success
from tests.factories import SEED_BODY
from tests.harness import Harness
from trackd.models import Action, Warning

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("inspecting")]


T_MS = 1708939453396
URL = "https://example.com/" + "p" * 493  # 513 characters


def event(name: str = "Viewed", attributes: Any = None, **fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"action": name, "current_time": T_MS, **fields}
    if attributes is not None:
        result["attributes"] = attributes
    return result


def request(*actions: dict[str, Any], customer_id: Any = "123") -> dict[str, Any]:
    body = copy.deepcopy(SEED_BODY)
    body["customer_id"] = customer_id
    body["actions"] = list(actions) or [event()]
    return body


def stored(index: int = 0, name: str = "Viewed", attributes: Any = None, **fields: Any) -> Action:
    """The Action the edge queues for `event(name, attributes)` at position `index`."""
    return Action(
        index=index,
        action=name,
        attributes=attributes or {},
        current_time=T_MS,
        user_time=T_MS,
        user_timezone_offset=0,
        **fields,
    )


async def post(
    harness: Harness, body: dict[str, Any], warnings: list[dict[str, Any]] | None
) -> Any:
    """Post, expect 200 with exactly `warnings` (None: no key), return the queued envelope."""
    response = await harness.post(body)
    assert response.status_code == 200
    assert response.json() == success(response, warnings)
    [envelope] = await harness.queued()
    assert envelope.request_id == response.headers["x-request-id"]
    expected = [Warning(w["index"], w["reason"], w.get("attribute")) for w in warnings or []]
    assert envelope.warnings == expected
    return envelope


async def test_clean_request_has_no_warnings_key(harness: Harness) -> None:
    attributes = {"s": "x" * 512, "n": 1.5, "b": False, "list": list(range(50)), "url": URL[:512]}
    envelope = await post(harness, request(event("E" * 200, attributes)), None)
    assert envelope.actions == [stored(0, "E" * 200, attributes)]


async def test_reserved_prefix_on_an_event_name_drops_the_event(harness: Harness) -> None:
    body = request(event("moe_custom"), event("Kept"), event("MOE_Shouting"), event("moebius"))
    envelope = await post(
        harness,
        body,
        [{"index": 0, "reason": "reserved_prefix"}, {"index": 2, "reason": "reserved_prefix"}],
    )
    assert envelope.actions == [stored(1, "Kept"), stored(3, "moebius")]


async def test_reserved_prefix_on_an_attribute_drops_the_attribute(harness: Harness) -> None:
    body = request(event(attributes={"moe_x": 1, "kept": 2, "Moe_Y": "z", "moebius": 3}))
    envelope = await post(
        harness,
        body,
        [
            {"index": 0, "attribute": "moe_x", "reason": "reserved_prefix"},
            {"index": 0, "attribute": "Moe_Y", "reason": "reserved_prefix"},
        ],
    )
    assert envelope.actions == [stored(0, attributes={"kept": 2, "moebius": 3})]


async def test_long_event_and_attribute_names_are_cut_to_200(harness: Harness) -> None:
    long_name = "E" * 201
    long_attribute = "a" * 250
    body = request(event(long_name, {long_attribute: 1, "short": 2}))
    envelope = await post(
        harness,
        body,
        [
            {"index": 0, "attribute": "action", "reason": "name_truncated"},
            {"index": 0, "attribute": "a" * 200, "reason": "name_truncated"},
        ],
    )
    assert envelope.actions == [stored(0, "E" * 200, {"a" * 200: 1, "short": 2})]


async def test_long_string_values_are_cut_to_512(harness: Harness) -> None:
    body = request(
        event(attributes={"desc": "v" * 600, "tags": ["t" * 513, "ok"], "obj": {"k": "w" * 1000}})
    )
    envelope = await post(
        harness,
        body,
        [
            {"index": 0, "attribute": "desc", "reason": "value_truncated"},
            {"index": 0, "attribute": "tags", "reason": "value_truncated"},
            {"index": 0, "attribute": "obj", "reason": "value_truncated"},
        ],
    )
    assert envelope.actions == [
        stored(attributes={"desc": "v" * 512, "tags": ["t" * 512, "ok"], "obj": {"k": "w" * 512}})
    ]


async def test_long_url_values_are_dropped_not_cut(harness: Harness) -> None:
    body = request(
        event(attributes={"link": URL, "shout": "HTTP://EXAMPLE.COM/" + "P" * 600, "ok": URL[:512]})
    )
    envelope = await post(
        harness,
        body,
        [
            {"index": 0, "attribute": "link", "reason": "url_too_long"},
            {"index": 0, "attribute": "shout", "reason": "url_too_long"},
        ],
    )
    assert envelope.actions == [stored(attributes={"ok": URL[:512]})]


async def test_only_the_first_100_attributes_are_kept(harness: Harness) -> None:
    attributes = {f"a{i:03}": i for i in range(102)}
    envelope = await post(
        harness,
        request(event(attributes=attributes)),
        [
            {"index": 0, "attribute": "a100", "reason": "too_many_attributes"},
            {"index": 0, "attribute": "a101", "reason": "too_many_attributes"},
        ],
    )
    assert envelope.actions == [stored(attributes={f"a{i:03}": i for i in range(100)})]


async def test_null_attributes_do_not_count_towards_the_100(harness: Harness) -> None:
    attributes: dict[str, Any] = {"gone": None, **{f"a{i:03}": i for i in range(100)}}
    envelope = await post(harness, request(event(attributes=attributes)), None)
    assert envelope.actions == [stored(attributes={f"a{i:03}": i for i in range(100)})]


async def test_arrays_keep_their_first_50_elements(harness: Harness) -> None:
    body = request(event(attributes={"list": list(range(60)), "fifty": list(range(50))}))
    envelope = await post(
        harness, body, [{"index": 0, "attribute": "list", "reason": "array_truncated"}]
    )
    assert envelope.actions == [
        stored(attributes={"list": list(range(50)), "fifty": list(range(50))})
    ]


async def test_mixed_type_arrays_are_dropped(harness: Harness) -> None:
    attributes = {
        "num_str": [1, "a"],
        "bool_num": [True, 1],
        "nested": [[1], [2]],
        "ints_and_floats": [1, 2.5],
        "objects": [{"a": 1}, {"b": 2}],
    }
    envelope = await post(
        harness,
        request(event(attributes=attributes)),
        [
            {"index": 0, "attribute": "num_str", "reason": "mixed_array"},
            {"index": 0, "attribute": "bool_num", "reason": "mixed_array"},
            {"index": 0, "attribute": "nested", "reason": "mixed_array"},
        ],
    )
    assert envelope.actions == [
        stored(attributes={"ints_and_floats": [1, 2.5], "objects": [{"a": 1}, {"b": 2}]})
    ]


async def test_objects_deeper_than_two_levels_are_stored_as_json_strings(
    harness: Harness,
) -> None:
    attributes = {"deep": {"a": {"b": {"c": 1, "d": [1, 2]}}}, "shallow": {"a": {"b": 1}}}
    envelope = await post(
        harness,
        request(event(attributes=attributes)),
        [{"index": 0, "attribute": "deep", "reason": "object_flattened"}],
    )
    assert envelope.actions == [
        stored(attributes={"deep": {"a": {"b": '{"c":1,"d":[1,2]}'}}, "shallow": {"a": {"b": 1}}})
    ]


async def test_null_values_are_dropped_silently(harness: Harness) -> None:
    attributes = {"gone": None, "kept": 1, "list": [1, None, 2], "obj": {"k": None, "j": "v"}}
    envelope = await post(harness, request(event(attributes=attributes)), None)
    assert envelope.actions == [stored(attributes={"kept": 1, "list": [1, 2], "obj": {"j": "v"}})]


async def test_warnings_carry_the_index_of_their_action(harness: Harness) -> None:
    body = request(event("First"), event("Second", {"moe_a": 1}), event("Third", {"x": "y" * 513}))
    envelope = await post(
        harness,
        body,
        [
            {"index": 1, "attribute": "moe_a", "reason": "reserved_prefix"},
            {"index": 2, "attribute": "x", "reason": "value_truncated"},
        ],
    )
    assert envelope.actions == [
        stored(0, "First"),
        stored(1, "Second"),
        stored(2, "Third", {"x": "y" * 512}),
    ]


# customer_id values MoEngage disallows ----------------------------------------------------------


@pytest.mark.parametrize("customer_id", ["guest", "NULL", "Unknown", "n/a", "(empty)", "-1", 0, 2])
async def test_disallowed_customer_id_drops_every_action(
    harness: Harness, customer_id: Any
) -> None:
    envelope = await post(
        harness,
        request(event("One"), event("Two"), customer_id=customer_id),
        [
            {"index": 0, "reason": "customer_id_disallowed"},
            {"index": 1, "reason": "customer_id_disallowed"},
        ],
    )
    assert envelope.actions == []


@pytest.mark.parametrize("customer_id", ["guest1", "3", 10, "nulls", "user-1"])
async def test_customer_id_resembling_a_disallowed_one_is_kept(
    harness: Harness, customer_id: Any
) -> None:
    envelope = await post(harness, request(event(), customer_id=customer_id), None)
    assert envelope.customer_id == str(customer_id)
    assert envelope.actions == [stored()]


# platform ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("ANDROID", "ANDROID"),
        ("android", "ANDROID"),
        ("Android", "ANDROID"),
        ("iOS", "iOS"),
        ("IOS", "iOS"),
        ("ios", "iOS"),
        ("web", "web"),
        ("WEB", "web"),
        ("tv", "TV"),
        ("Unknown", "unknown"),
    ],
)
async def test_platform_is_matched_case_insensitively(
    harness: Harness, sent: str, kept: str
) -> None:
    envelope = await post(harness, request(event(platform=sent)), None)
    assert envelope.actions == [stored(platform=kept)]


async def test_missing_platform_is_stored_as_unknown_without_a_warning(harness: Harness) -> None:
    envelope = await post(harness, request(event()), None)
    assert envelope.actions == [stored(platform="unknown")]


@pytest.mark.parametrize(
    ("sent", "raw"), [("Windows", "Windows"), ("android-tv", "android-tv"), (5, "5")]
)
async def test_unknown_platform_is_stored_as_unknown_keeping_the_raw_value(
    harness: Harness, sent: Any, raw: str
) -> None:
    envelope = await post(
        harness,
        request(event(platform=sent)),
        [{"index": 0, "attribute": "platform", "reason": "unknown_platform"}],
    )
    assert envelope.actions == [stored(platform="unknown", platform_raw=raw)]


async def test_action_level_fields_of_the_wrong_type_are_dropped_with_a_warning(
    harness: Harness,
) -> None:
    body = request(event(app_version={"major": 1}, moe_os_type=["ios"], real_time_action=True))
    envelope = await post(
        harness,
        body,
        [
            {"index": 0, "attribute": "app_version", "reason": "invalid_type"},
            {"index": 0, "attribute": "moe_os_type", "reason": "invalid_type"},
            {"index": 0, "attribute": "real_time_action", "reason": "invalid_type"},
        ],
    )
    assert envelope.actions == [stored()]


# Strict mode ------------------------------------------------------------------------------------


@pytest.fixture
async def strict(harness: Harness) -> dict[str, str]:
    """Headers for STRICT, a strict-mode workspace."""
    workspace_id, key = await harness.create_workspace(workspace_id="STRICT", strict=True)
    return harness.headers(workspace_id, key)


STRICT_CASES = [
    pytest.param(
        request(event("moe_custom")), "action", "action uses the reserved prefix moe_ "
        "(strict mode: reserved_prefix)", id="reserved event name",
    ),
    pytest.param(
        request(event(attributes={"ok": 1, "moe_x": 1})), "moe_x",
        "moe_x uses the reserved prefix moe_ (strict mode: reserved_prefix)",
        id="reserved attribute",
    ),
    pytest.param(
        request(event("E" * 201)), "action",
        "action is longer than 200 characters (strict mode: name_truncated)", id="long name",
    ),
    pytest.param(
        request(event(attributes={"desc": "v" * 513})), "desc",
        "desc has a value longer than 512 characters (strict mode: value_truncated)",
        id="long value",
    ),
    pytest.param(
        request(event(attributes={"link": URL})), "link",
        "link has a URL value longer than 512 characters (strict mode: url_too_long)",
        id="long URL",
    ),
    pytest.param(
        request(event(attributes={f"a{i:03}": i for i in range(101)})), "a100",
        "a100 is beyond the first 100 attributes of the event (strict mode: too_many_attributes)",
        id="too many attributes",
    ),
    pytest.param(
        request(event(attributes={"list": list(range(51))})), "list",
        "list has more than 50 array elements (strict mode: array_truncated)", id="long array",
    ),
    pytest.param(
        request(event(attributes={"mixed": [1, "a"]})), "mixed",
        "mixed is an array of mixed types (strict mode: mixed_array)", id="mixed array",
    ),
    pytest.param(
        request(event(attributes={"obj": {"a": {"b": {"c": 1}}}})), "obj",
        "obj nests objects deeper than two levels (strict mode: object_flattened)",
        id="deep object",
    ),
    pytest.param(
        request(event(), customer_id="Guest"), "customer_id",
        "customer_id is a customer_id value MoEngage does not allow "
        "(strict mode: customer_id_disallowed)", id="disallowed customer_id",
    ),
    pytest.param(
        request(event(platform="Windows")), "platform",
        "platform is not one of ANDROID, iOS, web, TV, unknown (strict mode: unknown_platform)",
        id="unknown platform",
    ),
    pytest.param(
        request(event(attributes={"desc": "v" * 513}), event(attributes={"moe_x": 1})), "desc",
        "desc has a value longer than 512 characters (strict mode: value_truncated)",
        id="the first problem is named",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("body", "attribute", "message"), STRICT_CASES)
async def test_strict_workspace_rejects_the_whole_request_naming_the_field(
    harness: Harness, strict: dict[str, str], body: dict[str, Any], attribute: str, message: str
) -> None:
    response = await harness.post(body, workspace_id="STRICT", headers=strict)
    assert response.status_code == 400
    assert response.json() == {
        "status": "fail",
        "error": {
            "message": message,
            "type": "StrictModeViolation",
            "attribute": attribute,
            "request_id": response.headers["x-request-id"],
        },
    }
    assert await harness.queued() == []


async def test_strict_workspace_accepts_a_clean_request_and_drops_nulls_silently(
    harness: Harness, strict: dict[str, str]
) -> None:
    body = request(event(attributes={"kept": 1, "gone": None}, platform="ios"))
    response = await harness.post(body, workspace_id="STRICT", headers=strict)
    assert response.status_code == 200
    assert response.json() == success(response)
    [envelope] = await harness.queued()
    assert envelope.actions == [stored(attributes={"kept": 1}, platform="iOS")]
