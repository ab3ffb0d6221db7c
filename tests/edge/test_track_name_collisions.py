"""Attribute names equal once cut to 200 characters (track-event.md §4, trackd's decision): the
first in the body keeps its value, each later one is dropped with `name_collision` naming both
originals; a strict workspace rejects the request. Track Event and Track User alike."""

from __future__ import annotations

from typing import Any

import pytest

from tests.edge.answers import success
from tests.harness import Harness
from trackd.models import Action, Warning

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("inspecting")]

T_MS = 1708939453396
EXACT, LONG = "n" * 200, "n" * 230
COLLISION = f"{LONG} (collides with {EXACT})"


def body(attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "event",
        "customer_id": "123",
        "actions": [{"action": "Viewed", "current_time": T_MS, "attributes": attributes}],
    }


async def test_the_first_of_two_colliding_names_keeps_its_value_and_the_200_says_so(
    harness: Harness,
) -> None:
    response = await harness.post(body({EXACT: "first", LONG: "second", "other": 1}))
    assert response.status_code == 200
    warning = {"index": 0, "attribute": COLLISION, "reason": "name_collision"}
    assert response.json() == success(response, [warning])
    [envelope] = await harness.queued()
    assert envelope.warnings == [Warning(0, "name_collision", COLLISION)]
    assert envelope.actions == [
        Action(
            index=0,
            action="Viewed",
            attributes={EXACT: "first", "other": 1},
            current_time=T_MS,
            user_time=T_MS,
            user_timezone_offset=0,
        )
    ]


async def test_a_strict_workspace_rejects_a_name_collision_and_keeps_nothing(
    harness: Harness,
) -> None:
    workspace_id, key = await harness.create_workspace(workspace_id="STRICT", strict=True)
    response = await harness.post(
        body({EXACT: 1, LONG: 2}),
        workspace_id="STRICT",
        headers=harness.headers(workspace_id, key),
    )
    assert response.status_code == 400
    assert response.json() == {
        "status": "fail",
        "error": {
            "message": f"{COLLISION} is the same as an earlier attribute name once cut to 200"
            " characters (strict mode: name_collision)",
            "type": "StrictModeViolation",
            "attribute": COLLISION,
            "request_id": response.headers["x-request-id"],
        },
    }
    assert await harness.queued() == []


async def test_track_user_reports_a_name_collision_the_same_way(harness: Harness) -> None:
    response = await harness.client.post(
        "/v1/customer/WS1",
        json={"type": "customer", "customer_id": "c1", "attributes": {EXACT: 1, LONG: 2}},
        headers=harness.headers(),
    )
    assert response.status_code == 200
    warning = {"index": 0, "attribute": COLLISION, "reason": "name_collision"}
    assert response.json() == success(response, [warning])
    [envelope] = await harness.queued()
    assert envelope.user_attributes == {EXACT: 1}
