"""Event times (track-event.md §3): parsing every accepted form, rejections, REF §1.2 defaults."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trackd.wire import times
from trackd.wire.times import _ISO, MAX_MS, iso, parse_offset, parse_time, resolve

EPOCH = datetime(1970, 1, 1)
LAST = datetime(9999, 12, 31, 23, 59, 59, 999999)
MS = timedelta(milliseconds=1)
MS_THRESHOLD = 10**11  # values at or above are milliseconds, below are seconds

FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))
ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + d) for d in range(10)))

#: Instants whose wall clock stays inside years 1970..9999 under any offset below 24 h.
inner_moments = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30))
moments = st.datetimes(min_value=EPOCH, max_value=LAST)
separators = st.sampled_from(["T", "t", " "])


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since 1970 of a naive UTC datetime, sub-millisecond part cut off."""
    return (moment - EPOCH) // MS


def wall_clock(moment: datetime, separator: str = "T") -> str:
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}{separator}"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )


def offset_text(minutes: int, colon: bool) -> str:
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}{':' if colon else ''}{mins:02d}"


# ISO 8601 date-times -----------------------------------------------------------------------


@given(moment=moments, separator=separators, zulu=st.sampled_from(["Z", "z"]))
def test_iso_time_with_z_parses_to_its_epoch_milliseconds(
    moment: datetime, separator: str, zulu: str
) -> None:
    whole = moment.replace(microsecond=0)
    assert parse_time(wall_clock(moment, separator) + zulu) == epoch_ms(whole)


@given(moment=moments, separator=separators)
def test_iso_time_without_zone_is_read_as_utc(moment: datetime, separator: str) -> None:
    whole = moment.replace(microsecond=0)
    assert parse_time(wall_clock(moment, separator)) == epoch_ms(whole)


@given(
    instant=inner_moments,
    minutes=st.integers(-(23 * 60 + 59), 23 * 60 + 59),
    colon=st.booleans(),
)
def test_iso_time_with_an_offset_parses_to_the_utc_instant(
    instant: datetime, minutes: int, colon: bool
) -> None:
    instant = instant.replace(microsecond=0)
    local = instant + timedelta(minutes=minutes)
    assert parse_time(wall_clock(local) + offset_text(minutes, colon)) == epoch_ms(instant)


@given(
    moment=moments,
    digits=st.integers(1, 9),
    mark=st.sampled_from([".", ","]),
    zone=st.sampled_from(["", "Z", "+00:00"]),
)
def test_fractional_seconds_are_kept_to_the_millisecond(
    moment: datetime, digits: int, mark: str, zone: str
) -> None:
    written = f"{moment.microsecond:06d}".ljust(9, "0")[:digits]
    shown = moment.replace(microsecond=int(written[:6].ljust(6, "0")))
    text = f"{wall_clock(moment)}{mark}{written}{zone}"
    assert parse_time(text) == epoch_ms(shown)


@given(moment=st.datetimes(min_value=EPOCH, max_value=datetime(9999, 12, 31, 23, 59)))
def test_iso_time_without_seconds_is_accepted(moment: datetime) -> None:
    text = wall_clock(moment)[:-3] + "Z"
    assert parse_time(text) == epoch_ms(moment.replace(second=0, microsecond=0))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-05-31T16:33:35Z", 1590942815000),  # MoEngage's own example
        ("2020-10-16T13:40:12.791+05:30", 1602835812791),  # RudderStack's current_time
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T05:30:00+05:30", 0),
        ("9999-12-31T23:59:59.999Z", MAX_MS),
        ("  2020-05-31T16:33:35Z\n", 1590942815000),
    ],
)
def test_documented_iso_examples_parse_exactly(text: str, expected: int) -> None:
    assert parse_time(text) == expected


# Epoch numbers and numeric strings ---------------------------------------------------------


@given(seconds=st.integers(0, MS_THRESHOLD - 1))
def test_integers_below_ten_to_the_eleven_are_epoch_seconds(seconds: int) -> None:
    assert parse_time(seconds) == seconds * 1000
    assert parse_time(str(seconds)) == seconds * 1000


