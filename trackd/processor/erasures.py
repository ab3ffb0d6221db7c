"""GDPR erasure's step (`Kind.ERASE`, data-api.md §6): a barrier, applied at once without the
delete buffer. Every live profile an identity names (`Batch.users_matching`: an email shared by
several users erases all of them, REF §6.6) loses, in the batch's transaction, its issues, the
recorded requests naming it (`Batch.erase_recorded_requests`, the request log's hook), then its
profile, devices, identifier values, aliases and events (`Batch.hard_delete`). An audit record
is kept (`Batch.record_erasure`): request id, submitted and applied time, the identity types,
how many users and events were erased, never the values. No identity matching: the record says
0 users."""

from __future__ import annotations

import time

from trackd.models import Plan
from trackd.store.base import Batch


async def erase_users(batch: Batch, plan: Plan) -> None:
    erasure = plan.erasure
    if erasure is None:
        return
    ws = plan.workspace_id
    found: list[str] = []
    for identity_type, value in erasure.identities:
        for customer_id in await batch.users_matching(ws, identity_type, value):
            if customer_id not in found:
                found.append(customer_id)
    users = [(ws, c) for c in found]
    events = 0
    if users:
        await batch.erase_issues(users)
        await batch.erase_recorded_requests(ws, found)
        events = await batch.hard_delete(users)
    types = sorted({t for t, _ in erasure.identities})
    await batch.record_erasure(
        {
            "workspace": ws,
            "request_id": plan.request_id,
            "submitted_time": erasure.submitted_time,
            "received_at": plan.received_at,
            "applied_at": int(time.time() * 1000),
            "identity_types": ",".join(types),
            "users": len(users),
            "events": events,
        }
    )
