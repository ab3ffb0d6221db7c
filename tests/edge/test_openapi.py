from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate

from tests.factories import SEED_BODY
from tests.harness import Harness

pytestmark = pytest.mark.anyio

#: The check table's statuses, and the 422 of an Idempotency-Key used for another request.
CONTRACT_STATUSES = {"200", "400", "401", "403", "409", "413", "415", "422", "429", "500", "503"}


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}", "components": document["components"]}


async def test_openapi_document_is_valid_openapi_3_1(harness: Harness) -> None:
    response = await harness.client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert document["openapi"] == "3.1.0"


async def test_openapi_describes_every_status_of_the_check_table(harness: Harness) -> None:
    document = (await harness.client.get("/openapi.json")).json()
    operation = document["paths"]["/v1/event/{workspace_id}"]["post"]
    assert set(operation["responses"]) == CONTRACT_STATUSES
    assert operation["responses"]["429"]["headers"]["Retry-After"]
    assert operation["responses"]["503"]["headers"]["Retry-After"]


async def test_real_responses_match_their_documented_schemas(harness: Harness) -> None:
    document = (await harness.client.get("/openapi.json")).json()
    jsonschema.validate(SEED_BODY, _schema(document, "CreateEventRequest"))
    accepted = await harness.post({**SEED_BODY, "actions": [{"action": "x", "moe_y": 1}]})
    jsonschema.validate(accepted.json(), _schema(document, "Success"))
    warned = await harness.post(
        {**SEED_BODY, "actions": [{"action": "x", "attributes": {"moe_y": 1}}]}
    )
    assert warned.json()["warnings"] == [
        {"index": 0, "attribute": "moe_y", "reason": "reserved_prefix"}
    ]
    jsonschema.validate(warned.json(), _schema(document, "Success"))
    rejected = await harness.post({"type": "event"})
    assert rejected.status_code == 400
    jsonschema.validate(rejected.json(), _schema(document, "Failure"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"status": "fail"}, _schema(document, "Failure"))


async def test_the_events_limit_is_documented_with_the_bounds_it_enforces(
    harness: Harness,
) -> None:
    document = (await harness.client.get("/openapi.json")).json()
    parameters = document["paths"]["/api/workspaces/{workspace_id}/events"]["get"]["parameters"]
    [limit] = [p for p in parameters if p["name"] == "limit"]
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}
    for value, status in (("0", 400), ("1", 200), ("1000", 200), ("1001", 400)):
        response = await harness.client.get(
            "/api/workspaces/WS1/events",
            params={"limit": value},
            headers={"Authorization": "Bearer tok"},
        )
        assert response.status_code == status, value
