"""Names and values of event attributes (track-event.md §4), and type inference.

`clean_attributes` applies MoEngage's limits to one action's attributes and reports every drop,
cut or rewrite as a `(attribute, reason)` pair; `null` values go silently (MoEngage's documented
partial ingestion). `infer_type` names the type the schema catalogue records for a value.

Cutting names to 200 characters can make two names one (`"a" * 200` and `"a" * 250`, or two
long names with the same first 200 characters). The first of them in the body keeps its value;
each later one is dropped with `name_collision`, whose attribute names both originals
(`collision`). This is the one place that rule lives: the typed fast path of `wire/event.py`
only takes names of at most 200 characters, so a body with a cut name always comes here.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import msgspec

from trackd.wire.times import _ISO

MAX_NAME = 200
MAX_VALUE = 512
MAX_ATTRIBUTES = 100
MAX_ARRAY = 50
RESERVED_PREFIX = "moe_"
#: A name in a `name_collision` warning is shown whole up to this length; a longer one as its
#: first 200 characters, "…" and its last 55 (the two names share their first 200).
SHOWN_NAME = 256

Problem = tuple[str, str]  # (attribute, reason)

_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_json = msgspec.json.Encoder()


def is_reserved(name: str) -> bool:
    return name[:4].lower() == RESERVED_PREFIX


def clean_name(name: str, problems: list[Problem], attribute: str | None = None) -> str:
    """Names over 200 characters are cut; the problem names the stored (cut) name."""
    if len(name) > MAX_NAME:
        problems.append((attribute or name[:MAX_NAME], "name_truncated"))
        return name[:MAX_NAME]
    return name


def shown_name(name: str) -> str:
    """`name`, at most `SHOWN_NAME` characters of it."""
    if len(name) <= SHOWN_NAME:
        return name
    return f"{name[:MAX_NAME]}…{name[len(name) - (SHOWN_NAME - MAX_NAME - 1) :]}"


def collision(dropped: str, kept: str) -> str:
    """The attribute of a `name_collision`: the dropped name, then the kept one it became
    (each shown in at most 256 characters)."""
    return f"{shown_name(dropped)} (collides with {shown_name(kept)})"


def clean_attributes(attributes: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """Apply §4 to an action's attributes; the first 100 kept attributes survive, and of names
    equal once cut to 200 characters the first keeps its value (`name_collision`).

    The common case (a short name, a scalar or a short string) is decided inline: this loop
    runs for every attribute of every accepted event."""
    kept: dict[str, Any] = {}
    cut_from: dict[str, str] = {}  # kept name -> the longer name it was cut from
    problems: list[Problem] = []
    for name, value in attributes.items():
        if value is None:
            continue
        if name[3:4] == "_" and is_reserved(name):
            problems.append((name, "reserved_prefix"))
            continue
        if len(kept) >= MAX_ATTRIBUTES:
            problems.append((name, "too_many_attributes"))
            continue
        if (cut_from or len(name) > MAX_NAME) and name[:MAX_NAME] in kept:
            # Only a cut name meets another (a JSON object's keys are already distinct).
            other = cut_from.get(name[:MAX_NAME], name[:MAX_NAME])
            problems.append((collision(name, other), "name_collision"))
            continue
        kind = type(value)
        if kind is str:
            if len(value) > MAX_VALUE:
                value = _clean_string(name, value, problems)
        elif kind is not int and kind is not float and kind is not bool:
            value = _clean_value(name, value, problems, level=1)
        if value is _DROP:
            continue
        if len(name) > MAX_NAME:
            original, name = name, clean_name(name, problems)
            cut_from[name] = original
        kept[name] = value
    return kept, problems


_DROP = object()
_SCALARS = frozenset({str, int, float, bool})


def _clean_value(name: str, value: Any, problems: list[Problem], level: int) -> Any:
    if isinstance(value, str):
        return _clean_string(name, value, problems)
    if isinstance(value, list):
        return _clean_array(name, value, problems, level)
    if isinstance(value, dict):
        return _clean_object(name, value, problems, level)
    return value


def _clean_string(name: str, value: str, problems: list[Problem]) -> Any:
    if len(value) <= MAX_VALUE:
        return value
    if value[:8].lower().startswith(("http://", "https://")):
        problems.append((name, "url_too_long"))
        return _DROP
    problems.append((name, "value_truncated"))
    return value[:MAX_VALUE]


def _element_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _clean_array(name: str, value: list[Any], problems: list[Problem], level: int) -> Any:
    if value and len(value) <= MAX_ARRAY:  # the common case: short, of one scalar type
        kind = type(value[0])
        if (
            kind in _SCALARS
            and all(type(item) is kind for item in value)
            and (kind is not str or all(len(item) <= MAX_VALUE for item in value))
        ):
            return value
    items = [item for item in value if item is not None]
    if len({_element_kind(item) for item in items}) > 1 or any(
        isinstance(item, list) for item in items
    ):
        problems.append((name, "mixed_array"))
        return _DROP
    if len(items) > MAX_ARRAY:
        problems.append((name, "array_truncated"))
        items = items[:MAX_ARRAY]
    cleaned = [_clean_value(name, item, problems, level) for item in items]
    return [item for item in cleaned if item is not _DROP]


def _clean_object(name: str, value: dict[str, Any], problems: list[Problem], level: int) -> Any:
    if level > 2:
        problems.append((name, "object_flattened"))
        return _json.encode(value).decode()
    out: dict[str, Any] = {}
    for key, member in value.items():
        if member is None:
            continue
        cleaned = _clean_value(name, member, problems, level + 1)
        if cleaned is not _DROP:
            out[key] = cleaned
    return out


def is_datetime(value: str) -> bool:
    """ISO 8601 date or date-time strings with real calendar values (REF §4)."""
    match = _ISO.fullmatch(value) or _DATE.fullmatch(value)
    if match is None:
        return False
    try:
        date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return False
    if match.re is _ISO:
        hour, minute, second = match.group(4), match.group(5), match.group(6) or "0"
        off_h, off_m = match.group(10) or "0", match.group(11) or "0"  # as parse_time bounds them
        return (
            int(hour) < 24
            and int(minute) < 60
            and int(second) < 60
            and int(off_h) < 24
            and int(off_m) < 60
        )
    return True


def infer_type(value: Any) -> str:
    """boolean, number, string, datetime, array<element type>, object."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "datetime" if is_datetime(value) else "string"
    if isinstance(value, list):
        kinds = {infer_type(item) for item in value}
        return f"array<{kinds.pop()}>" if len(kinds) == 1 else "array"
    if isinstance(value, dict):
        return "object"
    return "null"
