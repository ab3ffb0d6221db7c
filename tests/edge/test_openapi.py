from __future__ import annotations

from typing import Any

import jsonschema
import msgspec
import pytest
from openapi_spec_validator import validate

from tests.factories import SEED_BODY
from tests.harness import Harness
from trackd.edge.app import _GETS
from trackd.edge.openapi import FAILURES, error_shapes, openapi_document
from trackd.edge.read import READ_ROUTES
from trackd.edge.v1 import V1_ROUTES, V1Route, WorkspaceFrom

pytestmark = pytest.mark.anyio

#: The check table's statuses, and the 422 of an Idempotency-Key used for another request.
CONTRACT_STATUSES = {"200", "400", "401", "403", "409", "413", "415", "422", "429", "500", "503"}
#: The read API's routes, as its table serves them (`trackd.edge.read.READ_ROUTES`).
READ_PATHS = {f"/api/workspaces/{{workspace_id}}/{r.path}" for r in READ_ROUTES}
ROWS = pytest.mark.parametrize("route", V1_ROUTES, ids=[r.pattern for r in V1_ROUTES])


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
    for route in V1_ROUTES:
        operation = document["paths"][route.pattern]["post"]
        assert set(operation["responses"]) == CONTRACT_STATUSES == {"200", *FAILURES}
        assert operation["responses"]["429"]["headers"]["Retry-After"]
        assert operation["responses"]["503"]["headers"]["Retry-After"]
        for status, response in operation["responses"].items():
            assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(
                response["headers"]
            ), status
            if status != "200":  # the envelope, or the row's own (Delete's 429 and 500)
                ref = response["content"]["application/json"]["schema"]["$ref"]
                shape = error_shapes(route)[status].__name__
                assert ref == f"#/components/schemas/{shape}"
                assert shape in ("ErrorBody", "TitledErrorBody")


async def test_every_served_route_is_in_the_document(harness: Harness) -> None:
    """Every row of the /v1 table (new rows included, with nothing else edited), the read API
    and the service routes; nothing else."""
    served = await harness.client.get("/openapi.json")
    assert served.json() == openapi_document()
    paths = set(served.json()["paths"])
    assert paths == {r.pattern for r in V1_ROUTES} | READ_PATHS | _GETS
    operation_ids = [
        op["operationId"]
        for item in served.json()["paths"].values()
        for op in item.values()
        if "operationId" in op
    ]
    assert len(operation_ids) == len(set(operation_ids))


def _request(document: dict[str, Any], route: V1Route) -> dict[str, Any]:
    body = document["paths"][route.pattern]["post"]["requestBody"]
    assert body["required"] is True
    return dict(body["content"]["application/json"]["schema"])


@ROWS
def test_each_request_schema_is_its_rows_body(route: V1Route) -> None:
    """The document cannot drift from what is enforced: each request schema is
    `schema_components` of the row's `body`, each 200 of the row's `success`."""
    document = openapi_document()
    assert route.body is not None, f"{route.pattern}: V1Route(body=...) documents the body"
    for documented, shape in (
        (_request(document, route), route.body),
        (document["paths"][route.pattern]["post"]["responses"]["200"], route.success),
    ):
        (schema,), components = msgspec.json.schema_components(
            [shape], ref_template="#/components/schemas/{name}"
        )
        if "content" in documented:
            documented = documented["content"]["application/json"]["schema"]
        assert documented == schema
        for name, component in components.items():
            assert document["components"]["schemas"][name] == component
        top = components[schema["$ref"].rsplit("/", 1)[1]]
        assert top.get("description"), f"{route.pattern}: a docstring describes {shape}"


@ROWS
def test_the_workspace_is_where_the_row_takes_it(route: V1Route) -> None:
    operation = openapi_document()["paths"][route.pattern]["post"]
    parameters = {(p["name"], p["in"]): p["required"] for p in operation["parameters"]}
    if route.workspace_from is WorkspaceFrom.PATH:
        assert parameters[("workspace_id", "path")] is True
        assert parameters[("app_id", "query")] is False
    elif route.workspace_from is WorkspaceFrom.QUERY:
        assert ("workspace_id", "path") not in parameters
        assert parameters[("app_id", "query")] is True
    assert ("MOE-APPKEY", "header") in parameters
    if route.workspace_from is WorkspaceFrom.HEADER:  # Test connection: the key is in the body
        assert operation["security"] == []
    else:
        assert operation["security"] == [{"basic": []}]


async def test_real_responses_match_their_documented_schemas(harness: Harness) -> None:
    document = (await harness.client.get("/openapi.json")).json()
    request = _request(document, V1_ROUTES[0]) | {"components": document["components"]}
    jsonschema.validate(SEED_BODY, request)
    with pytest.raises(jsonschema.ValidationError):  # row 19: a customer_id or identifiers
        jsonschema.validate({k: v for k, v in SEED_BODY.items() if k != "customer_id"}, request)
    accepted = await harness.post({**SEED_BODY, "actions": [{"action": "x", "moe_y": 1}]})
    jsonschema.validate(accepted.json(), _schema(document, "SuccessBody"))
    warned = await harness.post(
        {**SEED_BODY, "actions": [{"action": "x", "attributes": {"moe_y": 1}}]}
    )
    assert warned.json()["warnings"] == [
        {"index": 0, "attribute": "moe_y", "reason": "reserved_prefix"}
    ]
    jsonschema.validate(warned.json(), _schema(document, "SuccessBody"))
    rejected = await harness.post({"type": "event"})
    assert rejected.status_code == 400
    jsonschema.validate(rejected.json(), _schema(document, "ErrorBody"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"status": "fail"}, _schema(document, "ErrorBody"))


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
