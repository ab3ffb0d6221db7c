"""Track Device's step (`Kind.DEVICE`, data-api.md §1): a device of an existing user.

A barrier (`trackd.processor.steps`): it runs on the batch's transaction after the plans before
it are written, so a user made by an earlier request of the same batch is an existing user. In
queue order, for the user the request names (a merged user's id names the profile it went into):

- no profile: the device is dropped, issue `unknown_user` (attribute `customer_id`);
- another device of the user with the same `moe_gaid`, `idfv` or `push_id` is replaced by the
  one sent: it goes, and the one sent keeps the earliest first seen of those it replaced (REF
  §6.3);
- the user's device of the same `device_id` is updated (the attributes sent replace the stored
  ones of the same name, the others stay);
- a new device beyond the user's 1,000th (REF §3) is dropped, issue `device_limit` (attribute
  `device_id`).

The device is seen at the receive time of its request; the user's first and last seen, event
count and attributes do not change (a device is not an activity of the user).
"""

from __future__ import annotations

import msgspec

from trackd.models import DEVICE_IDENTIFIERS, Device, IssueRecord, Plan
from trackd.store.base import Batch
from trackd.store.records import Changes, DeviceWrite, Rollup, StoredDevice

#: The devices a user may have (REF §3, S2's FAQ); the 1,001st is dropped.
MAX_DEVICES_PER_USER = 1_000


def device_write(
    plan: Plan, customer_id: str, device: Device, exists: bool, stored: list[StoredDevice]
) -> tuple[DeviceWrite | None, list[IssueRecord]]:
    """What `plan`'s device does to the user `customer_id` (live), who `exists` or not, whose
    devices are `stored`: the write, or None and the issue of its drop."""
    if not exists:
        return None, [_issue(plan, "unknown_user", "customer_id")]
    sent = {k: device.attributes[k] for k in DEVICE_IDENTIFIERS if k in device.attributes}
    replaced = [
        d
        for d in stored
        if d.device_id != device.device_id
        and any(d.attributes.get(k) == v for k, v in sent.items())
    ]
    known = any(d.device_id == device.device_id for d in stored)
    if not known and len(stored) - len(replaced) >= MAX_DEVICES_PER_USER:
        return None, [_issue(plan, "device_limit", "device_id")]
    first_seen = min([plan.received_at, *(d.first_seen for d in replaced)])
    write = DeviceWrite(
        workspace_id=plan.workspace_id,
        customer_id=customer_id,
        device_id=device.device_id,
        platform=device.platform,
        app_version=device.app_version,
        attributes=dict(device.attributes),
        first_seen=first_seen,
        last_seen=plan.received_at,
        last_ip=plan.client_ip,
        replaces=tuple(d.device_id for d in replaced),
    )
    return write, []


def _issue(plan: Plan, reason: str, attribute: str) -> IssueRecord:
    return IssueRecord(
        request_id=plan.request_id, index=0, reason=reason, attribute=attribute, at=plan.received_at
    )


async def track_device(batch: Batch, plan: Plan) -> None:
    """Track Device's barrier: the module docstring's rules, then the plan's issues."""
    device, customer_id = plan.device, plan.customer_id
    issues = list(plan.issues)
    if device is not None and customer_id is not None:
        ws = plan.workspace_id
        aliases = await batch.aliases([(ws, customer_id)])
        customer_id = aliases.get((ws, customer_id), customer_id)
        user = (ws, customer_id)
        exists = bool(await batch.profiles([user]))
        stored = (await batch.devices([user])).get(user, []) if exists else []
        write, dropped = device_write(plan, customer_id, device, exists, stored)
        if write is not None:
            await batch.put_devices([write])
        issues.extend(dropped)
    if issues:
        only_issues = msgspec.structs.replace(plan, events=[], issues=issues)
        await batch.write(Changes([only_issues], [], [], Rollup()))
