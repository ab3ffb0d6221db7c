"""Identity Resolution: which customer an envelope's `user_identifiers` belong to.

The rule, in plan order: a plan with a `customer_id` belongs to it; otherwise to the customer
the first of its identifiers already known names (in the order the identifiers were sent); if
none is known, to a new customer named after its first identifier, ``name:value``. Every
identifier of the plan not known yet then names that customer, for the plans after it too (in
the same batch and later ones); an identifier known already keeps its customer.
"""

from __future__ import annotations

import msgspec

from trackd.models import Plan
from trackd.store.records import IdentifierKey, IdentifierRow


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
    known = dict(owners)
    added: list[IdentifierRow] = []
    out = []
    for plan in plans:
        if plan.identifiers:
            plan = msgspec.structs.replace(plan, customer_id=_owner(plan, known, added))
        out.append(plan)
    return out, added


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
