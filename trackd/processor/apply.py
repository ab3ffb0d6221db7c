"""One batch of plans into an event store, in one of its transactions (`EventStore.batch`).

claim (skip what was stored before) -> owners (the identifiers' customers) -> resolve
(`identity`) -> profiles (those the steps read) -> steps (`STEPS`, per plan, in order) ->
write (events, identifiers, profiles, the `rollup`, issues). All of it commits, or none does:
a redelivered plan is claimed again only if its first batch did not commit.
"""

from __future__ import annotations

from trackd.models import Plan
from trackd.processor import identity
from trackd.processor.profiles import ProfileView
from trackd.processor.rollup import rollup
from trackd.processor.steps import STEPS
from trackd.store.base import EventStore
from trackd.store.records import Changes, UserKey


async def apply(store: EventStore, plans: list[Plan]) -> None:
    """Store `plans` (`trackd.processor.plan`), in order, all or nothing; plans whose request id
    was stored before change nothing."""
    if not plans:
        return
    async with store.batch() as batch:
        fresh = await batch.claim(plans)
        if not fresh:
            return
        keys = identity.keys(fresh)
        owners = await batch.owners(keys) if keys else {}
        resolved, identifiers = identity.resolve(fresh, owners)
        users = _reads(resolved)
        view = ProfileView(await batch.profiles(users) if users else {})
        if users:  # steps change only profiles they read: with none read, nothing to run
            for plan in resolved:
                STEPS[plan.kind].run(view, plan)
        await batch.write(Changes(resolved, identifiers, view.writes(), rollup(resolved)))


def _reads(plans: list[Plan]) -> list[UserKey]:
    """The users whose profiles the plans' steps read, each once."""
    users: dict[UserKey, None] = {}
    for plan in plans:
        for user in STEPS[plan.kind].reads(plan):
            users[user] = None
    return list(users)
