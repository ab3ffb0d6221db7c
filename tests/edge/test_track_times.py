"""`POST /v1/event/{workspace_id}`: event times (track-event.md §3), as the queued envelope holds
them (integer epoch milliseconds), and future-dated events."""

from __future__ import annotations

import copy
import time
from typing import Any

import msgspec
import pytest

from tests.edge.answers import success
from tests.factories import SEED_BODY
from tests.harness import Harness
from trackd.models import Warning

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("inspecting")]


T_S = 1708939453  # 2024-02-26T09:24:13Z
T_MS = 1708939453396  # 2024-02-26T09:24:13.396Z
IST = 19800  # +05:30 in seconds


def request(*actions: dict[str, Any]) -> dict[str, Any]:
    """A request whose actions carry only `action` plus the given time fields."""
    body = copy.deepcopy(SEED_BODY)
    body["actions"] = [{"action": "Viewed", **a} for a in actions]
    return body


async def accepted(harness: Harness, body: dict[str, Any]) -> Any:
    """Post, expect a plain 200, and return the one envelope queued."""
    response = await harness.post(body)
    assert response.status_code == 200
    assert response.json() == success(response)
    [envelope] = await harness.queued()
    assert envelope.request_id == response.headers["x-request-id"]
    return envelope


def times(action: Any) -> tuple[int, int, int]:
    return action.user_time, action.current_time, action.user_timezone_offset


@pytest.mark.parametrize(
    ("value", "expected_ms"),
    [
        pytest.param(T_S, T_S * 1000, id="epoch seconds"),
        pytest.param(T_MS, T_MS, id="epoch milliseconds"),
        pytest.param(str(T_S), T_S * 1000, id="seconds string"),
        pytest.param(str(T_MS), T_MS, id="milliseconds string"),
        pytest.param(T_S + 0.396, T_MS, id="float seconds"),
        pytest.param(float(T_MS), T_MS, id="float milliseconds"),
        pytest.param(f"{T_S}.25", T_S * 1000 + 250, id="float seconds string"),
        pytest.param(f" {T_S} ", T_S * 1000, id="padded seconds string"),
        pytest.param("2024-02-26T09:24:13Z", T_S * 1000, id="ISO Z"),
        pytest.param("2024-02-26T09:24:13z", T_S * 1000, id="ISO lower-case z"),
        pytest.param("2024-02-26T14:54:13+05:30", T_S * 1000, id="ISO positive offset"),
        pytest.param("2024-02-26T04:24:13-05:00", T_S * 1000, id="ISO negative offset"),
        pytest.param("2024-02-26T14:54:13+0530", T_S * 1000, id="ISO offset without colon"),
        pytest.param("2024-02-26T09:24:13", T_S * 1000, id="ISO no zone is UTC"),
        pytest.param("2024-02-26 09:24:13", T_S * 1000, id="ISO space separator"),
        pytest.param("2024-02-26T09:24:13.396Z", T_MS, id="ISO fraction Z"),
        pytest.param("2024-02-26T09:24:13.396123Z", T_MS, id="ISO microseconds"),
        pytest.param("2024-02-26T09:24:13.4Z", T_S * 1000 + 400, id="ISO tenths"),
        pytest.param("2024-02-26T14:54:13.396+05:30", T_MS, id="ISO fraction offset"),
        pytest.param("2024-02-26T09:24:13.396", T_MS, id="ISO fraction no zone"),
        pytest.param("2024-02-26T09:24Z", T_S * 1000 - 13000, id="ISO without seconds"),
    ],
)
async def test_time_format_is_accepted_as_epoch_milliseconds(
    harness: Harness, value: Any, expected_ms: int
) -> None:
    envelope = await accepted(harness, request({"user_time": value, "current_time": value}))
    assert times(envelope.actions[0]) == (expected_ms, expected_ms, 0)


@pytest.mark.parametrize(
    ("value", "expected_ms"),
    [
        pytest.param(99_999_999_999, 99_999_999_999_000, id="just below 10^11 is seconds"),
        pytest.param(100_000_000_000, 100_000_000_000, id="10^11 is milliseconds"),
        pytest.param("99999999999", 99_999_999_999_000, id="string below 10^11 is seconds"),
        pytest.param("100000000000", 100_000_000_000, id="string 10^11 is milliseconds"),
        pytest.param(0, 0, id="zero"),
    ],
)
async def test_values_at_or_above_10_to_the_11_are_milliseconds(
    harness: Harness, value: Any, expected_ms: int
) -> None:
    """Only `user_time` moves (with `current_time` fixed), so no value is future-dated."""
    envelope = await accepted(harness, request({"user_time": value, "current_time": T_MS}))
    assert times(envelope.actions[0]) == (expected_ms, T_MS, 0)


