"""Fuzzing every row of `V1_ROUTES` over HTTP: any JSON body, with valid auth, gets the answer of
the check table, never a 5xx, never a dropped connection.

Parametrised over the table, so a row that lands is fuzzed with nothing here edited. Two kinds
of bodies: any JSON value at all, and bodies drawn from the row's documented `body` type (the
Struct `/openapi.json` is generated from, walked with `msgspec.inspect` so its constraints hold:
mostly bodies the checks accept). Each answer is compared with what the row's own validator
predicts for the payload: its contract error with the exact envelope, or a 200 with the row's
answer (and exactly one envelope queued, none by a row that queues nothing); a 429 is the row's
own rate-limit error. As in tests/edge/test_track_fuzz.py the examples of a test share the
`harness` fixture's app.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import msgspec
import msgspec.inspect as inspect
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.edge.payloads import CUSTOMER, DEVICE, EVENT
from tests.harness import Harness
from tests.wire.events import json_values
from trackd.edge.openapi import error_shapes
from trackd.edge.v1 import V1_ROUTES, V1Route, WorkspaceFrom
from trackd.errors import ContractError
from trackd.models import Workspace
from trackd.wire import contract

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ROWS = pytest.mark.parametrize("route", V1_ROUTES, ids=[f"{r.name} {r.pattern}" for r in V1_ROUTES])


def _text(info: inspect.StrType) -> st.SearchStrategy[str]:
    if info.pattern is not None:
        texts = st.from_regex(info.pattern)
    else:
        texts = st.text(min_size=info.min_length or 0, max_size=min(info.max_length or 12, 12))
    low, high = info.min_length or 0, info.max_length
    return texts.filter(lambda t: len(t) >= low and (high is None or len(t) <= high))


def _number(info: inspect.IntType | inspect.FloatType, make: Any) -> st.SearchStrategy[Any]:
    low = info.ge if info.ge is not None else info.gt
    high = info.le if info.le is not None else info.lt
    if make is int:
        return st.integers(low, high)
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


_FIXED: dict[type, st.SearchStrategy[Any]] = {
    inspect.AnyType: json_values,
    inspect.NoneType: st.none(),
    inspect.BoolType: st.booleans(),
}


def _required_alternatives(
    values: st.SearchStrategy[Any], schema: dict[str, Any]
) -> st.SearchStrategy[Any]:
    """What an ``anyOf`` of ``required`` lists (Track Event's row 19) asks of an object."""
    alternatives = [alt["required"] for alt in schema.get("anyOf", []) if "required" in alt]
    if not alternatives:
        return values
    return values.filter(lambda body: any(all(k in body for k in alt) for alt in alternatives))


def strategy(info: inspect.Type) -> st.SearchStrategy[Any]:
    """JSON values of the type `info` describes, with its constraints (lengths, bounds,
    patterns, literals, tags); any JSON where it says `Any`."""
    if isinstance(info, inspect.Metadata):
        return _required_alternatives(strategy(info.type), info.extra_json_schema or {})
    if type(info) in _FIXED:
        return _FIXED[type(info)]
    if isinstance(info, inspect.IntType):
        return _number(info, int)
    if isinstance(info, inspect.FloatType):
        return _number(info, float)
    if isinstance(info, inspect.StrType):
        return _text(info)
    if isinstance(info, inspect.LiteralType):
        return st.sampled_from(info.values)
    if isinstance(info, inspect.UnionType):
        return st.one_of(*(strategy(t) for t in info.types))
    if isinstance(info, inspect.ListType):
        return st.lists(
            strategy(info.item_type),
            min_size=info.min_length or 0,
            max_size=min(info.max_length or 3, 3),
        )
    if isinstance(info, inspect.DictType):
        return st.dictionaries(
            strategy(info.key_type),
            strategy(info.value_type),
            max_size=min(info.max_length or 3, 3),
        )
    if isinstance(info, inspect.StructType):
        required = {f.encode_name: strategy(f.type) for f in info.fields if f.required}
        optional = {f.encode_name: strategy(f.type) for f in info.fields if not f.required}
        if info.tag_field is not None:
            required[info.tag_field] = st.just(info.tag)
        return st.fixed_dictionaries(required, optional=optional)
    raise TypeError(f"no strategy for {info!r}: extend tests/edge/test_v1_fuzz.py")


# -- bodies near each row's own checks (the Struct's walk cannot aim there) --

_bulk_element = st.one_of(
    json_values,
    st.sampled_from([CUSTOMER, EVENT, DEVICE]),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["customer", "event", "device"])},
        optional={
            "customer_id": json_values,
            "device_id": json_values,
            "actions": json_values,
            "attributes": json_values,
        },
    ),
)
_bulk_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.one_of(st.just("transition"), json_values),
            "elements": st.one_of(json_values, st.lists(_bulk_element, max_size=5)),
        },
    ),
)

