"""Batch roll-ups: one row change per user, device, event name and attribute type per batch.

A store writes a batch of plans (with customer ids resolved) as a handful of bulk upserts
instead of one statement per event; these pure functions compute them. The records they fill
(`Rollup`, `UserRollup`, `DeviceRollup`) are the store's (`trackd.store.records`).
"""

from __future__ import annotations

from collections import Counter
from itertools import chain

from trackd.models import Plan
from trackd.store.records import DeviceRollup, Rollup, UserRollup

__all__ = ["DeviceRollup", "Rollup", "UserRollup", "rollup"]


def rollup(plans: list[Plan]) -> Rollup:
    """Plans must carry resolved customer ids; customer (Track User) plans add no events."""
    out = Rollup()
    observed: dict[str, list[list[tuple[str, str, str]]]] = {}  # schemas, per workspace
    for plan in plans:
        ws = plan.workspace_id
        out.count(ws, "processed_events", len(plan.events))
        out.count(ws, "dropped_events", plan.dropped_events)
        if plan.customer_id is None or not plan.events:
            continue
        _events(out, plan, plan.customer_id)
        observed.setdefault(ws, []).append(plan.schema)
    for ws, schemas in observed.items():  # counted in C, all of a workspace's at once
        for (action, attribute, type_), n in Counter(chain.from_iterable(schemas)).items():
            if attribute:
                out.attributes[(ws, action, attribute, type_)] = n
    return out


def _events(out: Rollup, plan: Plan, customer_id: str) -> None:
    ws = plan.workspace_id
    events = plan.events
    latest = events[0]
    first = latest.current_time
    names = out.event_names
    for event in events:
        at = event.current_time
        if at > latest.current_time:  # the first of the latest, as max() by time picks
            latest = event
        first = min(first, at)
        name = names.get((ws, event.action))
        if name is None:
            names[(ws, event.action)] = [1, at, at]
        else:
            name[0] += 1
            if at < name[1]:
                name[1] = at
            if at > name[2]:
                name[2] = at
    last = latest.current_time
    user = out.users.get((ws, customer_id))
    if user is None:
        out.users[(ws, customer_id)] = UserRollup(first, last, len(events))
    else:
        user.first_seen = min(user.first_seen, first)
        user.last_seen = max(user.last_seen, last)
        user.event_count += len(events)
    key = (ws, customer_id, plan.device_id or customer_id)
    device = out.devices.get(key)
    if device is None:
        device = out.devices[key] = DeviceRollup(first, 0)
    else:
        device.first_seen = min(device.first_seen, first)
    if last >= device.last_seen:
        device.last_seen = last
        device.platform, device.app_version = latest.platform, latest.app_version
        device.last_ip = plan.client_ip
