"""Merging users: Merge Users' pairs (`Kind.MERGE`) and Identity Resolution's ties, by one rule.

Merging the live profile M into the live profile R (data-api.md §3):

- R keeps its attributes and identifiers and gains each of M's that it has none of (by name, at
  the top level); first seen is the earlier of the two, last seen the later;
- every event of M moves to R with its event id, and so do M's devices, identifier values and
  aliases; R's event count is the sum of both, plus the merge's own two events;
- M's row goes and its customer id becomes an alias of R: later events, Track User updates and
  reads for it land on R, which lists it under `aliases`;
- two events record it (REF §5), both stored on R (where M's history now is) at the time trackd
  received the request that made the merge: ``MOE_USER_MERGE_EVENT``, M's last event, and
  ``MOE_USER_MERGED``, R's; each carries ``{"merged_user": M, "retained_user": R}`` (and, for an
  Identity Resolution merge, ``"identifier": name``). They count in R's `event_count`, not in
  first or last seen, the schema, nor the workspace's processed events (no client sent them).

A pair's ids are taken through the aliases first (an id merged before names the profile it went
into). A pair naming no profile is skipped with issue `merge_unknown_user` (its attribute
`merged_user` or `retained_user`); a pair whose two ids name one profile (the same id, or one
already merged into the other, which would make a cycle) with `merge_cycle`. The other pairs
apply, in order, each seeing the ones before it.
"""

from __future__ import annotations

import msgspec

from trackd.models import EventRecord, IssueRecord, Plan
from trackd.processor.identity import Tie
from trackd.store.base import Batch
from trackd.store.records import Changes, IdentifierKey, MergeWrite, Profile, Rollup

MERGED_EVENT = "MOE_USER_MERGE_EVENT"  # on the merged user (REF §5)
RETAINED_EVENT = "MOE_USER_MERGED"  # on the retained user
#: At most this many users merge on one identifier value, the one holding it included (REF §5);
#: a later one keeps its profile and drops that value (issue `identifier_merge_limit`).
MAX_USERS_PER_IDENTIFIER = 50

#: (merged id, retained id, the identifier value that tied them or None)
Pair = tuple[str, str, IdentifierKey | None]


def combined(retained: Profile, merged: Profile) -> Profile:
    """R's row once M is merged into it (the module docstring's first rule)."""
    attributes = dict(retained.attributes)
    for name, value in merged.attributes.items():
        attributes.setdefault(name, value)
    identifiers = dict(retained.identifiers)
    for name, value in merged.identifiers.items():
        identifiers.setdefault(name, value)
    return Profile(
        attributes,
        identifiers,
        min(retained.first_seen, merged.first_seen),
        max(retained.last_seen, merged.last_seen),
    )


def merges_of(
    plan: Plan, pairs: list[Pair], aliases: dict[str, str], profiles: dict[str, Profile]
) -> tuple[list[MergeWrite], list[IssueRecord]]:
    """What `pairs` (of `plan`'s workspace) do, in order, given the `aliases` of their ids and
    the `profiles` of the live ids: the merges to store and the issues of the pairs skipped."""
    live, rows = dict(aliases), dict(profiles)
    writes: list[MergeWrite] = []
    issues: list[IssueRecord] = []
    for index, (merged_id, retained_id, via) in enumerate(pairs):
        merged, retained = live.get(merged_id, merged_id), live.get(retained_id, retained_id)
        problem = _skipped(merged not in rows, retained not in rows, merged == retained)
        if problem is not None:
            reason, attribute = problem
            issues.append(
                IssueRecord(
                    request_id=plan.request_id,
                    index=index,
                    reason=reason,
                    attribute=attribute,
                    at=plan.received_at,
                )
            )
            continue
        profile = combined(rows[retained], rows.pop(merged))
        rows[retained] = profile
        events = _events(plan, index, merged, retained, via)
        writes.append(MergeWrite(plan.workspace_id, merged, retained, profile, events, _via(via)))
        for alias, target in live.items():
            if target == merged:
                live[alias] = retained
        live[merged] = retained
    return writes, issues