_device_texts = st.one_of(st.text(max_size=6), json_values)
_device_attributes = st.fixed_dictionaries(
    {},
    optional={
        "platform": st.one_of(st.sampled_from(["ANDROID", "ios", "web", "TV", "x"]), json_values),
        "push_id": _device_texts,
        "model": _device_texts,
        "idfv": _device_texts,
        "moe_gaid": _device_texts,
        "moe_push_opted": _device_texts,
        "custom": json_values,
    },
)
_device_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.one_of(st.just("device"), json_values),
            "customer_id": _device_texts,
            "device_id": _device_texts,
            "attributes": st.one_of(_device_attributes, json_values),
        },
    ),
)

_merge_ids = st.one_of(st.text(max_size=6), json_values)
_merge_pairs = st.fixed_dictionaries(
    {}, optional={"merged_user": _merge_ids, "retained_user": _merge_ids, "other": json_values}
)
_merge_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {}, optional={"merge_data": st.one_of(json_values, st.lists(_merge_pairs, max_size=4))}
    ),
    st.fixed_dictionaries(  # about the 50 pairs' limit
        {"merge_data": st.lists(_merge_pairs | json_values, min_size=48, max_size=53)}
    ),
)

#: Per row name: bodies aimed at that row's checks (element types, attribute forms, the 50
#: pairs' limit), drawn beside the Struct's bodies and any JSON.
AIMED: dict[str, st.SearchStrategy[Any]] = {
    "Bulk Import": _bulk_bodies,
    "Track Device": _device_bodies,
    "Merge Users": _merge_bodies,
}


def bodies(route: V1Route) -> st.SearchStrategy[Any]:
    """Any JSON value, or (twice as often) one shaped as the row's documented body."""
    assert route.body is not None, f"{route.pattern}: V1Route(body=...) documents the body"
    shaped = strategy(inspect.type_info(route.body))
    if route.name in AIMED:
        return st.one_of(json_values, shaped, shaped, AIMED[route.name])
    return st.one_of(json_values, shaped, shaped)


#: A body for every row, drawn before the example's coroutine runs (a draw inside it, with
#: `st.data()`, does not mix with the anyio runner); each example uses its row's.
EVERY_ROW = st.fixed_dictionaries({route.pattern: bodies(route) for route in V1_ROUTES})


def workspace(harness: Harness) -> Workspace:
    found = harness.app.registry.get(harness.workspace_id)
    assert found is not None
    return found


def predicted(route: V1Route, payload: Any, ws: Workspace, received_ms: int) -> tuple[int, Any]:
    """Status and body (request id "R") as the row's validator gives them."""
    try:
        validated = route.validate(payload, ws, None, received_ms)
    except ContractError as exc:
        return exc.status, contract.error_body(exc, "R")
    return 200, msgspec.json.decode(route.answer("R", validated.warnings))


