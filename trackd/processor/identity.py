"""Identity Resolution: which customer an envelope's `user_identifiers` belong to, and which
profiles a plan ties together (they merge: `trackd.processor.merge`).

The rule, in plan order: a plan with a `customer_id` belongs to it; otherwise to the customer
the first of its identifiers already known names (in the order the identifiers were sent); if
none is known, to a new customer named after its first identifier, ``name:value``. Every
identifier of the plan not known yet then names that customer, for the plans after it too (in
the same batch and later ones); an identifier known already keeps its customer.

A plan *ties* its customer to every other customer one of its identifiers names (`first_tie`):
those profiles merge into one (REF §5), once the plan is applied, so the identifier values they
share name one profile again.

Identifier values are compared as `normalise` leaves them (issue 11: ``E@X`` and ``e@x`` are
one user): this function is the one place that decides it, and plans carry identifiers so
normalised (`trackd.processor.plan`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

import msgspec

from trackd.models import Plan
from trackd.store.records import IdentifierKey, IdentifierRow

#: An identifier is an email when its name says so (MoEngage's standard `u_em`, or a name
#: holding "email"), a mobile number when its name is `u_mb`/`moe_mobile` or holds "mobile" or
#: "phone".
_MOBILE_NAMES = ("mobile", "phone", "u_mb")
_PHONE_SEPARATORS = re.compile(r"[\s().\-]")
_PHONE = re.compile(r"\+?[0-9]+")


def normalise(name: str, value: str) -> str:
    """The value an identifier is compared and stored as [trackd]: every value trimmed of
    surrounding white space; an email also case-folded (``" Ada@Example.COM "`` is
    ``ada@example.com``); a mobile number written with separators (spaces, dots, hyphens,
    parentheses) reduced to its digits and a leading ``+`` (``+1 (555) 010-0`` is ``+15550100``;
    a value with anything else in it is only trimmed)."""
    value = value.strip()
    lowered = name.lower()
    if "email" in lowered or lowered == "u_em":
        return value.casefold()
    if any(word in lowered for word in _MOBILE_NAMES):
        compact = _PHONE_SEPARATORS.sub("", value)
        if _PHONE.fullmatch(compact):
            return compact
    return value


def normalised(identifiers: dict[str, str] | None) -> dict[str, str] | None:
    """`identifiers` with every value `normalise`d (None stays None)."""
    if not identifiers:
        return identifiers
    return {name: normalise(name, value) for name, value in identifiers.items()}


def new_customer_id(name: str, value: str) -> str:
    """The customer id of a user first seen by this identifier alone."""
    return f"{name}:{value}"


def keys(plans: list[Plan]) -> list[IdentifierKey]:
    """The identifier values of `plans` to look up, each once, in order."""
    found: dict[IdentifierKey, None] = {}
    for plan in plans:
        if plan.identifiers:
            ws = plan.workspace_id
            for name, value in plan.identifiers.items():
                found[(ws, name, value)] = None
    return list(found)


def resolve(
    plans: list[Plan], owners: dict[IdentifierKey, str]
) -> tuple[list[Plan], list[IdentifierRow]]:
    """`plans` with the customer ids they belong to, and the new identifier rows, given the
    `owners` stored before the batch (`Batch.owners` of `keys(plans)`)."""
    added: list[IdentifierRow] = []
    out = []
    for plan, customer_id, _ in _walk(plans, dict(owners), added):
        if plan.identifiers:
            plan = msgspec.structs.replace(plan, customer_id=customer_id)
        out.append(plan)
    return out, added


class Tie(NamedTuple):
    """Plan `position` of a run belongs to `customer_id` and names, by these identifier values,
    these other customers (each once, by the first value naming it, in the order sent)."""

    position: int
    workspace_id: str
    customer_id: str
    others: list[tuple[str, IdentifierKey]]  # (customer id, the identifier value tying it)


def first_tie(plans: list[Plan], owners: dict[IdentifierKey, str]) -> Tie | None:
    """The first plan whose identifiers name a customer other than the plan's own (as `resolve`
    resolves them, given the same `owners`), or None."""
    for index, (plan, customer_id, others) in enumerate(_walk(plans, dict(owners), [])):
        if others and customer_id is not None:
            return Tie(index, plan.workspace_id, customer_id, others)
    return None


def _walk(
    plans: list[Plan], known: dict[IdentifierKey, str], added: list[IdentifierRow]
) -> Iterator[tuple[Plan, str | None, list[tuple[str, IdentifierKey]]]]:
    """Each plan with its customer and the other customers its identifiers name, assigning
    new identifier values to their plan's customer in `known` and `added` as it goes."""
    for plan in plans:
        if not plan.identifiers:
            yield plan, plan.customer_id, []
            continue
        customer_id = _owner(plan, known, added)
        others: dict[str, IdentifierKey] = {}
        ws = plan.workspace_id
        for name, value in plan.identifiers.items():
            owner = known[(ws, name, value)]
            if owner != customer_id and owner not in others:
                others[owner] = (ws, name, value)
        yield plan, customer_id, list(others.items())


def _owner(plan: Plan, known: dict[IdentifierKey, str], added: list[IdentifierRow]) -> str:
    ws, identifiers = plan.workspace_id, plan.identifiers or {}
    customer_id = plan.customer_id
    if customer_id is None:
        for name, value in identifiers.items():
            customer_id = known.get((ws, name, value))
            if customer_id is not None:
                break
    if customer_id is None:
        customer_id = new_customer_id(*next(iter(identifiers.items())))
    for name, value in identifiers.items():
        if (ws, name, value) not in known:
            known[(ws, name, value)] = customer_id
            added.append(IdentifierRow(ws, name, value, customer_id))
    return customer_id
