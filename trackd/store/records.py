"""The records an event store's batch takes and returns (`trackd.store.base.Batch`).

The processor decides (`trackd.processor`); a store writes these as given. They live on the
store's side of the seam so no store module imports the processor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from trackd.models import EventRecord, Plan

#: (workspace, identifier name, identifier value): what Identity Resolution looks up.
IdentifierKey = tuple[str, str, str]
#: (workspace, customer id): one profile.
UserKey = tuple[str, str]


class IdentifierRow(NamedTuple):
    """A new `user_identifiers` row: this identifier value now names this customer."""

    workspace_id: str
    name: str
    value: str
    customer_id: str


class Profile(NamedTuple):
    """A user's profile row without its event count (the rollup adds to that): attributes and
    identifiers as JSON objects, first and last seen in epoch ms. (A NamedTuple: a batch makes
    one per plan that changes a profile, and a tuple is the cheapest record to make.)"""

    attributes: dict[str, Any]
    identifiers: dict[str, Any]
    first_seen: int
    last_seen: int


class ProfileWrite(NamedTuple):
    """Store this profile row for this user as given (inserted, or replacing the stored one's
    attributes, identifiers, first and last seen; its event count is kept)."""

    workspace_id: str
    customer_id: str
    profile: Profile


@dataclass(slots=True)
class UserRollup:
    first_seen: int
    last_seen: int
    event_count: int = 0


@dataclass(slots=True)
class DeviceRollup:
    first_seen: int
    last_seen: int
    platform: str | None = None
    app_version: str | None = None
    last_ip: str | None = None


@dataclass
class Rollup:
    """One row change per user, device, event name and attribute type of a batch (computed by
    `trackd.processor.rollup`). A store adds it to what it holds: first seen the earlier, last
    seen the later, counts added, a device's platform, version and IP those of its latest event
    (the stored ones on a tie go to the batch)."""

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


@dataclass(frozen=True, slots=True)
class Changes:
    """Everything one batch writes, in this order: the events of `plans` (in plan order, so
    their positions follow the queue's), `identifiers`, `profiles`, the `rollup`, and the
    issues of `plans`. `plans` are the claimed ones with their customer ids resolved."""

    plans: list[Plan]
    identifiers: list[IdentifierRow]
    profiles: list[ProfileWrite]
    rollup: Rollup


# -- Merge Users and Identity Resolution merges ---------------------------------------------------


class MergeWrite(NamedTuple):
    """Merge the live profile `merged` into the live profile `retained` (`Batch.merge`): every
    event of `merged` (event ids kept), its devices (one device id on both: combined as a
    batch's rollup combines, first seen the earlier, the rest from the later), identifiers and
    aliases move to `retained`, whose row becomes `profile` (attributes, identifiers, first and
    last seen) with `merged`'s event count and `len(events)` added; `merged`'s row goes and its
    customer id (with its moengage_id) becomes an alias of `retained`. `events` (the merge's
    own) are stored on `retained`. `via` is the identifier value an Identity Resolution merge
    was made on (None for Merge Users)."""

    workspace_id: str
    merged: str
    retained: str
    profile: Profile
    events: list[EventRecord]
    via: tuple[str, str] | None = None  # (identifier name, value)


# -- Track Device (data-api.md §1) ----------------------------------------------------------------


class StoredDevice(NamedTuple):
    """One of a user's devices as `Batch.devices` reads it: what Track Device's rules need."""

    device_id: str
    attributes: dict[str, Any]  # of `models.DEVICE_ATTRIBUTES`; {} for a device only events made
    first_seen: int


class DeviceWrite(NamedTuple):
    """Store `device` on the user (`Batch.put_devices`): first the user's devices `replaces`
    (their device ids) go; then the device's row is inserted, or, when the user has one of that
    device id, updated: first seen the earlier, last seen the later, platform, last IP and (when
    given) app version the ones sent, `attributes` merged over the stored ones (a key sent
    replaces the stored one)."""

    workspace_id: str
    customer_id: str
    device_id: str
    platform: str
    app_version: str | None
    attributes: dict[str, Any]
    first_seen: int
    last_seen: int
    last_ip: str | None
    replaces: tuple[str, ...] = ()
