"""Validation of a Track Device body (`POST /v1/device/{workspace_id}`, data-api.md §1, REF §6.3).

The checks, in Track Event's order (each over the whole request before the next):

1. the body is a JSON object (row 16);
2. `type` is there and exactly ``"device"`` (row 17's wording);
3. `project_code` in a Portfolio workspace (row 18);
4. `customer_id`: present (REF: ``'customer_id' is not found in the payload``), then row 20
   (a string or an integer, not empty, at most 512 characters);
5. `device_id`: present and not empty (``device_id is not found in the payload``, Track Event's
   wording for `customer_id`), a string or an integer (``device_id is expected to be String or
   Unicode String.``), at most 512 characters;
6. `attributes`: present (``'attributes' is not found in the payload``), an object (row 24);
7. `attributes.platform`: present (``'platform' is not found in payload``), one of ANDROID, iOS,
   web, TV matched case-insensitively (else ``'platform' is not a valid platform.``,
   `ValueError`);
8. `attributes.push_id`: present and not empty (``'push_id' is not found in payload``), a
   string (``push_id is expected to be String or Unicode String.``).

Then, as warnings in the 200 (and issues): an attribute that is not one MoEngage keeps is
dropped (`custom_device_attribute`); `idfv` on ANDROID and `moe_gaid` on iOS are dropped
(`identifier_platform_mismatch`); an optional attribute of a type it does not take (an object,
an array) is dropped (`invalid_type`). Whether the user exists, which of its devices the one sent
replaces, and the 1,000 devices limit are decided when it is applied (`trackd.processor.devices`).
A request costs one device update against the rate limit.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from trackd.models import DEVICE_ATTRIBUTES, Device, Warning, Workspace
from trackd.wire import contract
from trackd.wire.event import (
    MAX_ID_LENGTH,
    Identifier,
    NonEmpty,
    Validated,
    check_customer_id,
    check_project,
    check_type,
)

#: Track Device's platforms (REF §6.3), by their lower case.
DEVICE_PLATFORMS = {p.lower(): p for p in ("ANDROID", "iOS", "web", "TV")}
#: An advertising identifier of one platform is dropped from a device of the other (REF §6.3).
FOREIGN_IDENTIFIER = {"ANDROID": "idfv", "iOS": "moe_gaid"}
#: The optional attributes MoEngage documents as "True"/"False" strings; a JSON boolean is kept.
FLAGS = frozenset({"moe_push_opted", "moe_push_provisional_opted"})


class DeviceAttributes(msgspec.Struct, omit_defaults=True):
    """A device's attributes (REF §6.3): `platform` (matched case-insensitively) and `push_id`
    are required; any other attribute is dropped with warning `custom_device_attribute`."""

    platform: Literal["ANDROID", "iOS", "web", "TV"]
    push_id: NonEmpty
    model: str | None = None
    moe_push_opted: str | bool | None = None
    moe_push_provisional_opted: str | bool | None = None
    app_version: str | None = None
    os_version: str | None = None
    moe_gaid: str | None = None
    idfv: str | None = None


class TrackDeviceBody(msgspec.Struct, omit_defaults=True, tag_field="type", tag="device"):
    """Track Device's request body (`POST /v1/device/{workspace_id}`, REF §6.3): a device of
    an existing user, who gets it (or its update) in queue order. `type` is ``"device"``."""

    customer_id: Identifier | int
    device_id: Identifier | int
    attributes: DeviceAttributes


def validate_device(
    payload: Any, workspace: Workspace, project_code: str | None, received_ms: int
) -> Validated:
    if not isinstance(payload, dict):
        raise contract.not_an_object()
    check_type(payload, "device")
    check_project(workspace, project_code)
    if payload.get("customer_id") is None:
        raise contract.device_not_found("customer_id")
    customer_id = check_customer_id(payload)
    device_id = _device_id(payload.get("device_id"))
    raw = payload.get("attributes")
    if raw is None:
        raise contract.device_not_found("attributes")
    if not isinstance(raw, dict):
        raise contract.attributes_not_object()
    platform = _platform(raw.get("platform"))
    push_id = raw.get("push_id")
    if push_id is None or push_id == "":
        raise contract.device_attribute_not_found("push_id")
    if not isinstance(push_id, str):
        raise contract.not_a_string("push_id")
    warnings: list[Warning] = []
    attributes, app_version = _kept(raw, platform, warnings)
    if workspace.strict and warnings:
        raise contract.strict_violation(warnings[0].attribute or "attributes", warnings[0].reason)
    assert customer_id is not None  # checked present above
    device = Device(
        device_id=device_id, platform=platform, app_version=app_version, attributes=attributes
    )
    return Validated(
        customer_id=customer_id,
        device_id=device_id,
        user_identifiers=None,
        actions=[],
        warnings=warnings,
        event_count=1,
        device=device,
    )


def _device_id(value: Any) -> str:
    if value is None or value == "":
        raise contract.not_found("device_id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise contract.not_a_string("device_id")
    text = str(value)
    if len(text) > MAX_ID_LENGTH:
        raise contract.id_too_long("device_id", MAX_ID_LENGTH)
    return text


def _platform(value: Any) -> str:
    if value is None:
        raise contract.device_attribute_not_found("platform")
    platform = DEVICE_PLATFORMS.get(value.lower()) if isinstance(value, str) else None
    if platform is None:
        raise contract.invalid_device_platform()
    return platform


def _kept(
    raw: dict[str, Any], platform: str, warnings: list[Warning]
) -> tuple[dict[str, Any], str | None]:
    """The attributes kept (`DEVICE_ATTRIBUTES`) and `app_version`, with a warning for each
    dropped; null counts as absent."""
    kept: dict[str, Any] = {}
    app_version = None
    foreign = FOREIGN_IDENTIFIER.get(platform)
    for name, value in raw.items():
        if name == "platform" or value is None:
            continue
        if name != "app_version" and name not in DEVICE_ATTRIBUTES:
            warnings.append(Warning(0, "custom_device_attribute", f"attributes.{name}"))
            continue
        if name == foreign:
            warnings.append(Warning(0, "identifier_platform_mismatch", f"attributes.{name}"))
            continue
        text = _value(name, value)
        if text is None:
            warnings.append(Warning(0, "invalid_type", f"attributes.{name}"))
        elif name == "app_version":
            app_version = str(text)
        else:
            kept[name] = text
    return kept, app_version


def _value(name: str, value: Any) -> str | bool | None:
    """A string as sent; a number as its text; a boolean for the two flags; else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return value if name in FLAGS else None
    if isinstance(value, int | float):
        return str(value)
    return None