# MoEngage's defaulting table (REF §1.2) --------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {"user_time": T_MS + 5, "current_time": T_MS, "user_timezone_offset": IST},
            (T_MS + 5, T_MS, IST),
            id="both times and offset are used as they are",
        ),
        pytest.param(
            {"user_time": T_MS + 5, "current_time": T_MS},
            (T_MS + 5, T_MS, 0),
            id="both times are used as they are",
        ),
        pytest.param({"current_time": T_MS}, (T_MS, T_MS, 0), id="only current_time"),
        pytest.param(
            {"current_time": T_MS, "user_timezone_offset": IST},
            (T_MS + IST * 1000, T_MS, IST),
            id="current_time and offset give user_time",
        ),
        pytest.param({"user_time": T_MS}, (T_MS, T_MS, 0), id="only user_time"),
        pytest.param(
            {"user_time": T_MS, "user_timezone_offset": IST},
            (T_MS, T_MS - IST * 1000, IST),
            id="user_time and offset give current_time",
        ),
        pytest.param(
            {"user_time": T_MS, "user_timezone_offset": -18000},
            (T_MS, T_MS + 18000 * 1000, -18000),
            id="user_time and a negative offset give current_time",
        ),
        pytest.param(
            {"user_time": None, "current_time": T_MS, "user_timezone_offset": None},
            (T_MS, T_MS, 0),
            id="null counts as absent",
        ),
    ],
)
async def test_missing_times_follow_the_defaulting_table(
    harness: Harness, fields: dict[str, Any], expected: tuple[int, int, int]
) -> None:
    envelope = await accepted(harness, request(fields))
    assert times(envelope.actions[0]) == expected


async def test_no_times_at_all_give_the_receive_time(harness: Harness) -> None:
    before = int(time.time() * 1000)
    envelope = await accepted(harness, request({}))
    after = int(time.time() * 1000)
    assert before <= envelope.received_at <= after
    assert times(envelope.actions[0]) == (envelope.received_at, envelope.received_at, 0)


async def test_only_an_offset_gives_the_receive_time_and_a_shifted_user_time(
    harness: Harness,
) -> None:
    envelope = await accepted(harness, request({"user_timezone_offset": IST}))
    received = envelope.received_at
    assert times(envelope.actions[0]) == (received + IST * 1000, received, IST)


async def test_missing_offset_defaults_to_the_workspace_timezone(harness: Harness) -> None:
    workspace = await harness.store.get("WS1")
    assert workspace is not None
    await harness.store.save(msgspec.structs.replace(workspace, timezone_offset=3600))
    await harness.app.registry.reload()
    envelope = await accepted(
        harness, request({"current_time": T_MS}, {"current_time": T_MS, "user_timezone_offset": 0})
    )
    assert [times(a) for a in envelope.actions] == [
        (T_MS + 3_600_000, T_MS, 3600),
        (T_MS, T_MS, 0),
    ]


# Future-dated events ---------------------------------------------------------------------------


async def test_future_dated_event_is_dropped_with_a_warning(harness: Harness) -> None:
    future = int(time.time()) + 3600
    body = request({"current_time": T_MS}, {"current_time": future}, {"current_time": T_S})
    response = await harness.post(body)
    assert response.status_code == 200
    assert response.json() == success(response, [{"index": 1, "reason": "future_dated"}])
    [envelope] = await harness.queued()
    assert [(a.index, a.current_time) for a in envelope.actions] == [
        (0, T_MS),
        (2, T_S * 1000),
    ]
    assert envelope.warnings == [Warning(1, "future_dated")]


async def test_request_of_only_future_dated_events_queues_the_warnings_alone(
    harness: Harness,
) -> None:
    future_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400))
    response = await harness.post(request({"current_time": future_iso}))
    assert response.status_code == 200
    assert response.json() == success(response, [{"index": 0, "reason": "future_dated"}])
    [envelope] = await harness.queued()
    assert envelope.actions == []
    assert envelope.warnings == [Warning(0, "future_dated")]


async def test_event_within_the_clock_skew_allowance_is_kept(harness: Harness) -> None:
    ahead = (int(time.time()) + 60) * 1000
    envelope = await accepted(harness, request({"current_time": ahead}))
    assert times(envelope.actions[0]) == (ahead, ahead, 0)


async def test_future_user_time_whose_current_time_is_past_is_kept(harness: Harness) -> None:
    """The check is on the resolved `current_time`: user_time - offset lies in the past."""
    now_ms = int(time.time()) * 1000
    envelope = await accepted(
        harness, request({"user_time": now_ms + 3_600_000, "user_timezone_offset": 3600})
    )
    assert times(envelope.actions[0]) == (now_ms + 3_600_000, now_ms, 3600)


async def test_future_dated_event_in_a_strict_workspace_is_rejected_with_400(
    harness: Harness,
) -> None:
    _, key = await harness.create_workspace(workspace_id="STRICT", strict=True)
    body = request({"current_time": T_MS}, {"current_time": int(time.time()) + 3600})
    response = await harness.post(
        body, workspace_id="STRICT", headers=harness.headers("STRICT", key)
    )
    assert response.status_code == 400
    assert response.json() == {
        "status": "fail",
        "error": {
            "message": "current_time is later than the receive time plus the workspace's "
            "clock-skew allowance (strict mode: future_dated)",
            "type": "StrictModeViolation",
            "attribute": "current_time",
            "request_id": response.headers["x-request-id"],
        },
    }
    assert await harness.queued() == []