async def post(harness: Harness, route: V1Route, raw: bytes) -> httpx.Response:
    path, params = route.pattern, {"app_id": harness.workspace_id}
    if route.workspace_from is WorkspaceFrom.PATH:
        path, params = route.pattern.replace("{workspace_id}", harness.workspace_id), None
    headers = {**harness.headers(), "MOE-APPKEY": harness.workspace_id}  # agreeing (row 7)
    return await harness.client.post(path, content=raw, headers=headers, params=params)


def with_request_id_r(response: httpx.Response, body: Any = None) -> Any:
    """The body (or `body`), its request id (checked to be the header's) "R" in the response's,
    or the header's in `body`."""
    request_id = response.headers["x-request-id"]
    if body is not None:
        if "error" in body:
            body["error"]["request_id"] = request_id
        return body
    body = response.json()
    inner = body.get("error", body)
    if "request_id" in inner:
        assert inner["request_id"] == request_id
        inner["request_id"] = "R"
    return body


def assert_envelope(route: V1Route, response: httpx.Response) -> None:
    """A 200 in the row's documented `success` shape, or the contract's error envelope."""
    event(f"HTTP {response.status_code}")  # shown by --hypothesis-show-statistics
    assert response.status_code < 500, response.text
    body = response.json()
    status = str(response.status_code)
    shape = route.success if status == "200" else error_shapes(route)[status]
    decoded = msgspec.json.decode(response.content, type=shape)
    assert msgspec.json.decode(msgspec.json.encode(decoded)) == body  # nothing off the shape
    if shape is contract.ErrorBody:
        assert set(body) == {"status", "error"}
        assert set(body["error"]) <= {"message", "type", "attribute", "request_id"}


@pytest.mark.anyio
@pytest.mark.usefixtures("inspecting")
@ROWS
@FUZZ
@given(drawn=EVERY_ROW)
async def test_any_json_body_gets_the_rows_contract_answer(
    harness: Harness, route: V1Route, drawn: dict[str, Any]
) -> None:
    payload = drawn[route.pattern]
    raw = msgspec.json.encode(payload)
    queued = len(await harness.queued())
    before = int(time.time() * 1000)
    response = await post(harness, route, raw)
    after = int(time.time() * 1000)
    assert_envelope(route, response)
    added = (await harness.queued())[queued:]
    if response.status_code == 200 and route.kind is not None:
        assert [envelope.request_id for envelope in added] == [response.headers["x-request-id"]]
        assert added[0].kind == route.kind
    else:
        assert added == []
    if response.status_code == 429:  # the row's bucket is spent: its own error, after row 25
        assert response.json() == with_request_id_r(
            response, contract.error_body(route.rate_limited(), "R")
        )
        return
    body = with_request_id_r(response)
    expected = predicted(route, payload, workspace(harness), before)
    if expected != predicted(route, payload, workspace(harness), after):
        return  # the clock moved between the two
    if expected[0] != 200 and route.workspace_from is not WorkspaceFrom.HEADER:
        assert (response.status_code, body) == expected  # the validator's error, exactly
    elif route.precheck is None and route.respond is None and expected[0] == 200:
        assert (response.status_code, body) == expected  # queued: the row's own answer
    # else the store (Delete's not-found, Get User's answer) or the body's credentials (Test
    # connection) decide as well: the envelope above is what is checked


@ROWS
def test_the_documented_bodies_are_mostly_accepted(route: V1Route) -> None:
    """The shaped bodies reach past the checks: most are ones the row's validator accepts."""
    ws = Workspace(id="WS1", name="WS1", key_hash=None)
    accepted = 0

    @settings(max_examples=50, database=None, deadline=None, derandomize=True)
    @given(payload=strategy(inspect.type_info(route.body)))
    def run(payload: Any) -> None:
        nonlocal accepted
        try:
            route.validate(payload, ws, None, int(time.time() * 1000))
        except ContractError:
            return
        accepted += 1

    run()
    assert accepted >= 25, accepted
