"""From an envelope to the `Plan` a store applies: pure, so reprocessing plans the same thing.

Event ids are ``{request_id}-{index}``: stable across redeliveries, so a store that has seen the
request id (or the event id) stores nothing twice.
"""

from __future__ import annotations

from trackd.models import Action, Envelope, EventRecord, IssueRecord, Plan
from trackd.wire.values import infer_type


def event_id(request_id: str, index: int) -> str:
    return f"{request_id}-{index}"


def plan(envelope: Envelope) -> Plan:
    events = [_record(envelope, action) for action in envelope.actions]
    kept = {action.index for action in envelope.actions}
    dropped = len({w.index for w in envelope.warnings if w.index not in kept})
    return Plan(
        request_id=envelope.request_id,
        workspace_id=envelope.workspace_id,
        kind=envelope.kind,
        customer_id=envelope.customer_id,
        identifiers=envelope.user_identifiers,
        device_id=envelope.device_id,
        received_at=envelope.received_at,
        client_ip=envelope.client_ip,
        events=events,
        schema=[obs for action in envelope.actions for obs in _observations(action)],
        issues=[
            IssueRecord(
                request_id=envelope.request_id,
                index=w.index,
                reason=w.reason,
                attribute=w.attribute,
                at=envelope.received_at,
            )
            for w in envelope.warnings
        ],
        dropped_events=dropped if envelope.kind == "event" else 0,
        user_attributes=envelope.user_attributes,
        update_existing_only=envelope.update_existing_only,
    )


def _record(envelope: Envelope, action: Action) -> EventRecord:
    return EventRecord(
        event_id=event_id(envelope.request_id, action.index),
        request_id=envelope.request_id,
        action=action.action,
        attributes=action.attributes,
        platform=action.platform,
        platform_raw=action.platform_raw,
        app_version=action.app_version,
        user_time=action.user_time,
        current_time=action.current_time,
        user_timezone_offset=action.user_timezone_offset,
        received_at=envelope.received_at,
        client_ip=envelope.client_ip,
        device_id=envelope.device_id,
        project_code=envelope.project_code,
        moe_os_type=action.moe_os_type,
    )


def _observations(action: Action) -> list[tuple[str, str, str]]:
    """The event itself (attribute "") and every attribute with its inferred type."""
    return [(action.action, "", "event")] + [
        (action.action, name, infer_type(value)) for name, value in action.attributes.items()
    ]
