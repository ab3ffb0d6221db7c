"""`trackd.processor.profiles`: RFC 7386 merge patches, and the batch's view of profiles."""

from __future__ import annotations

import copy
import sqlite3
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trackd.processor.profiles import ProfileView, merge_patch
from trackd.store.records import Profile, ProfileWrite

# -- merge_patch ------------------------------------------------------------------------------

#: RFC 7386 Appendix A, every example: (target, patch, result).
RFC_7386_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_7386_EXAMPLES)
def test_merge_patch_gives_every_result_of_rfc_7386s_examples(
    target: Any, patch: Any, result: Any
) -> None:
    assert merge_patch(target, patch) == result


def test_nested_objects_merge_key_by_key_at_every_depth() -> None:
    stored = {"plan": "free", "address": {"city": "Oslo", "geo": {"lat": 59.9, "lon": 10.7}}}
    patch = {"address": {"geo": {"lat": 60.4}, "zip": "5003"}, "tags": ["a"]}
    assert merge_patch(stored, patch) == {
        "plan": "free",
        "address": {"city": "Oslo", "geo": {"lat": 60.4, "lon": 10.7}, "zip": "5003"},
        "tags": ["a"],
    }


def test_a_null_deletes_the_key_and_a_null_in_a_new_object_is_left_out() -> None:
    assert merge_patch({"a": 1, "b": {"c": 2}}, {"a": None, "b": {"c": None}, "d": None}) == {
        "b": {}
    }
    assert merge_patch({}, {"new": {"x": None, "y": 1}}) == {"new": {"y": 1}}


def test_kept_keys_keep_their_place_and_new_keys_come_last() -> None:
    merged = merge_patch({"a": 1, "b": 2, "c": 3}, {"b": 20, "d": 4, "a": None})
    assert list(merged.items()) == [("b", 20), ("c", 3), ("d", 4)]


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=("Cs",)), max_size=5)
)
keys = st.sampled_from(["a", "b", "c", "d", "é", ""])
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
json_objects = st.dictionaries(keys, json_values, max_size=5)


def _rfc_7386(target: Any, patch: Any) -> Any:
    """The RFC's pseudo-code, line by line, as the reference: it works on a deep copy."""
    if isinstance(patch, dict):
        if not isinstance(target, dict):
            target = {}
        target = copy.deepcopy(target)
        for name, value in patch.items():
            if value is None:
                if name in target:
                    del target[name]
            else:
                target[name] = _rfc_7386(target.get(name), value)
        return target
    return patch


def _ordered(value: Any) -> Any:
    """`value` with every object's key order made visible to `==`."""
    if isinstance(value, dict):
        return [(k, _ordered(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


@given(json_values, json_values)
def test_merge_patch_is_the_rfcs_pseudo_code_and_changes_neither_input(
    target: Any, patch: Any
) -> None:
    before = copy.deepcopy((target, patch))
    assert _ordered(merge_patch(target, patch)) == _ordered(_rfc_7386(target, patch))
    assert _ordered((target, patch)) == _ordered(before)


@given(json_objects, json_objects)
def test_merge_patch_writes_what_sqlites_json_patch_writes(
    target: dict[str, Any], patch: dict[str, Any]
) -> None:
    """The embedded store merged attributes with SQLite's ``json_patch`` before the processor
    did: the same JSON text, key order included."""
    encode = msgspec.json.encode
    conn = sqlite3.connect(":memory:")
    try:
        (patched,) = conn.execute(
            "SELECT json_patch(?, ?)", (encode(target).decode(), encode(patch).decode())
        ).fetchone()
    finally:
        conn.close()
    assert encode(merge_patch(target, patch)).decode() == patched


@given(json_objects, json_objects)
def test_merging_the_same_patch_again_changes_nothing(
    target: dict[str, Any], patch: dict[str, Any]
) -> None:
    once = merge_patch(target, patch)
    assert _ordered(merge_patch(once, patch)) == _ordered(once)


# -- ProfileView ------------------------------------------------------------------------------

ADA = ("WS1", "ada")
STORED = Profile({"plan": "free", "address": {"city": "Oslo"}}, {"email": "a@x"}, 100, 200)


def test_a_user_without_a_profile_gets_one_spanning_when_it_was_seen() -> None:
    view = ProfileView({})
    view.seen(ADA, {"plan": "pro"}, {"email": "a@x"}, (150, 160))
    assert view.writes() == [
        ProfileWrite("WS1", "ada", Profile({"plan": "pro"}, {"email": "a@x"}, 150, 160))
    ]


def test_a_stored_profile_merges_keeps_its_first_seen_and_takes_the_later_last_seen() -> None:
    view = ProfileView({ADA: STORED})
    view.seen(ADA, {"address": {"zip": "0150"}}, {"mobile": "+1"}, (50, 150))
    assert view.get(ADA) == Profile(
        {"plan": "free", "address": {"city": "Oslo", "zip": "0150"}},
        {"email": "a@x", "mobile": "+1"},
        100,
        200,
    )
    view.seen(ADA, {}, {}, (250, 300))
    assert view.get(ADA) == Profile(
        {"plan": "free", "address": {"city": "Oslo", "zip": "0150"}},
        {"email": "a@x", "mobile": "+1"},
        100,
        300,
    )
    assert STORED.attributes == {"plan": "free", "address": {"city": "Oslo"}}  # not changed


def test_updating_attributes_changes_only_an_existing_profiles_attributes() -> None:
    view = ProfileView({ADA: STORED})
    view.update_attributes(("WS1", "nobody"), {"plan": "pro"})
    view.update_attributes(ADA, {"plan": "pro"})
    assert view.writes() == [
        ProfileWrite(
            "WS1",
            "ada",
            Profile({"plan": "pro", "address": {"city": "Oslo"}}, {"email": "a@x"}, 100, 200),
        )
    ]


def test_each_changed_profile_is_written_once_as_it_ends_up_in_first_changed_order() -> None:
    bob = ("WS1", "bob")
    view = ProfileView({ADA: STORED, ("WS2", "unchanged"): STORED})
    view.seen(bob, {"n": 1}, {}, (10, 10))
    view.update_attributes(ADA, {"n": 2})
    view.seen(bob, {"n": 3}, {}, (20, 20))
    assert [(w.workspace_id, w.customer_id, w.profile.attributes) for w in view.writes()] == [
        ("WS1", "bob", {"n": 3}),
        ("WS1", "ada", {"plan": "free", "address": {"city": "Oslo"}, "n": 2}),
    ]
    assert view.writes()[0].profile.last_seen == 20


def test_users_given_events_are_remembered_without_a_profile_row() -> None:
    view = ProfileView({})
    assert not view.has_events(ADA)
    view.had_events(ADA)
    assert view.has_events(ADA)
    assert (view.get(ADA), view.writes()) == (None, [])