def _skipped(no_merged: bool, no_retained: bool, same: bool) -> tuple[str, str] | None:
    if no_merged:
        return "merge_unknown_user", "merged_user"
    if no_retained:
        return "merge_unknown_user", "retained_user"
    if same:
        return "merge_cycle", "merged_user"
    return None


def _via(key: IdentifierKey | None) -> tuple[str, str] | None:
    return None if key is None else (key[1], key[2])


def _events(
    plan: Plan, index: int, merged: str, retained: str, via: IdentifierKey | None
) -> list[EventRecord]:
    attributes: dict[str, str] = {"merged_user": merged, "retained_user": retained}
    if via is not None:
        attributes["identifier"] = via[1]
    at = plan.received_at
    return [
        EventRecord(
            event_id=f"{plan.request_id}-{tag}{index}",
            request_id=plan.request_id,
            action=action,
            attributes=attributes,
            platform="unknown",
            platform_raw=None,
            app_version=None,
            user_time=at,
            current_time=at,
            user_timezone_offset=0,
            received_at=at,
            client_ip=plan.client_ip,
            device_id=None,
            project_code=None,
        )
        for tag, action in (("m", MERGED_EVENT), ("r", RETAINED_EVENT))
    ]


async def _store(batch: Batch, plan: Plan, pairs: list[Pair], issues: list[IssueRecord]) -> None:
    """Look up what `pairs` need, and store what they do (and `issues`) in `batch`."""
    ws = plan.workspace_id
    named = list(dict.fromkeys(c for merged, retained, _ in pairs for c in (merged, retained)))
    found = await batch.aliases([(ws, c) for c in named])
    aliases = {c: retained for (_, c), retained in found.items()}
    live = list(dict.fromkeys(aliases.get(c, c) for c in named))
    stored = await batch.profiles([(ws, c) for c in live])
    writes, skipped = merges_of(plan, pairs, aliases, {c: p for (_, c), p in stored.items()})
    if writes:
        await batch.merge(writes)
    issues = issues + skipped
    if issues:
        only_issues = msgspec.structs.replace(plan, events=[], issues=issues)
        await batch.write(Changes([only_issues], [], [], Rollup()))


async def merge_users(batch: Batch, plan: Plan) -> None:
    """Merge Users' step: its pairs, in order (the module docstring)."""
    pairs: list[Pair] = [(p.merged_user, p.retained_user, None) for p in plan.merges or []]
    await _store(batch, plan, pairs, list(plan.issues))


async def capped(batch: Batch, tie: Tie) -> set[IdentifierKey]:
    """The identifier values of `tie` on which `MAX_USERS_PER_IDENTIFIER` users merged already."""
    keys = [key for _, key in tie.others]
    counts = await batch.merged_on(keys)
    return {key for key in keys if counts.get(key, 0) + 1 >= MAX_USERS_PER_IDENTIFIER}


async def merge_tie(batch: Batch, plan: Plan, tie: Tie) -> None:
    """Identity Resolution: the profiles `plan` tied (`tie`, once the plan is stored) merge
    into the one last seen latest (the first of them, the plan's own first, on a tie) [REF §5's
    default retention rule]."""
    ws = tie.workspace_id
    group = [tie.customer_id, *(customer for customer, _ in tie.others)]
    stored = await batch.profiles([(ws, c) for c in group])
    present = [c for c in group if (ws, c) in stored]
    if len(present) < 2:
        return
    retained = max(present, key=lambda c: stored[(ws, c)].last_seen)
    via = dict(tie.others)
    retained_key = via.get(retained)
    pairs: list[Pair] = [(c, retained, via.get(c, retained_key)) for c in present if c != retained]
    await _store(batch, plan, pairs, [])
