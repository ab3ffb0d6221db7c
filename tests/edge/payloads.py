"""What the edge tests send: the seed request with keys replaced or removed, and the bytes
httpx puts on the wire for a JSON body."""

from __future__ import annotations

import copy
from typing import Any

import httpx

from tests.factories import SEED_BODY

DROP = object()  # in `body(...)` / `action(...)`: remove the key

# one valid element of each type of a Bulk Import body
CUSTOMER = {"type": "customer", "customer_id": "u1", "attributes": {"plan": "gold"}}
EVENT = {
    "type": "event",
    "customer_id": "u1",
    "actions": [{"action": "Opened"}, {"action": "Paid"}],
}
DEVICE = {
    "type": "device",
    "customer_id": "u1",
    "device_id": "d1",
    "attributes": {"platform": "iOS", "push_id": "p1", "model": "iPhone"},
}


def _changed(original: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(original)
    for key, value in changes.items():
        if value is DROP:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def body(**changes: Any) -> dict[str, Any]:
    """The seed request with top-level keys replaced (or removed with DROP)."""
    return _changed(SEED_BODY, changes)


def action(**changes: Any) -> dict[str, Any]:
    """The seed's action with keys replaced (or removed with DROP)."""
    return _changed(SEED_BODY["actions"][0], changes)


def httpx_json(value: Any) -> bytes:
    """The JSON bytes httpx would send for `json=value`."""
    return httpx.Request("POST", "http://x", json=value).content
