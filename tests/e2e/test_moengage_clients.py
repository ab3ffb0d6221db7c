"""Clients written for MoEngage's Data API, pointed at the real `trackd serve` (REF §8).

Each test sends what one public client sends (its headers, its body shape, its way of writing
times, byte for byte where the client serialises JSON its own way), expects the exact 200 a
MoEngage client checks for, and reads the user and the events back with the right times.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import cli_json, epoch_ms, now_ms, poll, success
from tests.e2e.server import TrackdProcess
from tests.factories import SEED_BODY, basic, without_moengage_id

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]


class Account:
    """A workspace as a MoEngage client is configured with it: an app id and a Data API key."""

    def __init__(self, server: TrackdProcess, client: httpx.AsyncClient) -> None:
        created = cli_json(server.data_dir, "workspace", "create")
        self.app_id: str = created["workspace_id"]
        self.key: str = created["api_key"]
        self.client = client

    async def ready(self) -> Account:
        await self._poll(lambda r: r.status_code == 200, "stats")
        return self

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return await self.client.post(path, content=body, headers=headers)

    async def read(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(
            f"/api/workspaces/{self.app_id}/{path}",
            params=params,
            headers={"Authorization": basic(self.app_id, self.key)},
        )

    async def _poll(self, done: Any, path: str, **params: Any) -> httpx.Response:
        return await poll(lambda: self.read(path, **params), done)

    async def events(self, count: int) -> list[dict[str, Any]]:
        response = await self._poll(
            lambda r: r.status_code == 200 and len(r.json()["events"]) >= count, "events"
        )
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()["events"]
        return events

    async def user(self, customer_id: str, done: Any = lambda user: True) -> Any:
        response = await self._poll(
            lambda r: r.status_code == 200 and done(r.json()), f"users/{customer_id}"
        )
        assert response.status_code == 200, response.text
        return response.json()


def b64_basic(user: str, password: str) -> str:
    """Basic credentials as Node's ``Buffer.from(...).toString("base64")`` writes them."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def iso_ms(epoch_ms: int) -> str:
    """The read API's form of a time: ISO 8601 UTC with milliseconds."""
    seconds, millis = divmod(epoch_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


# -- RudderStack (rudder-transformer, cloud mode): one action per request ----------------------


def rudder_flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """RudderStack's flattening of nested properties into dotted and indexed keys."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, member in value.items():
            out.update(rudder_flatten(member, f"{prefix}.{key}" if prefix else key))
        return out
    if isinstance(value, list):
        out = {}
        for i, member in enumerate(value):
            out.update(rudder_flatten(member, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


ORDER_COMPLETED = {
    "checkout_id": "what is checkout id here??",
    "coupon": "APPARELSALE",
    "currency": "GBP",
    "order_id": "transactionId",
    "category": "some category",
    "originalArray": [
        {"nested_field": "nested value", "tags": ["tag_1", "tag_2", "tag_3"]} for _ in range(9)
    ],
    "products": [
        {
            "brand": "",
            "category": "Merch",
            "currency": "GBP",
            "image_url": "https://www.example.com/product/bacon-jam.jpg",
            "name": "Food/Drink",
            "position": 1,
            "price": 3,
            "product_id": "product-bacon-jam",
            "quantity": 2,
            "sku": "sku-1",
            "url": "https://www.example.com/product/bacon-jam",
            "value": 6,
        },
        {
            "brand": "Levis",
            "category": "Merch",
            "currency": "GBP",
            "name": "T-Shirt",
            "position": 2,
            "price": 12.99,
            "product_id": "product-t-shirt",
            "quantity": 1,
            "sku": "sku-2",
            "value": 12.99,
        },
    ],
    "revenue": 31.98,
    "shipping": 4,
    "value": 31.98,
}


async def test_a_rudderstack_track_and_identify_are_accepted_and_read_back(
    server: TrackdProcess,
) -> None:
    attributes = rudder_flatten(ORDER_COMPLETED)
    track = {
        "customer_id": "rudder123",
        "type": "event",
        "actions": [
            {
                "action": "Order Completed",
                "attributes": attributes,
                "app_version": "1.1.6",
                "current_time": "2020-10-16T13:40:12.791+05:30",
                "user_timezone_offset": 32400,  # from context.timezone "Asia/Tokyo"
                "platform": "web",
            }
        ],
    }
    identify = {
        "type": "customer",
        "attributes": {
            "name": "Rudder Test",
            "plan": "Enterprise",
            "email": "rudderTest@gmail.com",
            "createdAt": "Thu Mar 24 2016 17:46:45 GMT+0000 (UTC)",
            "company.id": "abc123",
            "created_time": "Thu Mar 24 2016 17:46:45 GMT+0000 (UTC)",
        },
        "customer_id": "rudder123",
    }
    async with server.client() as client:
        account = await Account(server, client).ready()
        headers = {
            "Content-Type": "application/json",
            "MOE-APPKEY": account.app_id,
            "Authorization": b64_basic(account.app_id, account.key),
        }
        sent = await account.post(
            f"/v1/event/{account.app_id}", json.dumps(track).encode(), headers
        )
        user_sent = await account.post(
            f"/v1/customer/{account.app_id}", json.dumps(identify).encode(), headers
        )
        [event] = await account.events(1)
        user = await account.user("rudder123", lambda u: u["attributes"])

    assert (sent.status_code, sent.json()) == (200, success(sent))
    assert (user_sent.status_code, user_sent.json()) == (200, success(user_sent))
    assert event["attributes"] == attributes
    assert (event["current_time"], event["user_time"], event["user_timezone_offset"]) == (
        "2020-10-16T08:10:12.791Z",  # 13:40:12.791 at +05:30
        "2020-10-16T17:10:12.791Z",  # the same instant on a +09:00 wall clock
        32400,
    )
    assert (event["platform"], event["app_version"], event["customer_id"]) == (
        "web",
        "1.1.6",
        "rudder123",
    )
    assert user["attributes"] == identify["attributes"]
    assert (user["event_count"], user["first_seen"]) == (1, "2020-10-16T08:10:12.791Z")
    assert [(d["device_id"], d["platform"]) for d in user["devices"]] == [("rudder123", "web")]


# -- the PyPI wrapper (`moengage`, Deepanshu07): requests.post(json=...), no times -------------


async def test_the_pypi_wrapper_event_without_times_and_its_user_with_a_null_email(
    server: TrackdProcess,
) -> None:
    async with server.client() as client:
        account = await Account(server, client).ready()
        # what `requests` sends for `auth=HTTPBasicAuth(...)`, `headers={"MOE-APPKEY": ...}`
        # and `json=data`: json.dumps with its default separators
        headers = {
            "MOE-APPKEY": account.app_id,
            "Authorization": basic(account.app_id, account.key),
            "Content-Type": "application/json",
        }
        event = {  # publish_event("auth-42", "Wallet Loaded", amount=500, source=None)
            "type": "event",
            "customer_id": "auth-42",
            "actions": [
                {
                    "action": "Wallet Loaded",
                    "attributes": {"amount": 500, "source": None},
                    "user_timezone_offset": 19800,
                }
            ],
        }
        customer = {  # create_or_update_user("auth-42", "Asha", "+919800000001", city="Pune")
            "type": "customer",
            "customer_id": "auth-42",
            "attributes": {
                "name": "Asha",
                "mobile": "+919800000001",
                "email": None,
                "city": "Pune",
            },
        }
        before = now_ms()
        sent = await account.post(
            f"/v1/event/{account.app_id}", json.dumps(event).encode(), headers
        )
        user_sent = await account.post(
            f"/v1/customer/{account.app_id}", json.dumps(customer).encode(), headers
        )
        after = now_ms()
        [stored] = await account.events(1)
        user = await account.user("auth-42", lambda u: u["attributes"])

    # the wrapper raises on anything but 200; nulls are dropped silently, so no warnings
    assert (sent.status_code, sent.json()) == (200, success(sent))
    assert (user_sent.status_code, user_sent.json()) == (200, success(user_sent))
    received = epoch_ms(stored["received_at"])
    assert before <= received <= after
    # no times sent: current_time is the receive time, user_time that plus the offset
    assert (stored["current_time"], stored["user_time"], stored["user_timezone_offset"]) == (
        iso_ms(received),
        iso_ms(received + 19800 * 1000),
        19800,
    )
    assert (stored["action"], stored["attributes"]) == ("Wallet Loaded", {"amount": 500})
    assert user["attributes"] == {"name": "Asha", "mobile": "+919800000001", "city": "Pune"}
    assert user["event_count"] == 1
    assert before <= epoch_ms(user["first_seen"]) <= epoch_ms(user["last_seen"]) <= after


# -- the npm SDK (@stack-finance/moengage-sdk): float epoch seconds, a device id ---------------


async def test_the_npm_sdk_float_epoch_seconds_and_device_id_are_read_back_to_the_millisecond(
    server: TrackdProcess,
) -> None:
    t = now_ms() - 60_000
    body = {  # the README's triggerEvent example, `current_time: new Date().getTime() / 1000`
        "type": "event",
        "customer_id": "john@example.com",
        "device_id": "96bd03b6-defc-4203-83d3-dc1c73080232",
        "actions": [
            {
                "action": "Added to Cart",
                "attributes": {"product": "Mobile", "color": "white", "Brand": "Apple"},
                "platform": "iOS",
                "app_version": "1.2.3",
                "current_time": t / 1000,
                "user_timezone_offset": 19800,
            },
            {
                "action": "Purchase",
                "attributes": {"product": "MacBook Air", "Brand": "Apple"},
                "platform": "web",
                "app_version": "1.2.3",
                "current_time": (t + 7) / 1000,
                "user_timezone_offset": 19800,
            },
        ],
    }
    async with server.client() as client:
        account = await Account(server, client).ready()
        headers = {  # node-fetch with the SDK's headers; JSON.stringify writes compact JSON
            "Authorization": b64_basic(account.app_id, account.key),
            "MOE-APPKEY": account.app_id,
            "Content-Type": "application/json",
        }
        sent = await account.post(
            f"/v1/event/{account.app_id}", json.dumps(body, separators=(",", ":")).encode(), headers
        )
        events = await account.events(2)
        user = await account.user("john@example.com")

    assert (sent.status_code, sent.json()) == (200, success(sent))
    assert [
        (e["action"], e["current_time"], e["user_time"], e["platform"], e["device_id"])
        for e in events
    ] == [
        (
            "Purchase",
            iso_ms(t + 7),
            iso_ms(t + 7 + 19800 * 1000),
            "web",
            "96bd03b6-defc-4203-83d3-dc1c73080232",
        ),
        (
            "Added to Cart",
            iso_ms(t),
            iso_ms(t + 19800 * 1000),
            "iOS",
            "96bd03b6-defc-4203-83d3-dc1c73080232",
        ),
    ]
    assert user["devices"] == [
        {
            "device_id": "96bd03b6-defc-4203-83d3-dc1c73080232",
            "platform": "web",  # the device's latest event
            "app_version": "1.2.3",
            "first_seen": iso_ms(t),
            "last_seen": iso_ms(t + 7),
            "last_ip": "127.0.0.1",
        }
    ]
    assert (user["event_count"], user["first_seen"], user["last_seen"]) == (
        2,
        iso_ms(t),
        iso_ms(t + 7),
    )


# -- the seed: MoEngage's own example, 13-digit millisecond strings ----------------------------


async def test_the_seed_request_with_millisecond_strings_is_read_back_at_its_time(
    server: TrackdProcess,
) -> None:
    async with server.client() as client:
        account = await Account(server, client).ready()
        headers = {
            "Authorization": basic(account.app_id, account.key),
            "Content-Type": "application/json",
        }
        sent = await account.post(
            f"/v1/event/{account.app_id}", json.dumps(SEED_BODY).encode(), headers
        )
        [event] = await account.events(1)
        user = await account.user("123")

    assert (sent.status_code, sent.json()) == (200, success(sent))
    request_id = sent.headers["x-request-id"]
    assert event == {
        "event_id": f"{request_id}-0",
        "request_id": request_id,
        "action": "ProductAdded",
        "attributes": {"product": "Accessories", "color": "Black", "Brand": "Adidas"},
        "platform": "ANDROID",
        "platform_raw": None,
        "app_version": "1.2.3",
        "user_time": "2024-02-26T09:24:13.396Z",
        "current_time": "2024-02-26T09:24:13.396Z",
        "user_timezone_offset": 0,
        "received_at": event["received_at"],
        "client_ip": "127.0.0.1",
        "device_id": "123",
        "customer_id": "123",
        "project_code": None,
        "moe_os_type": None,
    }
    assert without_moengage_id(user) == {
        "customer_id": "123",
        "attributes": {},
        "identifiers": {},
        "first_seen": "2024-02-26T09:24:13.396Z",
        "last_seen": "2024-02-26T09:24:13.396Z",
        "event_count": 1,
        "devices": [
            {
                "device_id": "123",
                "platform": "ANDROID",
                "app_version": "1.2.3",
                "first_seen": "2024-02-26T09:24:13.396Z",
                "last_seen": "2024-02-26T09:24:13.396Z",
                "last_ip": "127.0.0.1",
            }
        ],
    }
