"""Names and values of event attributes (track-event.md §4) and type inference."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trackd.wire.values import clean_attributes, collision, infer_type

REASONS = {
    "reserved_prefix",
    "name_truncated",
    "value_truncated",
    "url_too_long",
    "too_many_attributes",
    "array_truncated",
    "mixed_array",
    "object_flattened",
    "name_collision",
}
FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))
#: Reasons for which the whole attribute is gone from the kept attributes.
DROPPED = {"reserved_prefix", "too_many_attributes", "url_too_long", "mixed_array"}


# Unit examples -----------------------------------------------------------------------------


def test_attributes_within_every_limit_are_kept_as_sent() -> None:
    attributes = {
        "product": "Accessories",
        "price": 3999,
        "ratio": 0.5,
        "in_stock": True,
        "tags": ["a", "b"],
        "address": {"city": "Pune", "geo": {"lat": 18.5, "lon": 73.8}},
        "x" * 200: "y" * 512,
    }
    assert clean_attributes(attributes) == (attributes, [])


def test_null_values_are_dropped_without_a_reason() -> None:
    kept, problems = clean_attributes({"a": None, "b": 1, "c": {"d": None, "e": 2}, "f": [None, 3]})
    assert kept == {"b": 1, "c": {"e": 2}, "f": [3]}
    assert problems == []


@pytest.mark.parametrize("name", ["moe_x", "MOE_x", "Moe_Source", "mOE_", "moe_"])
def test_attributes_with_the_reserved_prefix_in_any_case_are_dropped(name: str) -> None:
    assert clean_attributes({name: 1, "kept": 2}) == ({"kept": 2}, [(name, "reserved_prefix")])


@pytest.mark.parametrize("name", ["moe", "moex", "_moe_x", "my_moe_x", "mo_e"])
def test_names_that_only_resemble_the_prefix_are_kept(name: str) -> None:
    assert clean_attributes({name: 1}) == ({name: 1}, [])


def test_long_attribute_names_are_cut_to_200_characters() -> None:
    name = "n" * 199 + "XYZ"
    assert clean_attributes({name: 1}) == ({name[:200]: 1}, [(name[:200], "name_truncated")])


def test_a_long_name_cut_to_an_earlier_name_is_dropped_naming_both() -> None:
    exact, long = "n" * 200, "n" * 250
    assert clean_attributes({exact: 1, long: 2, "b": 3}) == (
        {exact: 1, "b": 3},
        [(f"{long} (collides with {exact})", "name_collision")],
    )


def test_a_name_equal_to_an_earlier_cut_name_is_dropped_naming_both() -> None:
    long, exact = "n" * 250, "n" * 200
    assert clean_attributes({long: 1, exact: 2}) == (
        {exact: 1},
        [(exact, "name_truncated"), (f"{exact} (collides with {long})", "name_collision")],
    )


def test_of_long_names_with_the_same_first_200_characters_the_first_keeps_its_value() -> None:
    first, second, third = ("n" * 200 + tail for tail in ("-first", "-second", "-third"))
    kept, problems = clean_attributes({first: 1, second: 2, third: 3})
    assert kept == {"n" * 200: 1}
    assert problems == [
        ("n" * 200, "name_truncated"),
        (f"{second} (collides with {first})", "name_collision"),
        (f"{third} (collides with {first})", "name_collision"),
    ]


def test_a_collision_names_huge_names_in_bounded_text() -> None:
    """A name may be as long as a 128 KB body allows: each is shown in 256 characters, its
    first 200 (shared by both), an ellipsis and its last 55."""
    first, second = "n" * 100_000 + "A" * 55, "n" * 60_000 + "B" * 55
    _, problems = clean_attributes({first: 1, second: 2})
    shown = "n" * 200 + "…" + "B" * 55 + " (collides with " + "n" * 200 + "…" + "A" * 55 + ")"
    assert problems[-1] == (shown, "name_collision")
    assert collision(second, first) == shown
    assert len(shown) == 2 * 256 + len(" (collides with )")


def test_a_dropped_value_leaves_its_cut_name_free_for_the_next() -> None:
    url = "https://example.com/" + "p" * 600
    long, exact = "n" * 250, "n" * 200
    assert clean_attributes({long: url, exact: 2}) == ({exact: 2}, [(long, "url_too_long")])


def test_null_values_and_reserved_names_do_not_collide() -> None:
    assert clean_attributes({"n" * 250: None, "n" * 200: 1}) == ({"n" * 200: 1}, [])
    long_reserved = "moe_" + "n" * 250
    assert clean_attributes({long_reserved: 1, long_reserved[:200]: 2}) == (
        {},
        [(long_reserved, "reserved_prefix"), (long_reserved[:200], "reserved_prefix")],
    )


def test_past_the_100_places_a_colliding_name_is_beyond_the_limit() -> None:
    attributes: dict[str, Any] = {"n" * 200: 0}
    attributes.update({f"k{i}": i for i in range(99)})
    attributes["n" * 201] = 1
    kept, problems = clean_attributes(attributes)
    assert kept["n" * 200] == 0
    assert problems == [("n" * 201, "too_many_attributes")]


def test_a_collision_does_not_take_one_of_the_100_places() -> None:
    attributes: dict[str, Any] = {"n" * 200: 0, "n" * 201: 1}
    attributes.update({f"k{i}": i for i in range(99)})
    kept, problems = clean_attributes(attributes)
    assert len(kept) == 100
    assert [reason for _, reason in problems] == ["name_collision"]


def test_long_string_values_are_cut_to_512_characters() -> None:
    value = "v" * 511 + "XYZ"
    assert clean_attributes({"note": value}) == (
        {"note": value[:512]},
        [("note", "value_truncated")],
    )


@pytest.mark.parametrize("scheme", ["http://", "https://", "HTTPS://"])
def test_long_url_values_are_dropped_not_cut(scheme: str) -> None:
    url = scheme + "example.com/" + "p" * 500
    assert clean_attributes({"link": url, "ok": 1}) == ({"ok": 1}, [("link", "url_too_long")])


def test_a_url_of_exactly_512_characters_is_kept() -> None:
    url = "https://example.com/" + "p" * (512 - 20)
    assert clean_attributes({"link": url}) == ({"link": url}, [])


def test_only_the_first_100_attributes_are_kept() -> None:
    attributes = {f"a{i:03d}": i for i in range(103)}
    kept, problems = clean_attributes(attributes)
    assert kept == {f"a{i:03d}": i for i in range(100)}
    assert problems == [(f"a{i:03d}", "too_many_attributes") for i in range(100, 103)]


def test_dropped_and_null_attributes_do_not_count_towards_the_100() -> None:
    attributes: dict[str, Any] = {"moe_a": 1, "gone": None, "mixed": [1, "a"]}
    attributes |= {f"a{i:03d}": i for i in range(101)}
    kept, problems = clean_attributes(attributes)
    assert kept == {f"a{i:03d}": i for i in range(100)}
    assert problems == [
        ("moe_a", "reserved_prefix"),
        ("mixed", "mixed_array"),
        ("a100", "too_many_attributes"),
    ]


def test_arrays_keep_their_first_50_elements() -> None:
    kept, problems = clean_attributes({"ids": list(range(60))})
    assert kept == {"ids": list(range(50))}
    assert problems == [("ids", "array_truncated")]


@pytest.mark.parametrize(
    "value",
    [[1, "a"], [True, 1], [{"a": 1}, "a"], [[1], [2]], [1.5, "1.5"], ["a", None, 2]],
)
def test_mixed_type_arrays_are_dropped(value: list[Any]) -> None:
    assert clean_attributes({"mixed": value}) == ({}, [("mixed", "mixed_array")])


def test_integers_and_floats_make_one_numeric_array() -> None:
    assert clean_attributes({"n": [1, 2.5, 3]}) == ({"n": [1, 2.5, 3]}, [])


def test_long_strings_inside_arrays_are_cut_and_long_urls_removed() -> None:
    value = ["s" * 600, "https://x.io/" + "p" * 600, "ok"]
    kept, problems = clean_attributes({"list": value})
    assert kept == {"list": ["s" * 512, "ok"]}
    assert problems == [("list", "value_truncated"), ("list", "url_too_long")]


def test_objects_deeper_than_two_levels_are_stored_as_json_strings() -> None:
    value = {"l2": {"l3": {"l4": 1}, "keep": 2}, "k": "v"}
    kept, problems = clean_attributes({"obj": value})
    assert kept == {"obj": {"l2": {"l3": '{"l4":1}', "keep": 2}, "k": "v"}}
    assert problems == [("obj", "object_flattened")]


def test_objects_inside_arrays_count_as_a_level() -> None:
    value = [{"inner": [{"deep": {"x": 1}}]}]
    kept, problems = clean_attributes({"arr": value})
    assert kept == {"arr": [{"inner": [{"deep": '{"x":1}'}]}]}
    assert problems == [("arr", "object_flattened")]


# Properties --------------------------------------------------------------------------------

LONG_TEXT = st.integers(500, 600).map(lambda n: "t" * n)
LONG_URL = st.builds(
    lambda scheme, n: scheme + "example.com/" + "p" * n,
    st.sampled_from(["http://", "https://", "HTTP://"]),
    st.integers(480, 560),
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
    | LONG_TEXT
    | LONG_URL
)


def _arrays(children: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    same_kind = st.one_of(
        st.lists(st.integers(), max_size=60),
        st.lists(st.text(max_size=3) | LONG_TEXT | LONG_URL, max_size=55),
        st.lists(st.booleans() | st.none(), max_size=55),
        st.integers(45, 60).map(lambda n: [*range(n // 2), None, *range(n // 2)]),
    )
    return same_kind | st.lists(children, max_size=4)


json_values = st.recursive(
    scalars,
    lambda children: _arrays(children) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)
names = st.one_of(
    st.text(max_size=12),
    st.builds(
        lambda prefix, rest: prefix + rest,
        st.sampled_from(["moe_", "MOE_", "Moe_"]),
        st.text(max_size=6),
    ),
    st.builds(
        lambda head, n: head + "n" * n, st.text(min_size=1, max_size=6), st.integers(195, 260)
    ),
)


def _unique_after_cut(item: tuple[str, Any]) -> str:
    return item[0][:200]


#: Attribute maps, some of them around the 100-attribute limit. Names never collide once cut to
#: 200 characters (two names that do are a known gap, see the report of this file's author).
attribute_maps = st.one_of(
    st.lists(st.tuples(names, json_values), max_size=12, unique_by=_unique_after_cut),
    st.builds(
        list.__add__,
        st.lists(st.tuples(names, json_values), max_size=6, unique_by=_unique_after_cut),
        st.lists(
            st.tuples(st.text(min_size=1, max_size=6), st.integers() | st.text(max_size=5)),
            min_size=98,
            max_size=106,
            unique_by=_unique_after_cut,
        ),
    ),
).map(dict)


def dict_depth(value: Any) -> int:
    """How many objects are nested in a value, counting through arrays."""
    if isinstance(value, dict):
        return 1 + max((dict_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return max((dict_depth(v) for v in value), default=0)
    return 0


def leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in leaves(v)]
    if isinstance(value, list):
        return [value] + [leaf for v in value for leaf in leaves(v)]
    return [value]


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value if v is not None]
    return value


def is_flattened_object(text: str) -> bool:
    try:
        return isinstance(msgspec.json.decode(text), dict)
    except msgspec.DecodeError:
        return False


@settings(max_examples=100, deadline=None)
@given(attributes=attribute_maps)
def test_kept_attributes_respect_every_limit(attributes: dict[str, Any]) -> None:
    kept, problems = clean_attributes(attributes)
    assert len(kept) <= 100
    assert all(len(name) <= 200 for name in kept)
    assert not any(name[:4].lower() == "moe_" for name in kept)
    for value in kept.values():
        assert dict_depth(value) <= 2
        for leaf in leaves(value):
            assert leaf is not None
            if isinstance(leaf, list):
                assert len(leaf) <= 50
            if isinstance(leaf, str) and len(leaf) > 512:  # only a stringified deep object
                assert is_flattened_object(leaf)
    assert {reason for _, reason in problems} <= REASONS


@settings(max_examples=100, deadline=None)
@given(attributes=attribute_maps)
def test_every_attribute_not_kept_as_sent_is_reported(attributes: dict[str, Any]) -> None:
    kept, problems = clean_attributes(attributes)
    for name, value in attributes.items():
        reasons = {r for n, r in problems if n in (name, name[:200])}
        if value is None:
            assert reasons == set()
        elif name[:4].lower() == "moe_":
            assert name[:200] not in kept
            assert reasons == {"reserved_prefix"}
        elif name[:200] not in kept:
            assert reasons & {"too_many_attributes", "url_too_long", "mixed_array"}
        else:
            assert not reasons & {"reserved_prefix", "too_many_attributes"}
            assert ("name_truncated" in reasons) == (len(name) > 200)
            if kept[name[:200]] != without_nulls(value):
                assert reasons - {"name_truncated"}
    if any(reason == "too_many_attributes" for _, reason in problems):
        assert len(kept) == 100


#: Names of few families, so that many collide once cut to 200 characters; scalar values, so
#: that the only ways to lose a whole attribute are the prefix, the 100 limit and a collision.
colliding_names = st.one_of(
    st.builds(
        lambda family, n, tail: family * n + tail,
        st.sampled_from(["c", "d", "moe_"]),
        st.integers(198, 203),
        st.sampled_from(["", "x", "y"]),
    ),
    st.text(max_size=3),
)
colliding_maps = st.lists(
    st.tuples(colliding_names, st.none() | st.integers() | st.text(max_size=3)), max_size=12
).map(dict) | st.builds(
    dict.__or__,
    st.lists(st.tuples(st.text(min_size=4, max_size=6), st.integers()), min_size=97).map(dict),
    st.lists(st.tuples(colliding_names, st.integers()), max_size=6).map(dict),
)


@settings(max_examples=300, deadline=None)
@given(attributes=colliding_maps)
def test_every_attribute_sent_is_kept_or_dropped_with_a_reason_collisions_included(
    attributes: dict[str, Any],
) -> None:
    kept, problems = clean_attributes(attributes)
    dropping = {"reserved_prefix", "too_many_attributes", "name_collision"}
    sent = [name for name, value in attributes.items() if value is not None]
    assert len(kept) + sum(reason in dropping for _, reason in problems) == len(sent)
    first: dict[str, str] = {}  # cut name -> the first name sent that takes it
    for name in sent:
        if name[:4].lower() != "moe_":
            first.setdefault(name[:200], name)
    for stored, value in kept.items():
        assert value == attributes[first[stored]]  # the first one keeps its value
    for name in sent:
        if name[:4].lower() != "moe_" and name[:200] in kept and first[name[:200]] != name:
            reported = (collision(name, first[name[:200]]), "name_collision")
            assert reported in problems or (name, "too_many_attributes") in problems


# infer_type --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "boolean"),
        (False, "boolean"),
        (3999, "number"),
        (-1.5, "number"),
        (0, "number"),
        ("Accessories", "string"),
        ("", "string"),
        ("3999", "string"),
        ("2019-05-21T03:47:35Z", "datetime"),  # MoEngage's departure_date example
        ("2019-03-12T17:36:05", "datetime"),
        ("2020-10-16T13:40:12.791+05:30", "datetime"),
        ("2022-01-22", "datetime"),  # date-only is a documented datetime format
        ("2019-15-12", "string"),  # REF §4: impossible dates are ingested as strings
        ("2019-02-30", "string"),
        ("2019-02-29", "string"),
        ("2020-02-29", "datetime"),
        ("0000-01-01", "string"),
        ("2019-03-12T24:00:00Z", "string"),
        ("2019-03-12T23:60:00Z", "string"),
        ("2019-03-12T23:59:60Z", "string"),
        ("2019-03-12T23:59:59+25:00", "string"),  # an offset no clock has
        ("2019-03-12T23:59:59-05:60", "string"),
        ("2019-03-12T23:59:59-23:59", "datetime"),
        ("2019-03-12 extra", "string"),
        ("12/03/2019", "string"),
        ("2019-03-12".translate(FULL_WIDTH), "string"),  # full-width digits are not ISO 8601
        ([1, 2, 3.5], "array<number>"),
        (["a", "b"], "array<string>"),
        ([True], "array<boolean>"),
        (["2019-03-12", "2020-01-01T00:00:00Z"], "array<datetime>"),
        ([{"a": 1}, {"b": 2}], "array<object>"),
        ([1, "a"], "array"),
        ([], "array"),
        ({"a": 1}, "object"),
        ({}, "object"),
        (None, "null"),
    ],
)
def test_infer_type_names_the_schema_type_of_a_value(value: Any, expected: str) -> None:
    assert infer_type(value) == expected


def is_schema_type(kind: str) -> bool:
    if kind in {"boolean", "number", "string", "datetime", "object", "null", "array"}:
        return True
    return kind.startswith("array<") and kind.endswith(">") and is_schema_type(kind[6:-1])


@given(value=json_values)
def test_infer_type_names_arrays_by_their_one_element_type(value: Any) -> None:
    kind = infer_type(value)
    assert is_schema_type(kind)
    if isinstance(value, list):
        kinds = {infer_type(item) for item in value}
        assert kind == (f"array<{kinds.pop()}>" if len(kinds) == 1 else "array")
