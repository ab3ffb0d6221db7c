"""Profiles: how a batch's plans change users' attributes and identifiers, decided in memory.

A `ProfileView` holds the profiles a batch read (`Batch.profiles`) and what its plans made of
them so far, in plan order: each plan's step (`trackd.processor.steps`) sees the profiles as the
plans before it left them, and the batch writes each changed profile once, as it ends up.

Attributes and identifiers merge as RFC 7386 JSON merge patches (`merge_patch`): a key of the
patch replaces the stored one, objects merge key by key at every depth, and a null deletes the
key. A profile that does not exist yet takes the patch as sent.
"""

from __future__ import annotations

from typing import Any

from trackd.store.records import Profile, ProfileWrite, UserKey


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 MergePatch(target, patch), as SQLite's ``json_patch``; never changes either
    (the result may share their unchanged parts)."""
    if type(patch) is not dict:
        return patch
    if type(target) is not dict:
        target = {}
    if not patch:
        return target
    out = dict(target)
    for name, value in patch.items():
        if value is None:
            out.pop(name, None)
        elif type(value) is dict:
            out[name] = merge_patch(out.get(name), value)
        else:  # the RFC's recursion returns any other value as it is
            out[name] = value
    return out


class ProfileView:
    """The profiles of one batch as its plans leave them (see the module docstring)."""

    def __init__(self, stored: dict[UserKey, Profile]) -> None:
        self._rows = dict(stored)  # the profile row of each user read, as it is now
        self._changed: dict[UserKey, None] = {}  # in the order first changed
        self._active: set[UserKey] = set()  # users given events by the batch's plans so far

    def get(self, user: UserKey) -> Profile | None:
        """`user`'s profile row as the plans so far left it; None if it has none (yet)."""
        return self._rows.get(user)

    def had_events(self, user: UserKey) -> None:
        """A plan stores events of `user`: from here on the user exists, its row made by the
        rollup (written after the profiles) if no plan makes it before."""
        self._active.add(user)

    def has_events(self, user: UserKey) -> bool:
        """A plan so far stored events of `user` (`had_events`)."""
        return user in self._active

    def seen(
        self,
        user: UserKey,
        attributes: dict[str, Any],
        identifiers: dict[str, Any],
        at: tuple[int, int],
    ) -> None:
        """Merge into `user`'s profile, making it if there is none; `at` is when the plan saw
        the user (first, last): a new profile spans it, a stored one is last seen at the later."""
        row = self._rows.get(user)
        if row is None:
            row = Profile(dict(attributes), dict(identifiers), at[0], at[1])
        else:
            row = Profile(
                merge_patch(row.attributes, attributes),
                merge_patch(row.identifiers, identifiers),
                row.first_seen,
                max(row.last_seen, at[1]),
            )
        self._put(user, row)

    def update_attributes(self, user: UserKey, attributes: dict[str, Any]) -> None:
        """Merge into the attributes of `user`'s profile row, if it has one; nothing else."""
        row = self._rows.get(user)
        if row is not None:
            merged = merge_patch(row.attributes, attributes)
            self._put(user, Profile(merged, row.identifiers, row.first_seen, row.last_seen))

    def _put(self, user: UserKey, row: Profile) -> None:
        self._rows[user] = row
        self._changed[user] = None

    def writes(self) -> list[ProfileWrite]:
        """The changed profiles, each once, as they end up."""
        return [ProfileWrite(ws, c, self._rows[(ws, c)]) for ws, c in self._changed]