@given(millis=st.integers(MS_THRESHOLD, MAX_MS))
def test_integers_from_ten_to_the_eleven_are_epoch_milliseconds(millis: int) -> None:
    assert parse_time(millis) == millis
    assert parse_time(str(millis)) == millis


@given(millis=st.integers(0, MS_THRESHOLD * 1000 - 1))
def test_float_seconds_parse_to_the_nearest_millisecond(millis: int) -> None:
    assert parse_time(millis / 1000) == millis


@given(millis=st.integers(MS_THRESHOLD, MAX_MS), fraction=st.floats(0, 0.4))
def test_float_milliseconds_parse_to_the_nearest_millisecond(millis: int, fraction: float) -> None:
    assert parse_time(millis + fraction) == millis


@given(millis=st.integers(0, MS_THRESHOLD * 1000 - 1), pad=st.sampled_from(["", " ", "\t"]))
def test_decimal_strings_of_seconds_parse_to_milliseconds(millis: int, pad: str) -> None:
    text = f"{pad}{millis // 1000}.{millis % 1000:03d}{pad}"
    assert parse_time(text) == millis


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1708939453396", 1708939453396),  # the seed's 13-digit milliseconds string
        ("1710740192", 1710740192000),  # a documented 10-digit seconds string
        (1590404615, 1590404615000),  # a documented bare number
        (1712567385.726, 1712567385726),  # the npm SDK's float seconds
        (99_999_999_999, 99_999_999_999_000),  # just below the threshold: seconds
        (100_000_000_000, 100_000_000_000),  # at the threshold: milliseconds
        (0, 0),
        (MAX_MS, MAX_MS),
    ],
)
def test_documented_epoch_examples_parse_exactly(value: object, expected: int) -> None:
    assert parse_time(value) == expected


# Rejections --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        None,
        [],
        {},
        [1708939453],
        -1,
        -0.5,
        "-1708939453",
        float("nan"),
        float("inf"),
        float("-inf"),
        "NaN",
        "nan",
        "inf",
        "Infinity",
        "",
        " ",
        "soon",
        "2019-15-12",  # REF §4's impossible date
        "2019-15-12T10:00:00Z",
        "2019-02-30T10:00:00Z",
        "2019-12-15T24:00:00Z",
        "2019-12-15T23:60:00Z",
        "2019-12-15T23:59:60Z",
        "2019-12-15T10:00:00+24:00",
        "2019-12-15T10:00:00+05:60",
        "2019-12-15T10:00:00.1234567890Z",
        "2019-12-15T10:00:00ZZ",
        "2019-12-15",  # a date alone is not an event time
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:00:00+00:01",
        "9999-12-31T23:59:59-00:01",
        "0000-01-01T00:00:00Z",
        MAX_MS + 1,
        str(MAX_MS + 1),
        10**30,
        "12345678901234567",  # more digits than any epoch
        "1e12",
        "0x1F",
        "1708939453".translate(ARABIC_INDIC),  # Arabic-Indic digits are not a numeric string
        "2019-01-01T00:00:00Z".translate(FULL_WIDTH),  # nor are full-width ones ISO 8601
    ],
)
def test_values_that_are_not_times_are_rejected(value: object) -> None:
    assert parse_time(value) is None


@given(value=st.text() | st.integers() | st.floats() | st.booleans() | st.none())
def test_any_value_parses_to_none_or_to_milliseconds_in_range(value: object) -> None:
    result = parse_time(value)
    assert result is None or (type(result) is int and 0 <= result <= MAX_MS)


@given(value=st.integers(max_value=-1) | st.floats(max_value=-1e-9))
def test_negative_epochs_are_rejected(value: float) -> None:
    assert parse_time(value) is None


# user_timezone_offset ----------------------------------------------------------------------


@given(seconds=st.integers(-54000, 54000))
def test_offsets_within_fifteen_hours_are_accepted(seconds: int) -> None:
    assert parse_offset(seconds) == seconds


