"""Batch roll-ups: one row change per user, device, event name and attribute type per batch.

A store writes a batch of plans (with customer ids resolved) as a handful of bulk upserts
instead of one statement per event; these pure functions compute them. The records they fill
(`Rollup`, `UserRollup`, `DeviceRollup`) are the store's (`trackd.store.records`).
"""

from __future__ import annotations

from collections import Counter
from itertools import chain

from trackd.models import EventRecord, Plan
from trackd.store.records import DeviceRollup, Rollup, UserRollup

__all__ = ["DeviceRollup", "Rollup", "UserRollup", "rollup"]


def rollup(plans: list[Plan]) -> Rollup:
    """Plans must carry resolved customer ids; customer (Track User) plans add no events."""
    out = Rollup()
    processed: dict[str, int] = {}
    dropped: dict[str, int] = {}
    observed: dict[str, list[list[tuple[str, str, str]]]] = {}  # schemas, per workspace
    for plan in plans:
        ws = plan.workspace_id
        events = plan.events
        if events:
            processed[ws] = processed.get(ws, 0) + len(events)
        if plan.dropped_events:
            dropped[ws] = dropped.get(ws, 0) + plan.dropped_events
        if plan.customer_id is None or not events:
            continue
        _events(out, plan, plan.customer_id)
        schemas = observed.get(ws)
        if schemas is None:
            observed[ws] = [plan.schema]
        else:
            schemas.append(plan.schema)
    for name, counts in (("processed_events", processed), ("dropped_events", dropped)):
        for ws, n in counts.items():
            out.count(ws, name, n)
    for ws, schemas in observed.items():  # counted in C, all of a workspace's at once
        for (action, attribute, type_), n in Counter(chain.from_iterable(schemas)).items():
            if attribute:
                out.attributes[(ws, action, attribute, type_)] = n
    return out


def _events(out: Rollup, plan: Plan, customer_id: str) -> None:
    ws = plan.workspace_id
    events = plan.events
    latest = events[0]
    first = last = latest.current_time
    names = out.event_names
    for event in events:
        at = event.current_time
        if at > last:  # the first of the latest, as max() by time picks
            latest, last = event, at
        elif at < first:
            first = at
        name = names.get((ws, event.action))
        if name is None:
            names[(ws, event.action)] = [1, at, at]
        else:
            name[0] += 1
            if at < name[1]:
                name[1] = at
            if at > name[2]:
                name[2] = at
    _user(out, plan, customer_id, (first, last, latest))


def _user(out: Rollup, plan: Plan, customer_id: str, seen: tuple[int, int, EventRecord]) -> None:
    """The user's and the device's rows: `seen` is (first, last, the first latest event)."""
    ws = plan.workspace_id
    first, last, latest = seen
    user = out.users.get((ws, customer_id))
    if user is None:
        out.users[(ws, customer_id)] = UserRollup(first, last, len(plan.events))
    else:
        if first < user.first_seen:
            user.first_seen = first
        if last > user.last_seen:
            user.last_seen = last
        user.event_count += len(plan.events)
    key = (ws, customer_id, plan.device_id or customer_id)
    device = out.devices.get(key)
    if device is None:
        if last >= 0:
            device = DeviceRollup(first, last, latest.platform, latest.app_version, plan.client_ip)
        else:  # a new device starts last seen at 0, as the rollup always did
            device = DeviceRollup(first, 0)
        out.devices[key] = device
    else:
        if first < device.first_seen:
            device.first_seen = first
        if last >= device.last_seen:
            device.last_seen = last
            device.platform, device.app_version = latest.platform, latest.app_version
            device.last_ip = plan.client_ip
