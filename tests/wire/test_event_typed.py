"""`decode_event`, the typed fast path: for every body it accepts, exactly what the generic path
(`msgspec.json.decode` then `validate_event`) gives; for every error, the generic path's error."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import SEED_BODY
from tests.wire.events import IDENTITY, IST, PLAIN, PORTFOLIO, RECEIVED, STRICT
from trackd.errors import ContractError
from trackd.models import Workspace
from trackd.wire.event import Validated, decode_event, validate_event

WORKSPACES = [PLAIN, STRICT, IDENTITY, PORTFOLIO, IST]


def generic(body: bytes, workspace: Workspace, project: str | None) -> Validated | tuple[Any, ...]:
    try:
        return validate_event(msgspec.json.decode(body), workspace, project, RECEIVED)
    except ContractError as exc:
        return (exc.status, exc.type, exc.message, exc.attribute)


def typed(
    body: bytes, workspace: Workspace, project: str | None
) -> Validated | tuple[Any, ...] | None:
    try:
        return decode_event(body, workspace, project, RECEIVED)
    except ContractError as exc:
        return (exc.status, exc.type, exc.message, exc.attribute)


def plain_action(index: int) -> dict[str, Any]:
    return {
        "action": f"Viewed Product {index}",
        "attributes": {
            "product": "Shoes",
            "price": 12.5,
            "quantity": 3,
            "in_stock": True,
            "tags": ["a", "b"],
            "launched": "2024-01-02T03:04:05Z",
        },
        "platform": "ANDROID",
        "app_version": "1.2.3",
        "current_time": [1_712_567_380, 1_712_567_380_000, "2024-04-08T09:09:40Z"][index % 3],
    }


@pytest.mark.parametrize("count", [1, 100])
def test_a_plain_body_takes_the_fast_path_and_matches_the_generic_one(count: int) -> None:
    body = msgspec.json.encode(
        {"type": "event", "customer_id": "c1", "actions": [plain_action(i) for i in range(count)]}
    )
    fast = decode_event(body, PLAIN, None, RECEIVED)
    assert fast is not None
    assert len(fast.actions) == count
    assert fast.warnings == []
    assert fast == generic(body, PLAIN, None)


def test_the_seed_body_takes_the_fast_path() -> None:
    body = msgspec.json.encode(SEED_BODY)
    fast = decode_event(body, PLAIN, None, RECEIVED)
    assert fast is not None
    assert fast == generic(body, PLAIN, None)


@pytest.mark.parametrize(
    "change",
    [
        {"customer_id": 123},  # a number id: the generic path turns it into a string
        {"customer_id": "guest"},  # disallowed: every action dropped with a warning
        {"customer_id": None},  # row 19
        {"type": "customer"},  # row 17
        {"actions": []},  # row 21
    ],
)
def test_bodies_off_the_plain_shape_take_the_generic_path(change: dict[str, Any]) -> None:
    body = msgspec.json.encode(
        {"type": "event", "customer_id": "c1", "actions": [plain_action(0)]} | change
    )
    assert decode_event(body, PLAIN, None, RECEIVED) is None


@pytest.mark.parametrize(
    "attributes",
    [
        {"a": None},  # dropped silently by the generic path
        {"a": [1, "x"]},  # mixed_array
        {"a": {"b": 1}},  # an object
        {"a": "x" * 513},  # value_truncated
        {"moe_a": 1},  # reserved_prefix: the fast path keeps this decision too
        {"n" * 201: 1},  # name_truncated
        {"n" * 200: 1, "n" * 201: 2},  # name_collision (the first keeps its value)
        {"n" * 201: 1, "n" * 200: 2},  # name_collision, the cut name first
        {f"k{i}": i for i in range(101)},  # too_many_attributes
    ],
)
def test_attributes_needing_a_closer_look_give_the_generic_answer(
    attributes: dict[str, Any],
) -> None:
    body = msgspec.json.encode(
        {
            "type": "event",
            "customer_id": "c1",
            "actions": [{"action": "a", "attributes": attributes}],
        }
    )
    fast = typed(body, PLAIN, None)
    assert fast is None or fast == generic(body, PLAIN, None)
    assert isinstance(generic(body, PLAIN, None), Validated)


MS_THRESHOLD = 10**11  # epochs at or above are milliseconds (track-event.md §3)
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
EPOCHS = [-1, 0, 1, MS_THRESHOLD - 1, MS_THRESHOLD, 1_712_567_380_123, MAX_MS, MAX_MS + 1, 2**64]


@pytest.mark.parametrize("field", ["user_time", "current_time"])
@pytest.mark.parametrize("epoch", EPOCHS)
def test_epochs_at_the_edges_of_row_25_give_the_generic_answer(field: str, epoch: int) -> None:
    """The typed decode bounds epochs itself and only turns seconds into milliseconds: in
    range it takes the fast path and agrees; out of range it leaves the answer (400) to the
    generic path."""
    body = msgspec.json.encode(
        {"type": "event", "customer_id": "c1", "actions": [{"action": "a", field: epoch}]}
    )
    fast = typed(body, PLAIN, None)
    in_range = 0 <= epoch <= MAX_MS
    assert (fast is not None) == in_range
    assert fast is None or fast == generic(body, PLAIN, None)
    assert isinstance(generic(body, PLAIN, None), Validated) == in_range


@pytest.mark.parametrize("offset", [-54_001, -54_000, 0, 19_800, 54_000, 54_001, 19_800.0])
def test_offsets_at_the_edges_give_the_generic_answer(offset: float) -> None:
    body = msgspec.json.encode(
        {
            "type": "event",
            "customer_id": "c1",
            "actions": [
                {"action": "a", "user_time": 1_712_567_380, "user_timezone_offset": offset}
            ],
        }
    )
    fast = typed(body, PLAIN, None)
    assert fast is None or fast == generic(body, PLAIN, None)
    assert (fast is not None) == (type(offset) is int and abs(offset) <= 54_000)
    assert isinstance(generic(body, PLAIN, None), Validated) == (abs(offset) <= 54_000)


# -- the property: whatever the body, the fast path never disagrees -----------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.text(min_size=510, max_size=514),
    st.sampled_from(
        ["2024-04-08T09:09:40Z", "1712567380", "1712567380000", "2024-13-01T00:00:00Z"]
    ),
)
attribute_values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.lists(st.text(max_size=3), min_size=49, max_size=52),
    st.dictionaries(st.text(max_size=3), scalars, max_size=2),
)
#: Names equal once cut to 200 characters: only the generic path may see them.
colliding = st.sampled_from(["c" * 200, "c" * 201, "c" * 200 + "x", "c" * 199])
names = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["moe_x", "MOE_y", "Moe_", "moex", "İmoe_"]),
    st.text(min_size=199, max_size=201),
    colliding,
)
times = st.one_of(
    st.none(),
    st.integers(min_value=-5, max_value=2**45),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1, max_value=2e12),
    st.sampled_from(
        ["2024-04-08T09:09:40Z", "2024-04-08T09:09:40+05:30", "nope", "", " 1712567380 "]
    ),
    st.booleans(),
)
actions = st.fixed_dictionaries(
    {"action": st.one_of(names, st.none(), st.integers())},
    optional={
        "attributes": st.one_of(
            st.none(), st.dictionaries(names, attribute_values, max_size=5), st.just([])
        ),
        "platform": st.one_of(
            st.none(),
            st.sampled_from(["ANDROID", "android", "iOS", "Web", "tv", "", "blackberry"]),
            st.integers(),
        ),
        "app_version": st.one_of(
            st.none(), st.text(max_size=5), st.integers(), st.floats(allow_nan=False), st.booleans()
        ),
        "user_time": times,
        "current_time": times,
        "user_timezone_offset": st.one_of(
            st.none(),
            st.integers(min_value=-60000, max_value=60000),
            st.floats(allow_nan=False),
            st.text(max_size=3),
        ),
        "moe_os_type": st.one_of(
            st.none(), st.text(max_size=3), st.integers(), st.lists(st.integers(), max_size=1)
        ),
        "real_time_action": st.one_of(st.none(), st.text(max_size=3), st.booleans()),
        "unknown": scalars,
    },
)
bodies = st.fixed_dictionaries(
    {"type": st.sampled_from(["event", "event", "event", "customer"])},
    optional={
        "customer_id": st.one_of(
            st.none(),
            st.text(max_size=4),
            st.integers(),
            st.sampled_from(["guest", "NULL", "c1"]),
            st.booleans(),
        ),
        "device_id": st.one_of(
            st.none(), st.text(max_size=4), st.integers(), st.floats(allow_nan=False)
        ),
        "user_identifiers": st.one_of(
            st.none(),
            st.dictionaries(
                st.sampled_from(["moe_mobile", "email", "other"]),
                st.one_of(st.text(max_size=3), st.integers()),
            ),
        ),
        "actions": st.one_of(st.lists(actions, max_size=4), st.none(), st.just({})),
    },
)


plain_values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.text(min_size=511, max_size=513),
    st.lists(st.text(max_size=3), max_size=3),
    st.lists(st.text(max_size=2), min_size=50, max_size=51),
    st.sampled_from(["2024-04-08T09:09:40Z", "http://" + "x" * 510, "", None]),
)
plain_actions = st.fixed_dictionaries(
    {
        "action": st.one_of(st.text(min_size=1, max_size=6), st.sampled_from(["moe_a", "MOE_B"])),
        "attributes": st.dictionaries(
            st.one_of(
                st.text(max_size=6),
                st.sampled_from(["moe_x", "Moe_y"]),
                st.text(min_size=200, max_size=201),
                colliding,
            ),
            plain_values,
            max_size=6,
        ),
    },
    optional={
        "platform": st.sampled_from(["ANDROID", "android", "iOS", "Web", "tv", "", "blackberry"]),
        "app_version": st.text(max_size=5),
        "user_time": st.one_of(
            st.integers(min_value=0, max_value=2**45),
            st.sampled_from(["2024-04-08T09:09:40+05:30", "1712567380"]),
        ),
        "current_time": st.one_of(
            st.integers(min_value=1_712_000_000, max_value=1_712_567_990_000),
            st.sampled_from(
                ["2024-04-08T09:09:40Z", "2030-01-01T00:00:00Z", "1712567380000", "13:00"]
            ),
        ),
        "user_timezone_offset": st.integers(min_value=-55000, max_value=55000),
        "moe_os_type": st.text(max_size=3),
        "real_time_action": st.text(max_size=3),
    },
)
plain_bodies = st.fixed_dictionaries(
    {
        "type": st.just("event"),
        "customer_id": st.one_of(
            st.text(min_size=1, max_size=4), st.sampled_from(["c1", "guest", "Unknown"])
        ),
        "actions": st.lists(plain_actions, min_size=1, max_size=3),
    },
    optional={
        "device_id": st.text(max_size=4),
        "user_identifiers": st.dictionaries(
            st.sampled_from(["moe_mobile", "email"]), st.text(max_size=3)
        ),
    },
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.one_of(plain_bodies, bodies),
    workspace=st.sampled_from(WORKSPACES),
    project=st.sampled_from([None, "P1", "P2"]),
)
def test_the_fast_path_agrees_with_the_generic_path(
    body: dict[str, Any], workspace: Workspace, project: str | None
) -> None:
    raw = msgspec.json.encode(body)
    fast = typed(raw, workspace, project)
    if fast is not None:
        assert fast == generic(raw, workspace, project)
        if isinstance(fast, Validated):  # a cut attribute name is the generic path's
            assert all(w.reason != "name_collision" for w in fast.warnings)
