"""Track Device's rules (`trackd.processor.devices.device_write`, data-api.md §1): unknown user,
replacement by a shared identifier, an update of the same device, the 1,000 devices limit."""

from __future__ import annotations

from trackd.models import Device, IssueRecord, Kind, Plan
from trackd.processor.devices import MAX_DEVICES_PER_USER, device_write
from trackd.store.records import DeviceWrite, StoredDevice


def plan(device: Device) -> Plan:
    return Plan(
        request_id="r1", workspace_id="WS1", kind=Kind.DEVICE, customer_id="u1", identifiers=None,
        device_id=device.device_id, received_at=5_000, client_ip="10.0.0.1", events=[], schema=[],
        issues=[], dropped_events=0, device=device,
    )  # fmt: skip


SENT = Device(device_id="d9", platform="iOS", attributes={"push_id": "p9", "idfv": "v9"})


def issue(reason: str, attribute: str) -> IssueRecord:
    return IssueRecord(request_id="r1", index=0, reason=reason, attribute=attribute, at=5_000)


def test_a_device_of_no_profile_is_dropped_as_unknown_user() -> None:
    assert device_write(plan(SENT), "u1", SENT, False, []) == (
        None,
        [issue("unknown_user", "customer_id")],
    )


def test_a_new_device_is_written_seen_at_its_receipt() -> None:
    write, issues = device_write(plan(SENT), "u1", SENT, True, [StoredDevice("u1", {}, 1_000)])
    assert issues == []
    assert write == DeviceWrite(
        "WS1", "u1", "d9", "iOS", None, {"push_id": "p9", "idfv": "v9"}, 5_000, 5_000, "10.0.0.1"
    )


def test_devices_sharing_an_identifier_are_replaced_keeping_the_earliest_first_seen() -> None:
    stored = [
        StoredDevice("a", {"push_id": "p9"}, 3_000),
        StoredDevice("b", {"idfv": "v9", "push_id": "other"}, 2_000),
        StoredDevice("c", {"push_id": "p1", "moe_gaid": "v9"}, 1_000),  # another identifier
        StoredDevice("d9", {"push_id": "p9"}, 4_000),  # the same device: updated, not replaced
    ]
    write, issues = device_write(plan(SENT), "u1", SENT, True, stored)
    assert issues == []
    assert write is not None
    assert (write.replaces, write.first_seen) == (("a", "b"), 2_000)


def test_the_thousand_and_first_device_is_dropped_but_the_thousandth_is_updated() -> None:
    stored = [StoredDevice(f"x{i}", {"push_id": f"q{i}"}, 1) for i in range(MAX_DEVICES_PER_USER)]
    assert device_write(plan(SENT), "u1", SENT, True, stored) == (
        None,
        [issue("device_limit", "device_id")],
    )
    known = Device(device_id="x5", platform="iOS", attributes={"push_id": "new"})
    write, issues = device_write(plan(known), "u1", known, True, stored)
    assert (issues, write is not None) == ([], True)
    replacing = Device(device_id="new", platform="iOS", attributes={"push_id": "q7"})
    write, issues = device_write(plan(replacing), "u1", replacing, True, stored)
    assert issues == []
    assert write is not None and write.replaces == ("x7",)  # the count stays 1,000
    fewer = stored[:-1]
    assert device_write(plan(SENT), "u1", SENT, True, fewer)[1] == []