@given(seconds=st.integers(max_value=-54001) | st.integers(min_value=54001))
def test_offsets_beyond_fifteen_hours_are_rejected(seconds: int) -> None:
    assert parse_offset(seconds) is None


@pytest.mark.parametrize("value", [True, False, 19800.5, "19800", None, [19800], {}, 1e300])
def test_offsets_that_are_not_integers_are_rejected(value: object) -> None:
    assert parse_offset(value) is None


def test_an_integral_float_offset_is_that_integer() -> None:
    assert parse_offset(19800.0) == 19800
    assert type(parse_offset(-3600.0)) is int


# MoEngage's defaulting table (REF §1.2) ----------------------------------------------------

RECEIVED = 1_712_567_385_726
USER = 1_712_600_000_000
CURRENT = 1_712_580_000_000
WORKSPACE_OFFSET = 19800


@pytest.mark.parametrize(
    ("user_time", "current_time", "offset", "expected"),
    [
        pytest.param(
            None,
            None,
            None,
            (RECEIVED + 19800_000, RECEIVED, 19800),
            id="none given: current_time is the receive time, the offset the workspace's",
        ),
        pytest.param(
            None,
            CURRENT,
            None,
            (CURRENT + 19800_000, CURRENT, 19800),
            id="only current_time: user_time derived with the workspace offset",
        ),
        pytest.param(
            USER,
            None,
            None,
            (USER, USER - 19800_000, 19800),
            id="only user_time: current_time derived with the workspace offset",
        ),
        pytest.param(
            USER,
            CURRENT,
            None,
            (USER, CURRENT, 19800),
            id="both times: used as they are",
        ),
        pytest.param(
            USER,
            CURRENT,
            -3600,
            (USER, CURRENT, -3600),
            id="both times and an offset: used as they are",
        ),
        pytest.param(
            None,
            CURRENT,
            -3600,
            (CURRENT - 3600_000, CURRENT, -3600),
            id="current_time and offset: user_time generated",
        ),
        pytest.param(
            USER,
            None,
            -3600,
            (USER, USER + 3600_000, -3600),
            id="user_time and offset: current_time generated",
        ),
        pytest.param(
            None,
            None,
            0,
            (RECEIVED, RECEIVED, 0),
            id="only an offset: current_time is the receive time",
        ),
    ],
)
def test_missing_times_follow_the_defaulting_table(
    user_time: int | None,
    current_time: int | None,
    offset: int | None,
    expected: tuple[int, int, int],
) -> None:
    assert resolve(user_time, current_time, offset, RECEIVED, WORKSPACE_OFFSET) == expected


@given(
    user_time=st.none() | st.integers(0, MAX_MS),
    current_time=st.none() | st.integers(0, MAX_MS),
    offset=st.none() | st.integers(-54000, 54000),
    default_offset=st.integers(-54000, 54000),
)
def test_resolved_times_differ_by_the_offset_unless_both_were_sent(
    user_time: int | None, current_time: int | None, offset: int | None, default_offset: int
) -> None:
    got_user, got_current, got_offset = resolve(
        user_time, current_time, offset, RECEIVED, default_offset
    )
    assert got_offset == (default_offset if offset is None else offset)
    if user_time is not None:
        assert got_user == user_time
    if current_time is not None:
        assert got_current == current_time
    if user_time is None or current_time is None:
        assert got_user - got_current == got_offset * 1000


# iso() -------------------------------------------------------------------------------------

ISO_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


@pytest.mark.parametrize(
    ("millis", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1708939453396, "2024-02-26T09:24:13.396Z"),
        (1590942815000, "2020-05-31T16:33:35.000Z"),
        (999, "1970-01-01T00:00:00.999Z"),
        (MAX_MS, "9999-12-31T23:59:59.999Z"),
    ],
)
def test_iso_shows_utc_with_milliseconds(millis: int, text: str) -> None:
    assert iso(millis) == text


@given(moment=moments)
def test_iso_round_trips_through_parse_time(moment: datetime) -> None:
    millis = epoch_ms(moment)
    text = iso(millis)
    assert ISO_SHAPE.fullmatch(text)
    assert text == wall_clock(moment) + f".{moment.microsecond // 1000:03d}Z"
    assert parse_time(text) == millis


