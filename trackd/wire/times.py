"""Event times (track-event.md §3): parsing and MoEngage's defaulting table.

Accepted for `user_time` and `current_time`: an integer or float epoch, or a numeric string;
values at or above 10^11 are milliseconds, below are seconds; ISO 8601 date-times with `Z`, an
offset or none (none means UTC), with optional fractional seconds. All results are integer epoch
milliseconds.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

MS_THRESHOLD = 10**11
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
MAX_OFFSET = 54_000

TIME_EXPECTED = "an epoch timestamp in seconds or milliseconds, or an ISO 8601 date-time"
OFFSET_EXPECTED = f"an integer between -{MAX_OFFSET} and {MAX_OFFSET}"

_NUMERIC = re.compile(r"\d{1,16}(\.\d{1,9})?", re.ASCII)  # ASCII digits only
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?",
    re.ASCII,
)


def parse_time(value: object) -> int | None:
    """Epoch milliseconds for a time value, or None when it is not a time."""
    if type(value) is int:  # the common case first
        return _from_int(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch(float(value)) if isinstance(value, float) else _from_int(value)
    if not isinstance(value, str):
        return None
    return parse_text(value)


def parse_text(value: str) -> int | None:
    """`parse_time` of a text (the typed decode's, already known to be one)."""
    try:  # a batch's events mostly share a few times: each text is parsed once
        return _TEXTS[value]
    except KeyError:
        pass
    ms = _from_text(value)
    if len(_TEXTS) >= MAX_REMEMBERED:
        _TEXTS.clear()
    _TEXTS[value] = ms
    return ms


#: Texts parsed lately and their result, up to a bound (a pure function of the text).
_TEXTS: dict[str, int | None] = {}
MAX_REMEMBERED = 4096


def _from_text(value: str) -> int | None:
    if len(value) == 20:  # the usual form, YYYY-MM-DDTHH:MM:SSZ, without a regex
        ms = _from_iso_seconds_z(value)
        if ms is not None:
            return ms
    text = value.strip()
    if _NUMERIC.fullmatch(text):
        return _from_epoch(float(text)) if "." in text else _from_int(int(text))
    return _from_iso(text)


def _from_int(value: int) -> int | None:
    if value < 0:
        return None
    ms = value if value >= MS_THRESHOLD else value * 1000
    return ms if ms <= MAX_MS else None


def _from_epoch(value: float) -> int | None:
    if not math.isfinite(value) or value < 0:
        return None
    ms = round(value if value >= MS_THRESHOLD else value * 1000)  # round first, then bound
    return ms if ms <= MAX_MS else None


def _from_iso_seconds_z(text: str) -> int | None:
    """`_from_iso` of exactly ``YYYY-MM-DDTHH:MM:SSZ`` (ASCII digits, ``T``/``t``/space,
    ``Z``/``z``) by slicing; None for any other text or a time no calendar has, which then takes
    the general parse (it says None too for the latter)."""
    if not (
        text.isascii()
        and text[4] == "-"
        and text[7] == "-"
        and text[13] == ":"
        and text[16] == ":"
        and text[10] in _T
        and text[19] in _Z
    ):
        return None
    year, month, day = text[0:4], text[5:7], text[8:10]
    hour, minute, second = text[11:13], text[14:16], text[17:19]
    if not (year + month + day + hour + minute + second).isdigit():  # ASCII: 0-9 only
        return None
    day_ms = _day_ms(year, month, day)
    h, m, sec = int(hour), int(minute), int(second)
    if day_ms is None or h > 23 or m > 59 or sec > 59:
        return None
    epoch_ms = day_ms + (h * 3600 + m * 60 + sec) * 1000
    return epoch_ms if 0 <= epoch_ms <= MAX_MS else None


_T = frozenset("Tt ")
_Z = frozenset("Zz")


def _from_iso(text: str) -> int | None:
    match = _ISO.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, _zulu, sign, off_h, off_m = match.groups()
    day_ms = _day_ms(year, month, day)
    h, m, s = int(hour), int(minute), int(second or 0)
    if day_ms is None or h > 23 or m > 59 or s > 59:
        return None
    offset = 0
    if sign is not None:
        if int(off_h) > 23 or int(off_m) > 59:
            return None
        offset = (int(off_h) * 3600 + int(off_m) * 60) * (-1 if sign == "-" else 1)
    millis = int((fraction or "0").ljust(3, "0")[:3])
    epoch_ms = day_ms + (h * 3600 + m * 60 + s - offset) * 1000 + millis
    return epoch_ms if 0 <= epoch_ms <= MAX_MS else None


_DAYS: dict[tuple[str, str, str], int | None] = {}


def _day_ms(year: str, month: str, day: str) -> int | None:
    """Epoch milliseconds of a calendar day's midnight UTC, None for a day no calendar has.

    Remembered (events of a batch mostly share a few days), up to a bound."""
    key = (year, month, day)
    try:
        return _DAYS[key]
    except KeyError:
        pass
    try:
        ms: int | None = (
            int(datetime(int(year), int(month), int(day), tzinfo=UTC).timestamp()) * 1000
        )
    except ValueError:
        ms = None
    if len(_DAYS) >= MAX_REMEMBERED:
        _DAYS.clear()
    _DAYS[key] = ms
    return ms


def parse_offset(value: object) -> int | None:
    """A `user_timezone_offset` in seconds, or None when it is not one.

    REF types it as a number: an integral float (``19800.0``, as Python's json writes it) is
    the same integer; a fractional one is not an offset."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if -MAX_OFFSET <= value <= MAX_OFFSET else None


def resolve(
    user_time: int | None,
    current_time: int | None,
    offset: int | None,
    received_ms: int,
    default_offset: int,
) -> tuple[int, int, int]:
    """MoEngage's defaulting table (REF §1.2): returns (user_time, current_time, offset).

    - no times: `current_time` is the receive time;
    - `user_time` alone (or with an offset): `current_time` = `user_time` - offset;
    - `current_time` alone (or with an offset): `user_time` = `current_time` + offset;
    - both: used as they are. The offset defaults to the workspace's.
    """
    tz = default_offset if offset is None else offset
    if current_time is None:
        current_time = received_ms if user_time is None else user_time - tz * 1000
    if user_time is None:
        user_time = current_time + tz * 1000
    return user_time, current_time, tz


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATES: dict[int, str] = {}  # day number -> "YYYY-MM-DDT": events cluster on few days
_CLOCK = [f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]  # minute of the day
_SECONDS = [f"{s:02d}." for s in range(60)]
_MILLIS = [f"{ms:03d}Z" for ms in range(1000)]


def iso(epoch_ms: int) -> str:
    """ISO 8601 UTC with milliseconds, as the read API shows times. Built from tables (the
    date once per day seen): an export of millions of events spent most of its time here."""
    seconds, ms = divmod(epoch_ms, 1000)
    day, second = divmod(seconds, 86_400)
    date = _DATES.get(day)
    if date is None:
        if len(_DATES) >= 4096:
            _DATES.clear()
        date = _DATES[day] = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%dT")
    minute, second = divmod(second, 60)
    return date + _CLOCK[minute] + _SECONDS[second] + _MILLIS[ms]
