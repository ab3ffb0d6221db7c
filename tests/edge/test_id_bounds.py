"""Ids are bounded so that every accepted id reads back (issue 11): a customer_id, an Identity
Resolution identifier value or a device_id over 512 characters is a 400 naming it, on Track
Event (typed and generic paths) and Track User; 512 is accepted."""

from __future__ import annotations

from typing import Any

import pytest

from tests.edge.answers import MISSING, failure, queued, success
from tests.factories import SEED_BODY
from tests.harness import Harness

pytestmark = pytest.mark.anyio

LONGEST = "x" * 512
TOO_LONG = "x" * 513


def event(**fields: Any) -> dict[str, Any]:
    return {**SEED_BODY, **fields}


def too_long(response: Any, attribute: str) -> dict[str, Any]:
    return failure(
        response, f"{attribute} is expected to be at most 512 characters", MISSING, attribute
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"customer_id": TOO_LONG},
        {"customer_id": "中" * 513},
        {"device_id": TOO_LONG},
        # the generic path (an attribute name the typed path leaves to it)
        {"customer_id": TOO_LONG, "actions": [{"action": "a", "attributes": {"moe_x": 1}}]},
    ],
)
async def test_an_id_over_512_characters_is_a_400_naming_it(
    harness: Harness, fields: dict[str, Any]
) -> None:
    response = await harness.post(event(**fields))
    attribute = "customer_id" if "customer_id" in fields else "device_id"
    assert response.status_code == 400
    assert response.json() == too_long(response, attribute)
    assert await queued(harness) == []


async def test_ids_of_512_characters_are_accepted(harness: Harness) -> None:
    response = await harness.post(event(customer_id=LONGEST, device_id="中" * 512))
    assert response.status_code == 200
    assert response.json() == success(response)
    [envelope] = await queued(harness)
    assert (envelope.customer_id, envelope.device_id) == (LONGEST, "中" * 512)


async def test_an_identifier_value_over_512_characters_is_a_400_naming_it(
    harness: Harness,
) -> None:
    workspace_id, key = await harness.create_workspace(
        workspace_id="IR", identity_resolution=("email",)
    )
    body = {k: v for k, v in SEED_BODY.items() if k != "customer_id"}
    body["user_identifiers"] = {"email": TOO_LONG}
    response = await harness.post(
        body, workspace_id=workspace_id, headers=harness.headers(workspace_id, key)
    )
    assert response.status_code == 400
    assert response.json() == too_long(response, "user_identifiers.email")


async def test_track_user_bounds_its_customer_id_too(harness: Harness) -> None:
    body = {"type": "customer", "customer_id": TOO_LONG, "attributes": {"a": 1}}
    response = await harness.client.post("/v1/customer/WS1", json=body, headers=harness.headers())
    assert response.status_code == 400
    assert response.json() == too_long(response, "customer_id")
