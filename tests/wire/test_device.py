"""`trackd.wire.device.validate_device` (data-api.md §1): the checks in order, what is kept
and normalised, and what is dropped with which warning."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from tests.wire.events import PLAIN
from trackd.errors import ContractError
from trackd.models import Device, Warning
from trackd.wire.device import validate_device


def body(**attributes: Any) -> dict[str, Any]:
    return {
        "type": "device",
        "customer_id": 42,
        "device_id": 7,
        "attributes": {"platform": "ios", "push_id": "p", **attributes},
    }


def rejection(payload: Any) -> tuple[int, str, str, str | None]:
    with pytest.raises(ContractError) as caught:
        validate_device(payload, PLAIN, None, 0)
    e = caught.value
    return e.status, e.type, e.message, e.attribute


def test_ids_are_texts_the_platform_canonical_and_a_request_costs_one() -> None:
    validated = validate_device(
        body(moe_push_opted=True, os_version=17.2, app_version=3, moe_gaid=None), PLAIN, None, 0
    )
    assert (validated.customer_id, validated.device_id, validated.event_count) == ("42", "7", 1)
    assert validated.device == Device(
        device_id="7",
        platform="iOS",
        app_version="3",
        attributes={"push_id": "p", "moe_push_opted": True, "os_version": "17.2"},
    )
    assert validated.warnings == []


def test_dropped_attributes_are_warned_in_the_order_sent() -> None:
    validated = validate_device(
        body(extra=1, moe_gaid="g", idfv="v", model=["x"], moe_push_opted=1.5), PLAIN, None, 0
    )
    assert validated.warnings == [
        Warning(0, "custom_device_attribute", "attributes.extra"),
        Warning(0, "identifier_platform_mismatch", "attributes.moe_gaid"),
        Warning(0, "invalid_type", "attributes.model"),
    ]
    assert validated.device is not None
    assert validated.device.attributes == {"push_id": "p", "idfv": "v", "moe_push_opted": "1.5"}


def test_each_check_runs_before_the_next() -> None:
    assert rejection({"customer_id": None}) == (
        400, "MissingAttributeError", "type is not found in the payload", "type"
    )  # fmt: skip
    assert rejection({"type": "device", "device_id": 1, "attributes": 1}) == (
        400, "MissingAttributeError", "'customer_id' is not found in the payload", "customer_id"
    )  # fmt: skip
    assert rejection({"type": "device", "customer_id": "c", "attributes": 1}) == (
        400, "MissingAttributeError", "device_id is not found in the payload", "device_id"
    )  # fmt: skip
    assert rejection({**body(), "attributes": {"push_id": 1, "platform": "x"}}) == (
        400, "ValueError", "'platform' is not a valid platform.", "platform"
    )  # fmt: skip


def test_the_documented_body_type_decodes_the_documented_example() -> None:
    from trackd.wire.device import TrackDeviceBody

    example = {
        "type": "device",
        "customer_id": "c",
        "device_id": "d",
        "attributes": {"platform": "ANDROID", "push_id": "p", "model": "m"},
    }
    decoded = msgspec.convert(example, TrackDeviceBody)
    assert decoded.attributes.model == "m"
    assert TrackDeviceBody.__doc__ and "existing user" in TrackDeviceBody.__doc__


def test_a_portfolio_workspace_needs_its_project_code_after_type() -> None:
    from tests.wire.events import PORTFOLIO

    with pytest.raises(ContractError) as caught:
        validate_device({"type": "device"}, PORTFOLIO, "nope", 0)
    assert (caught.value.message, caught.value.attribute) == (
        "Given project_code is invalid.",
        "project_code",
    )
    assert validate_device(body(), PORTFOLIO, "P1", 0).customer_id == "42"
