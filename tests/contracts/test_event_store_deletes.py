"""The EventStore contract for Delete User (trackd/store/base.py's `Batch.live_user`,
`schedule_delete`, `due_deletes`, `hard_delete`, `EventStore.live_user`, the profile's
`deletion_scheduled_at`; the processor's Delete step and sweep), run against every adapter:
memory, sqlite, postgres.

Plans are built as the processor builds them (`plan` from an `Envelope`) and applied with
`apply`, so what is checked is what the read API would show."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from tests.contracts import postgres_db
from tests.services import needs_service
from trackd.models import (
    Action,
    Device,
    Envelope,
    Erasure,
    Kind,
    MergePair,
    Plan,
    UserDelete,
    Warning,
)
from trackd.processor.apply import apply
from trackd.processor.deletes import sweep
from trackd.processor.plan import plan
from trackd.store import open_event_store
from trackd.store.base import EventQuery, EventStore

pytestmark = pytest.mark.anyio

T = 1_700_000_000_000  # 2023-11-14T22:13:20.000Z
RECEIVED = T + 60_000


def act(index: int, name: str, at: int) -> Action:
    return Action(
        index=index, action=name, attributes={}, platform="ANDROID", app_version="1.0",
        current_time=at, user_time=at, user_timezone_offset=0,
    )  # fmt: skip


def event(request_id: str, customer_id: str, *times: int, ws: str = "WS1") -> Plan:
    return plan(
        Envelope(
            request_id=request_id, workspace_id=ws, received_at=RECEIVED,
            customer_id=customer_id, device_id=None,
            actions=[act(i, "Opened", at) for i, at in enumerate(times)],
            user_identifiers={"email": f"{customer_id}@example.com"},
            client_ip="198.51.100.7", event_count=len(times),
        )
    )  # fmt: skip


def delete(
    request_id: str, value: str, buffer_ms: int = 0, identity_type: str = "customer_id"
) -> Plan:
    return plan(
        Envelope(
            request_id=request_id, workspace_id="WS1", received_at=RECEIVED,
            customer_id=value if identity_type == "customer_id" else None, device_id=None,
            actions=[], kind=Kind.DELETE,
            delete=UserDelete(
                identity_type=identity_type, identity_value=value, buffer_ms=buffer_ms
            ),
        )
    )  # fmt: skip


def device(request_id: str, customer_id: str) -> Plan:
    return plan(
        Envelope(
            request_id=request_id, workspace_id="WS1", received_at=RECEIVED,
            customer_id=customer_id, device_id="phone", actions=[], kind=Kind.DEVICE,
            device=Device(device_id="phone", platform="ANDROID", attributes={"push_id": "p"}),
        )
    )  # fmt: skip


async def events_of(store: EventStore, customer_id: str | None = None) -> list[str]:
    page, _ = await store.events(EventQuery(workspace_id="WS1", customer_id=customer_id))
    return sorted(e["event_id"] for e in page)


async def test_live_user_finds_by_customer_id_alias_and_moengage_id(store: EventStore) -> None:
    await apply(store, [event("e1", "u1", T), event("e2", "old", T)])
    merge = Envelope(
        request_id="m1", workspace_id="WS1", received_at=RECEIVED, customer_id=None,
        device_id=None, actions=[], kind=Kind.MERGE, merges=[MergePair("old", "u1")],
    )  # fmt: skip
    await apply(store, [plan(merge)])
    user = await store.user("WS1", "u1")
    assert user is not None
    moengage_id = user["moengage_id"]
    assert await store.live_user("WS1", "customer_id", "u1") == "u1"
    assert await store.live_user("WS1", "customer_id", "old") == "u1"  # an alias
    assert await store.live_user("WS1", "moengage_id", moengage_id) == "u1"
    assert await store.live_user("WS1", "customer_id", "nobody") is None
    assert await store.live_user("WS1", "moengage_id", "0" * 24) is None
    assert await store.live_user("WS2", "customer_id", "u1") is None
    async with store.batch() as batch:
        await batch.claim([])
        assert await batch.live_user("WS1", "customer_id", "old") == "u1"
        assert await batch.live_user("WS1", "moengage_id", moengage_id) == "u1"


async def test_a_delete_without_buffer_removes_everything_of_the_user(store: EventStore) -> None:
    await apply(store, [event("e1", "u1", T, T + 1), event("e2", "u2", T), device("d1", "u1")])
    await apply(store, [event("e3", "u1", T, ws="WS2")])  # another workspace's u1 stays
    before = await store.user("WS1", "u1")
    assert before is not None and len(before["devices"]) == 2
    await apply(store, [delete("x1", "u1")])
    assert await store.user("WS1", "u1") is None
    assert await events_of(store, "u1") == []
    assert len(await events_of(store)) == 1  # u2's
    assert await store.user("WS1", "u2") is not None
    assert await store.user("WS2", "u1") is not None
    # its identifier value is free: the same customer id later is a new user, new moengage_id
    await apply(store, [event("e4", "u1", T + 5)])
    again = await store.user("WS1", "u1")
    assert again is not None
    assert again["moengage_id"] != before["moengage_id"]
    assert again["event_count"] == 1
    assert [d["device_id"] for d in again["devices"]] == ["u1"]


async def test_a_delete_by_moengage_id_and_an_unknown_user(store: EventStore) -> None:
    await apply(store, [event("e1", "u1", T)])
    user = await store.user("WS1", "u1")
    assert user is not None
    await apply(
        store,
        [delete("x1", user["moengage_id"], identity_type="moengage_id"), delete("x2", "nobody")],
    )
    assert await store.user("WS1", "u1") is None
    issues = await store.issues("WS1", None)
    assert [(i["request_id"], i["reason"], i["attribute"]) for i in issues] == [
        ("x2", "unknown_user", "identity_value")
    ]


async def test_a_delete_in_the_same_batch_sees_the_user_made_before_it(store: EventStore) -> None:
    await apply(store, [event("e1", "u1", T), delete("x1", "u1"), event("e2", "u1", T + 9)])
    user = await store.user("WS1", "u1")  # the event after the delete makes a new user
    assert user is not None and user["event_count"] == 1
    assert await events_of(store, "u1") != []


async def test_a_buffered_delete_is_shown_then_swept_when_due(store: EventStore) -> None:
    await apply(store, [event("e1", "u1", T), event("e2", "u2", T)])
    await apply(store, [delete("x1", "u1", buffer_ms=2_000)])
    user = await store.user("WS1", "u1")
    assert user is not None
    assert user["deletion_scheduled_at"] == RECEIVED + 2_000
    assert "deletion_scheduled_at" not in (await store.user("WS1", "u2") or {})
    # still active and updatable during the buffer (REF §6.5)
    await apply(store, [event("e3", "u1", T + 1)])
    assert (await store.user("WS1", "u1") or {})["event_count"] == 2
    # a second delete keeps the earlier time
    await apply(store, [delete("x2", "u1", buffer_ms=60_000)])
    assert (await store.user("WS1", "u1") or {})["deletion_scheduled_at"] == RECEIVED + 2_000
    assert await sweep(store, RECEIVED + 1_999) == 0
    assert await store.user("WS1", "u1") is not None
    assert await sweep(store, RECEIVED + 2_000) == 1
    assert await store.user("WS1", "u1") is None
    assert await events_of(store, "u1") == []
    assert await store.user("WS1", "u2") is not None
    assert await sweep(store, RECEIVED + 10_000) == 0


async def test_due_deletes_are_earliest_first_and_bounded(store: EventStore) -> None:
    await apply(store, [event(f"e{i}", f"u{i}", T) for i in range(3)])
    await apply(store, [delete(f"x{i}", f"u{i}", buffer_ms=1_000 * (3 - i)) for i in range(3)])
    async with store.batch() as batch:
        await batch.claim([])
        assert await batch.due_deletes(RECEIVED + 10_000, 2) == [("WS1", "u2"), ("WS1", "u1")]
        assert await batch.hard_delete([("WS1", "u2")]) == 1
        assert await batch.due_deletes(RECEIVED + 10_000, 5) == [("WS1", "u1"), ("WS1", "u0")]


# -- GDPR erasure (data-api.md §6): `Batch.users_matching`, `erase_issues`, `record_erasure`,
# `erase_recorded_requests` (a no-op hook), `EventStore.erasures`; the processor's Erase step --


def erase(request_id: str, *identities: tuple[str, str]) -> Plan:
    return plan(
        Envelope(
            request_id=request_id, workspace_id="WS1", received_at=RECEIVED, customer_id=None,
            device_id=None, actions=[], kind=Kind.ERASE,
            erasure=Erasure(identities=list(identities), submitted_time="2018-10-05T15:00:00Z"),
        )
    )  # fmt: skip


def customer(request_id: str, customer_id: str, **attributes: object) -> Plan:
    return plan(
        Envelope(
            request_id=request_id, workspace_id="WS1", received_at=RECEIVED,
            customer_id=customer_id, device_id=None, actions=[], kind=Kind.CUSTOMER,
            user_attributes=dict(attributes),
        )
    )  # fmt: skip


def warned_event(request_id: str, customer_id: str) -> Plan:
    return plan(
        Envelope(
            request_id=request_id, workspace_id="WS1", received_at=RECEIVED,
            customer_id=customer_id, device_id=None, actions=[act(0, "Opened", T)],
            warnings=[Warning(0, "unknown_platform")], event_count=1,
        )
    )  # fmt: skip


async def test_an_erasure_removes_every_matching_user_and_keeps_only_its_audit_record(
    store: EventStore,
) -> None:
    await apply(
        store,
        [
            event("e1", "ada", T, T + 1),
            warned_event("w1", "ada"),
            warned_event("w2", "dee"),
            customer("c1", "ada", email="shared@example.com"),
            customer("c2", "bob", email="shared@example.com"),
            customer("c3", "cy", mobile="+15550100"),
            customer("c4", "dee", email="other@example.com"),
            device("d1", "ada"),
        ],
    )
    await apply(store, [erase("g1", ("email", "shared@example.com"), ("ID", "cy"))])
    for gone in ("ada", "bob", "cy"):
        assert await store.user("WS1", gone) is None
    assert await store.user("WS1", "dee") is not None
    assert await events_of(store, "ada") == []
    issues = await store.issues("WS1", None)
    assert [i["request_id"] for i in issues] == ["w2"]  # the erased users' issues went
    [record] = await store.erasures("WS1")
    assert record["applied_at"] >= RECEIVED
    assert record == {
        "request_id": "g1", "submitted_time": "2018-10-05T15:00:00Z", "received_at": RECEIVED,
        "applied_at": record["applied_at"], "identity_types": ["ID", "email"], "users": 3,
        "events": 3,
    }  # fmt: skip
    assert await store.erasures("WS2") == []


async def test_an_erasure_matching_nobody_is_recorded_with_no_users(store: EventStore) -> None:
    await apply(store, [erase("g2", ("google_advertising_id", "gaid-1"))])
    [record] = await store.erasures("WS1")
    assert (record["users"], record["events"], record["identity_types"]) == (
        0,
        0,
        ["google_advertising_id"],
    )
    async with store.batch() as batch:
        await batch.claim([])
        await batch.erase_recorded_requests("WS1", ["ada"])  # the request log's hook: no-op
        assert await batch.users_matching("WS1", "mobile", "+1") == []


SHARED_DATABASES = [
    pytest.param(lambda tmp_path: f"sqlite:///{tmp_path}/trackd.db", id="sqlite"),
    pytest.param(
        lambda tmp_path: postgres_db.store_url(),
        id="postgres",
        marks=needs_service("postgresql", postgres_db.available),
    ),
]


@pytest.mark.parametrize("url_of", SHARED_DATABASES)
async def test_an_erasure_removes_the_recorded_requests_naming_its_users(
    tmp_path: Path, url_of: Callable[[Path], str]
) -> None:
    """The request log lives in the event store's database: an erasure's transaction removes
    what it recorded of the erased users (and nothing of anyone else)."""
    from trackd.models import RequestEntry
    from trackd.store import open_request_log
    from trackd.store.base import RequestQuery

    url = url_of(tmp_path)
    store, log = open_event_store(url), open_request_log(url)
    await store.open()
    await log.open()
    try:
        await apply(store, [event("e1", "ada", T), event("e2", "bob", T)])
        entries = [
            RequestEntry(
                workspace_id="WS1",
                at=T + n,
                endpoint="Track Event",
                method="POST",
                path="/v1/event/WS1",
                status=400 if n else 200,
                request_id=f"r{n}",
                customer_id=customer_id,
                event_count=1,
            )
            for n, customer_id in enumerate(["ada", "bob", "ada", None])
        ]
        await log.append(entries, keep=1000)
        await apply(store, [erase("g1", ("ID", "ada"))])
        rows, _ = await log.requests(RequestQuery(workspace_id="WS1", limit=100))
        assert sorted((r["request_id"], r["customer_id"]) for r in rows) == [
            ("r1", "bob"),
            ("r3", None),
        ]
        # an edge's buffer still held one of ada's requests: it is flushed after the erasure
        late, after = entries[0], int(time.time() * 1000) + 3_600_000
        await log.append(
            [
                msgspec.structs.replace(late, request_id="late"),
                msgspec.structs.replace(late, request_id="new", at=after),  # a later request
            ],
            keep=1000,
        )
        rows, _ = await log.requests(RequestQuery(workspace_id="WS1", limit=100))
        assert sorted(r["request_id"] for r in rows) == ["new", "r1", "r3"]
    finally:
        await log.aclose()
        await store.aclose()
