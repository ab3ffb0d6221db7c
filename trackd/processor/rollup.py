"""Batch roll-ups: one row change per user, device, event name and attribute type per batch.

A store applies a batch of plans (with customer ids resolved) as a handful of bulk upserts
instead of one statement per event; these pure functions compute them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    for plan in plans:
        ws = plan.workspace_id
        out.count(ws, "processed_events", len(plan.events))
        out.count(ws, "dropped_events", plan.dropped_events)
        if plan.customer_id is None or not plan.events:
            continue
        _events(out, plan, plan.customer_id)
    return out


def _events(out: Rollup, plan: Plan, customer_id: str) -> None:
    ws = plan.workspace_id
    times = [e.current_time for e in plan.events]
    user = out.users.setdefault((ws, customer_id), UserRollup(min(times), max(times)))
    user.first_seen, user.last_seen = min(user.first_seen, *times), max(user.last_seen, *times)
    user.event_count += len(plan.events)
    latest = max(plan.events, key=lambda e: e.current_time)
    device_id = plan.device_id or customer_id
    device = out.devices.setdefault((ws, customer_id, device_id), DeviceRollup(min(times), 0))
    device.first_seen = min(device.first_seen, *times)
    if latest.current_time >= device.last_seen:
        device.last_seen = latest.current_time
        device.platform, device.app_version = latest.platform, latest.app_version
        device.last_ip = plan.client_ip
    for event in plan.events:
        name = out.event_names.setdefault((ws, event.action), [0, event.current_time, 0])
        name[0] += 1
        name[1] = min(name[1], event.current_time)
        name[2] = max(name[2], event.current_time)
    for action, attribute, type_ in plan.schema:
        if attribute:
            key = (ws, action, attribute, type_)
            out.attributes[key] = out.attributes.get(key, 0) + 1
