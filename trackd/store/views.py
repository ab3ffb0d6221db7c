"""What the read API shows of stored rows, shared by the event store adapters."""

from __future__ import annotations

from typing import Any

import msgspec

from trackd.models import EventRecord
from trackd.wire.times import iso


def event_view(event: EventRecord, customer_id: str) -> dict[str, Any]:
    """An event as the read API shows it: times as ISO 8601 UTC."""
    view = msgspec.structs.asdict(event)
    view["customer_id"] = customer_id
    for name in ("user_time", "current_time", "received_at"):
        view[name] = iso(view[name])
    return view
