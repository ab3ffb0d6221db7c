"""Validation of a Test connection body (`POST /v1/integrations/authentication`,
data-api.md §7, REF §6.8): ``{"app_id", "app_secret", "source", "region"}`` with the
`MOE-APPKEY` header. The credentials (`app_id` equal to the header, `app_secret` the workspace's
Data API key) are checked by the edge as rows 2-11 (`trackd.edge.track`), each failure a 401;
this validator only requires the body to be an object. `source` and `region` are accepted as
sent [trackd: trackd has one data centre]."""

from __future__ import annotations

from typing import Any

import msgspec

from trackd.models import Workspace
from trackd.wire import contract
from trackd.wire.event import Validated


class TestConnectionBody(msgspec.Struct):
    """Test connection's body (REF §6.8): the workspace and its Data API key, with the
    `MOE-APPKEY` header naming the same workspace."""

    app_id: str
    app_secret: str
    source: str | None = None
    region: str | None = None


def validate_test_connection(
    payload: Any, workspace: Workspace, project_code: str | None, received_ms: int
) -> Validated:
    if not isinstance(payload, dict):
        raise contract.not_an_object()
    return Validated(
        customer_id=None, device_id=None, user_identifiers=None, actions=[], warnings=[],
        event_count=0,
    )  # fmt: skip
