"""What the tests send and queue: the seed request, Basic credentials, many-event bodies, and
envelopes as the edge would queue them."""

from __future__ import annotations

import base64
import re
from typing import Any

import msgspec

from trackd.models import Action, Envelope

#: The request of the user's source document (the seed), byte for byte in spirit.
SEED_BODY: dict[str, Any] = {
    "type": "event",
    "customer_id": "123",
    "actions": [
        {
            "action": "ProductAdded",
            "attributes": {"product": "Accessories", "color": "Black", "Brand": "Adidas"},
            "platform": "Android",
            "app_version": "1.2.3",
            "user_time": "1708939453396",
            "current_time": "1708939453396",
        }
    ],
}


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def bulk_body(marker: str, events: int) -> bytes:
    """The seed request as `marker` (its customer_id) with `events` copies of its action (no
    warnings: the 200 body is the plain one)."""
    return msgspec.json.encode(
        {**SEED_BODY, "customer_id": marker, "actions": SEED_BODY["actions"] * events}
    )


def envelope(request_id: str, workspace_id: str = "WS1", **attributes: Any) -> Envelope:
    """An envelope as the edge would queue it, with one action carrying `attributes`."""
    return Envelope(
        request_id=request_id,
        workspace_id=workspace_id,
        received_at=1_708_939_453_396,
        customer_id="123",
        device_id=None,
        actions=[
            Action(
                index=0,
                action="ProductAdded",
                attributes={"product": "Accessories", **attributes},
                platform="ANDROID",
                current_time=1_708_939_453_396,
                user_time=1_708_939_453_396,
                user_timezone_offset=0,
            )
        ],
        client_ip="198.51.100.7",
    )


MOENGAGE_ID = re.compile(r"[0-9a-f]{24}")


def without_moengage_id(user: Any) -> Any:
    """A profile without its `moengage_id`, which is random and must be 24 lowercase hex
    characters: tests compare the rest exactly."""
    assert isinstance(user, dict), user
    rest = dict(user)
    moengage_id = rest.pop("moengage_id")
    assert isinstance(moengage_id, str) and MOENGAGE_ID.fullmatch(moengage_id), moengage_id
    return rest
