"""What the validation tests give `validate_event`: the workspaces they validate for and the
receive time, the contract's rows 16-25 (every 400 it may answer), and Hypothesis strategies of
any JSON value and of bodies that are almost valid.

The HTTP fuzz tests of the edge (tests/edge/test_track_fuzz.py) draw from the same."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from trackd.models import Workspace
from trackd.wire.times import OFFSET_EXPECTED, TIME_EXPECTED

RECEIVED = 1_712_567_385_726  # 2024-04-08T09:09:45.726Z
PLAIN = Workspace(id="WS1", name="plain", key_hash=None)
STRICT = Workspace(id="WS2", name="strict", key_hash=None, strict=True)
IDENTITY = Workspace(
    id="WS3", name="ir", key_hash=None, identity_resolution=("moe_mobile", "email")
)
PORTFOLIO = Workspace(id="WS4", name="portfolio", key_hash=None, portfolio=True, projects=("P1",))
IST = Workspace(id="WS5", name="ist", key_hash=None, timezone_offset=19800, clock_skew=0)

MALFORMED = "Could not decode the request body. The JSON was incorrect or not encoded as UTF-8."
MISSING = "MissingAttributeError"
#: Rows 16-25 of the check table: (status, type, message, attribute).
ROW_16 = (400, "Body type is not JSON", "A valid JSON document is required.", None)
TYPE_MISSING = (400, MISSING, "type is not found in the payload", "type")
TYPE_NOT_EVENT = (400, "AttributeError", "type should be event", "type")
TABLE = {
    ROW_16,
    TYPE_MISSING,
    TYPE_NOT_EVENT,
    (400, "InvalidParams", "project_code is required for this workspace", "project_code"),
    (400, "InvalidParams", "Given project_code is invalid.", "project_code"),
    (400, MISSING, "customer_id is not found in the payload", "customer_id"),
    (400, MISSING, "customer_id can not be empty Unicode String", "customer_id"),
    (400, MISSING, "customer_id is expected to be String or Unicode String.", "customer_id"),
    (400, MISSING, "actions is not found in the payload", "actions"),
    (400, MISSING, "actions is expected to be Array", "actions"),
    (400, MISSING, "actions can not be empty Array", "actions"),
    (400, "Malformed JSON", MALFORMED, "actions"),
    (400, MISSING, "action is not found in the payload", "action"),
    (400, "Malformed JSON", MALFORMED, "action"),
    (400, MISSING, "action cannot be empty Unicode string", "action"),
    (400, MISSING, "attributes is expected to be JSON Object", "attributes"),
    (400, MISSING, f"user_time is expected to be {TIME_EXPECTED}", "user_time"),
    (400, MISSING, f"current_time is expected to be {TIME_EXPECTED}", "current_time"),
    (
        400,
        MISSING,
        f"user_timezone_offset is expected to be {OFFSET_EXPECTED}",
        "user_timezone_offset",
    ),
}

# Strategies ---------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=20,
)


def mostly(valid: st.SearchStrategy[Any], odds: int = 6) -> st.SearchStrategy[Any]:
    """Usually a valid value; about once in `odds + 1` draws any JSON value at all.

    (`st.one_of` would not do: it draws each distinct branch equally often.)
    """
    return st.sampled_from([True] * odds + [False]).flatmap(
        lambda valid_now: valid if valid_now else json_values
    )


valid_times = st.one_of(
    st.integers(0, RECEIVED // 1000 + 900),
    st.integers(10**11, RECEIVED + 900_000),
    st.integers(10**11, RECEIVED + 900_000).map(str),
    st.integers(RECEIVED - 600_000, RECEIVED + 900_000),  # around the clock-skew allowance
    st.floats(0, RECEIVED / 1000 + 900),
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2030, 1, 1)).map(
        lambda moment: moment.replace(tzinfo=UTC).isoformat()
    ),
)
action_names = mostly(
    st.one_of(
        st.text(min_size=1, max_size=10),
        st.text(max_size=6).map(lambda rest: "Moe_" + rest),
        st.integers(190, 260).map(lambda n: "N" * n),
    ),
    odds=20,
)
attribute_maps = st.dictionaries(
    st.text(max_size=8) | st.text(max_size=4).map(lambda r: "moe_" + r),
    json_values | st.integers(500, 560).map(lambda n: "v" * n),
    max_size=6,
)
platforms = st.sampled_from(["ANDROID", "android", "iOS", "web", "TV", "unknown", "", "Windows"])
actions = st.fixed_dictionaries(
    {"action": action_names},
    optional={
        "attributes": mostly(attribute_maps, odds=20),
        "platform": mostly(platforms, odds=20),
        "app_version": mostly(st.text(max_size=5), odds=20),
        "user_time": mostly(valid_times, odds=20),
        "current_time": mostly(valid_times, odds=20),
        "user_timezone_offset": mostly(st.integers(-54_500, 54_500), odds=20),
        "moe_os_type": mostly(st.sampled_from(["ROKU", "Tizen"]), odds=20),
        "real_time_action": mostly(st.just("true"), odds=20),
        "not_in_the_contract": json_values,
    },
)
customer_ids = mostly(
    st.one_of(
        st.text(min_size=1, max_size=10),
        st.integers(min_value=3),
        st.sampled_from(["Guest", "NULL", "0", "n/a", "123", "u-42", "a@example.com"]),
    )
)
#: Bodies that pass rows 16-17 and often all the rest: a valid envelope, random action fields.
almost_valid = st.fixed_dictionaries(
    {
        "type": st.just("event"),
        "customer_id": customer_ids,
        "actions": mostly(st.lists(actions, min_size=1, max_size=5))
        | st.lists(mostly(actions), max_size=3),
    },
    optional={
        "device_id": mostly(st.text(max_size=5)),
        "user_identifiers": st.dictionaries(
            st.sampled_from(["moe_mobile", "email", "other"]), json_scalars
        ),
        "not_in_the_contract": json_values,
    },
)
workspaces = st.sampled_from([PLAIN, STRICT, IDENTITY, PORTFOLIO, IST])
projects = st.sampled_from([None, "", "P1", "P2"])
