"""One batch of plans into an event store, in one of its transactions (`EventStore.batch`).

claim (skip what was stored before), then the plans in runs, in order. A run is the plans up to
the next barrier step (Merge Users) or up to and including the first plan whose identifiers tie
two profiles together (Identity Resolution), whichever comes first:

aliases (a merged user's id names the profile it went into) -> owners (the identifiers'
customers) -> resolve (`identity`) -> profiles (those the steps read) -> steps (`STEPS`, per
plan, in order) -> write (events, identifiers, profiles, the `rollup`, issues) -> the tie's
merge (`merge.merge_tie`), if any. A barrier runs alone between runs (`merge.merge_users`).
Each run sees what the ones before it wrote. All of it commits, or none does: a redelivered
plan is claimed again only if its first batch did not commit.

A batch of plain events (no merge, no alias in its workspaces) is one run, as it always was.
A Bulk Import plan is replaced, once claimed, by its parts (`expanded`): its elements apply in
order, exactly as the same requests sent one by one to their own endpoints would.
"""

from __future__ import annotations

import msgspec

from trackd.models import IssueRecord, Kind, Plan
from trackd.processor import identity, merge
from trackd.processor.profiles import ProfileView
from trackd.processor.rollup import rollup
from trackd.processor.steps import STEPS
from trackd.store.base import Batch, EventStore
from trackd.store.records import Changes, UserKey


async def apply(store: EventStore, plans: list[Plan]) -> None:
    """Store `plans` (`trackd.processor.plan`), in order, all or nothing; plans whose request id
    was stored before change nothing."""
    if not plans:
        return
    async with store.batch() as batch:
        fresh = expanded(await batch.claim(plans))
        start = 0
        while start < len(fresh):
            barrier = STEPS[fresh[start].kind].barrier
            if barrier is not None:
                await barrier(batch, fresh[start])
                start += 1
                continue
            end = start + 1
            while end < len(fresh) and STEPS[fresh[end].kind].barrier is None:
                end += 1
            start += await _run(batch, fresh[start:end])


async def _run(batch: Batch, plans: list[Plan]) -> int:
    """Apply the first run of `plans` (no barrier among them); how many plans it took."""
    plans = await _unaliased(batch, plans)
    keys = identity.keys(plans)
    owners = await batch.owners(keys) if keys else {}
    tie = identity.first_tie(plans, owners) if keys else None
    if tie is not None:
        plans = plans[: tie.position + 1]
        plans[-1], tie = await _capped(batch, plans[-1], tie)
    resolved, identifiers = identity.resolve(plans, owners)
    users = _reads(resolved)
    view = ProfileView(await batch.profiles(users) if users else {})
    if users:  # steps change only profiles they read: with none read, nothing to run
        for plan in resolved:
            STEPS[plan.kind].run(view, plan)
    await batch.write(Changes(resolved, identifiers, view.writes(), rollup(resolved)))
    if tie is not None and tie.others:
        await merge.merge_tie(batch, resolved[-1], tie)
    return len(plans)


async def _unaliased(batch: Batch, plans: list[Plan]) -> list[Plan]:
    """`plans` with each customer id that is a merged user's replaced by the one it names."""
    users = list(dict.fromkeys((p.workspace_id, p.customer_id) for p in plans if p.customer_id))
    aliases = await batch.aliases(users) if users else {}
    if not aliases:
        return plans
    return [
        msgspec.structs.replace(p, customer_id=aliases[key])
        if (key := (p.workspace_id, p.customer_id or "")) in aliases
        else p
        for p in plans
    ]


async def _capped(batch: Batch, plan: Plan, tie: identity.Tie) -> tuple[Plan, identity.Tie]:
    """The tying plan without the identifier values on which too many users merged already
    (each an `identifier_merge_limit` issue), and the tie without the customers they named."""
    capped = await merge.capped(batch, tie)
    if not capped:
        return plan, tie
    names = {name for _, name, _ in capped}
    kept = {n: v for n, v in (plan.identifiers or {}).items() if n not in names}
    issues = [
        IssueRecord(
            request_id=plan.request_id,
            index=0,
            reason="identifier_merge_limit",
            attribute=f"user_identifiers.{name}",
            at=plan.received_at,
        )
        for name in plan.identifiers or {}
        if name in names
    ]
    plan = msgspec.structs.replace(plan, identifiers=kept or None, issues=[*plan.issues, *issues])
    others = [(c, key) for c, key in tie.others if key not in capped]
    return plan, tie._replace(others=others)


# -- Bulk Import (data-api.md §2) --


def expanded(plans: list[Plan]) -> list[Plan]:
    """`plans` with each Bulk Import replaced by its parts, in order (each applied as its own
    endpoint's plan), after a plan holding only the bulk's own issues (its invalid elements)."""
    if not any(p.kind == Kind.BULK for p in plans):
        return plans
    out: list[Plan] = []
    for plan in plans:
        if plan.kind != Kind.BULK:
            out.append(plan)
            continue
        if plan.issues:
            out.append(msgspec.structs.replace(plan, kind=Kind.EVENT, customer_id=None, parts=None))
        out.extend(plan.parts or [])
    return out


def _reads(plans: list[Plan]) -> list[UserKey]:
    """The users whose profiles the plans' steps read, each once."""
    users: dict[UserKey, None] = {}
    for plan in plans:
        for user in STEPS[plan.kind].reads(plan):
            users[user] = None
    return list(users)
