"""Delete User's step (`Kind.DELETE`, data-api.md §4) and the sweep of due hard deletes.

A barrier (`trackd.processor.steps`): it runs on the batch's transaction after the plans before
it are written, so a user made by an earlier request (of the same batch too) is deleted, and a
plan after it sees what it did. In queue order, for the user the request names (a customer id,
an alias of one, or a moengage id):

- no live profile: nothing is deleted, issue `unknown_user` (attribute `identity_value`); the
  edge answers 400 for a user it cannot find, so this is a user deleted between the two;
- the request's delete buffer (the workspace's when it was accepted) is 0: the user is
  hard-deleted now (`Batch.hard_delete`: profile, devices, identifiers, aliases, events);
- otherwise it is marked for hard delete at receive time + buffer (`Batch.schedule_delete`);
  it stays active and updatable until then (REF §6.5), its profile showing
  `deletion_scheduled_at`.

The processor's runner calls `sweep` between batches: it hard-deletes, in one transaction,
the marked users whose time has come. The mark is stored, so a delete survives restarts; the
same customer id sent afterwards makes a new user with a new moengage_id.
"""

from __future__ import annotations

import msgspec

from trackd.models import IssueRecord, Plan
from trackd.store.base import Batch, EventStore
from trackd.store.records import Changes, Rollup

#: Users hard-deleted by one sweep at most (one transaction); the next sweep takes the rest.
SWEEP_LIMIT = 100


async def delete_user(batch: Batch, plan: Plan) -> None:
    """Delete User's barrier: the module docstring's rules, then the plan's issues."""
    issues = list(plan.issues)
    delete = plan.delete
    if delete is not None:
        ws = plan.workspace_id
        customer_id = await batch.live_user(ws, delete.identity_type, delete.identity_value)
        if customer_id is None:
            issues.append(
                IssueRecord(
                    request_id=plan.request_id,
                    index=0,
                    reason="unknown_user",
                    attribute="identity_value",
                    at=plan.received_at,
                )
            )
        elif delete.buffer_ms <= 0:
            await batch.hard_delete([(ws, customer_id)])
        else:
            due = plan.received_at + delete.buffer_ms
            await batch.schedule_delete((ws, customer_id), plan.request_id, due)
    if issues:
        only_issues = msgspec.structs.replace(plan, events=[], issues=issues)
        await batch.write(Changes([only_issues], [], [], Rollup()))


async def sweep(store: EventStore, now_ms: int, limit: int = SWEEP_LIMIT) -> int:
    """Hard-delete the users whose delete buffer ended by `now_ms`; how many."""
    async with store.batch() as batch:
        await batch.claim([])
        due = await batch.due_deletes(now_ms, limit)
        if due:
            await batch.hard_delete(due)
        return len(due)
