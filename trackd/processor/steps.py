"""What each kind of envelope does to profiles: one `Step` per `Kind`, looked up in `STEPS`.

A step has two parts, both pure:

- `reads(plan)`: the users whose stored profiles the step needs (none for most plans: a plain
  event's user is made by the rollup, without a read);
- `run(view, plan)`: the change the plan makes to the batch's `ProfileView`, seeing what the
  plans before it left there. A step changes only profiles it read (a user it read may have
  none: then it may make one).

`trackd.processor.apply` calls `reads` for every plan of a batch, reads those profiles at once,
then `run` for every plan in order. A new kind of envelope is one more step and one more row.

A step may instead be a *barrier* (Merge Users): `barrier(batch, plan)` runs alone, in queue
order, on the batch's open transaction, after the plans before it are written and before the
plans after it are resolved, so those see what it did (an alias, say).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NamedTuple

from trackd.models import Kind, Plan
from trackd.processor.deletes import delete_user
from trackd.processor.devices import track_device
from trackd.processor.erasures import erase_users
from trackd.processor.merge import merge_users
from trackd.processor.profiles import ProfileView
from trackd.store.base import Batch
from trackd.store.records import UserKey


class Step(NamedTuple):
    reads: Callable[[Plan], tuple[UserKey, ...]]
    run: Callable[[ProfileView, Plan], None]
    barrier: Callable[[Batch, Plan], Awaitable[None]] | None = None


def _seen_at(plan: Plan) -> tuple[int, int]:
    """When the plan saw its user: its events' times, or (Track User) its receipt."""
    events = plan.events
    if len(events) == 1:  # the common case, without a list
        at = events[0].current_time
        return at, at
    if not events:
        return plan.received_at, plan.received_at
    times = [e.current_time for e in events]
    return min(times), max(times)


def _event_reads(plan: Plan) -> tuple[UserKey, ...]:
    if plan.identifiers and plan.customer_id is not None:
        return ((plan.workspace_id, plan.customer_id),)
    return ()


def track_event(view: ProfileView, plan: Plan) -> None:
    """Its events make the user (by the rollup); identifiers are remembered on the profile,
    made now if need be."""
    if plan.customer_id is None:
        return
    user = (plan.workspace_id, plan.customer_id)
    if plan.events:
        view.had_events(user)
    if plan.identifiers:
        view.seen(user, plan.user_attributes or {}, plan.identifiers, _seen_at(plan))


def _user_reads(plan: Plan) -> tuple[UserKey, ...]:
    if plan.user_attributes is not None and plan.customer_id is not None:
        return ((plan.workspace_id, plan.customer_id),)
    return ()


def track_user(view: ProfileView, plan: Plan) -> None:
    """Track User: merge the attributes into the profile, made if need be; with
    `update_existing_only`, only into a profile stored or made before (a user first given
    events later in the batch gets nothing). No attributes (a disallowed customer id): no
    profile at all."""
    attributes = plan.user_attributes
    if attributes is None or plan.customer_id is None:
        return
    user = (plan.workspace_id, plan.customer_id)
    if plan.events:
        view.had_events(user)
    if plan.update_existing_only and not view.has_events(user):
        view.update_attributes(user, attributes)
    else:
        view.seen(user, attributes, plan.identifiers or {}, _seen_at(plan))


STEPS: dict[Kind, Step] = {
    Kind.EVENT: Step(reads=_event_reads, run=track_event),
    Kind.CUSTOMER: Step(reads=_user_reads, run=track_user),
    # -- Merge Users (data-api.md §3): a barrier, see `trackd.processor.merge` --
    Kind.MERGE: Step(reads=lambda plan: (), run=lambda view, plan: None, barrier=merge_users),
    # -- Track Device (data-api.md §1): a barrier, see `trackd.processor.devices` --
    Kind.DEVICE: Step(reads=lambda plan: (), run=lambda view, plan: None, barrier=track_device),
    # -- Bulk Import (data-api.md §2): never run; `trackd.processor.apply.expanded` puts its
    # parts (its elements' plans, each of the kinds above) in its place once it is claimed --
    Kind.BULK: Step(reads=lambda plan: (), run=lambda view, plan: None),
    # -- Delete User (data-api.md §4): a barrier, see `trackd.processor.deletes` --
    Kind.DELETE: Step(reads=lambda plan: (), run=lambda view, plan: None, barrier=delete_user),
    # -- GDPR erasure (data-api.md §6): a barrier, see `trackd.processor.erasures` --
    Kind.ERASE: Step(reads=lambda plan: (), run=lambda view, plan: None, barrier=erase_users),
}
