"""Batch roll-ups: one row change per user, device, event name and attribute type per batch.

A store applies a batch of plans (with customer ids resolved) as a handful of bulk upserts
instead of one statement per event; these pure functions compute them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import chain

from trackd.models import Plan


@dataclass
class UserRollup:
    first_seen: int
    last_seen: int
    event_count: int = 0


@dataclass
class DeviceRollup:
    first_seen: int
    last_seen: int
    platform: str | None = None
    app_version: str | None = None
    last_ip: str | None = None


@dataclass
class Rollup:
    users: dict[tuple[str, str], UserRollup] = field(default_factory=dict)
    devices: dict[tuple[str, str, str], DeviceRollup] = field(default_factory=dict)
    event_names: dict[tuple[str, str], list[int]] = field(
        default_factory=dict
    )  # count, first, last
    attributes: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    counters: dict[tuple[str, str], int] = field(default_factory=dict)

    def count(self, workspace: str, name: str, n: int) -> None:
        if n:
            self.counters[(workspace, name)] = self.counters.get((workspace, name), 0) + n


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