# -- ISO 8601 parsing against a plain datetime oracle ---------------------------------------


def _iso_oracle(text: str) -> int | None:
    """The straightforward parse: one `datetime` per value (what `_from_iso` must equal)."""
    match = _ISO.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, _zulu, sign, off_h, off_m = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), tzinfo=UTC
        )
    except ValueError:
        return None
    offset = 0
    if sign is not None:
        if int(off_h) > 23 or int(off_m) > 59:
            return None
        offset = (int(off_h) * 3600 + int(off_m) * 60) * (-1 if sign == "-" else 1)
    millis = int((fraction or "0").ljust(3, "0")[:3])
    epoch_ms = int(moment.timestamp()) * 1000 + millis - offset * 1000
    return epoch_ms if 0 <= epoch_ms <= MAX_MS else None


_digits = st.integers
iso_texts = st.builds(
    lambda y, mo, d, sep, h, mi, s, frac, tz: (
        f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}{s}{frac}{tz}"
    ),
    _digits(0, 9999),
    _digits(0, 13),
    _digits(0, 32),
    st.sampled_from(["T", "t", " "]),
    _digits(0, 25),
    _digits(0, 61),
    st.sampled_from(["", ":00", ":59", ":60", ":07"]),
    st.sampled_from(["", ".5", ".123", ".123456789", ",9"]),
    st.sampled_from(["", "Z", "z", "+05:30", "-0800", "+24:00", "-23:59", "+00:60"]),
)


@settings(max_examples=2000, deadline=None)
@given(iso_texts)
def test_iso_times_parse_as_one_datetime_would(text: str) -> None:
    assert parse_time(text) == _iso_oracle(text)


# -- the usual form without a regex (`_from_iso_seconds_z`) ----------------------------------

seconds_z_texts = st.builds(
    lambda y, mo, d, sep, h, mi, s, z: f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{z}",
    _digits(0, 9999),
    _digits(0, 13),
    _digits(0, 32),
    st.sampled_from(["T", "t", " "]),
    _digits(0, 25),
    _digits(0, 61),
    _digits(0, 61),
    st.sampled_from(["Z", "z"]),
)


@settings(max_examples=2000, deadline=None)
@given(seconds_z_texts)
def test_the_usual_iso_form_parses_as_one_datetime_would(text: str) -> None:
    assert len(text) == 20
    assert times._from_text(text) == parse_time(text) == _iso_oracle(text)


@pytest.mark.parametrize(
    "text",
    [
        "\u0662\u0660\u0662\u0664-01-01T00:00:00Z",  # Arabic-Indic digits: not ASCII
        "+202-01-01T00:00:00Z",
        "1_00-01-01T00:00:00Z",
        "2024-01-01T0 :00:00Z",
        "2024-01-01T00:00:00X",
        "2024-01-01X00:00:00Z",
        "1969-12-31T23:59:59Z",  # before the epoch
        "0000-01-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2024-01-01T24:00:00Z",
    ],
)
def test_texts_of_the_usual_length_that_are_not_times_are_rejected(text: str) -> None:
    assert len(text) == 20
    assert times._from_text(text) is None
    assert parse_time(text) is None
    assert _iso_oracle(text) is None


@settings(max_examples=500, deadline=None)
@given(st.text(min_size=20, max_size=20))
def test_any_text_of_the_usual_length_parses_as_the_general_parse(text: str) -> None:
    # the stripped text takes the general parse
    assert times._from_text(text) == times._from_text(" " + text)


def test_remembered_texts_stay_within_their_bound() -> None:
    for n in range(times.MAX_REMEMBERED + 10):
        assert parse_time(str(1_700_000_000 + n)) == (1_700_000_000 + n) * 1000
    assert len(times._TEXTS) <= times.MAX_REMEMBERED
    assert parse_time("2026-12-02T13:00:00Z") == parse_time("2026-12-02T13:00:00Z") is not None
