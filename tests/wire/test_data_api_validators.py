"""The validators of Delete User (`trackd/wire/delete.py`), Get User (`export.py`), GDPR erasure
(`gdpr.py`) and Test connection (`integration.py`): what each returns for a valid body, and the
contract error of the first failing check (exact bodies over HTTP: tests/edge/)."""

from __future__ import annotations

from typing import Any

import pytest

from trackd.errors import ContractError
from trackd.models import Erasure, UserDelete, UserLookup, Workspace
from trackd.wire.delete import validate_delete
from trackd.wire.export import validate_export
from trackd.wire.gdpr import validate_erasure
from trackd.wire.integration import validate_test_connection

WS = Workspace(id="WS1", name="Test", key_hash=None, delete_buffer=2)


def test_delete_takes_the_workspaces_buffer_and_costs_one() -> None:
    v = validate_delete({"identity_type": "moengage_id", "identity_value": "a" * 24}, WS, None, 0)
    assert v.delete == UserDelete(identity_type="moengage_id", identity_value="a" * 24,
                                  buffer_ms=2_000)  # fmt: skip
    assert (v.customer_id, v.event_count) == (None, 1)
    by_customer = validate_delete({"identity_type": "customer_id", "identity_value": "u"}, WS,
                                  None, 0)  # fmt: skip
    assert by_customer.customer_id == "u"


def test_export_keeps_identifiers_as_sent_and_costs_one_each() -> None:
    body = {"data": {"identifiers": [{"identifier_type": "id", "identifier": "u1"},
                                     {"identifier_type": "moengage_id", "identifier": "m"}],
                     "user_fields_to_export": ["plan"]}}  # fmt: skip
    v = validate_export(body, WS, None, 0)
    assert v.lookup == UserLookup(identifiers=[("id", "u1"), ("moengage_id", "m")],
                                  fields=["plan"])  # fmt: skip
    assert v.event_count == 2


def test_erasure_keeps_identities_and_submitted_time() -> None:
    body = {"request_type": "erasure", "submitted_time": "2018-10-05T15:00:00Z",
            "identities": [{"identity_type": "mobile", "identity_value": "+1"}]}  # fmt: skip
    v = validate_erasure(body, WS, None, 0)
    assert v.erasure == Erasure(identities=[("mobile", "+1")],
                                submitted_time="2018-10-05T15:00:00Z")  # fmt: skip


@pytest.mark.parametrize(
    ("validate", "payload", "message"),
    [
        (validate_delete, {"identity_value": "u"}, "identity_type is not found in the payload"),
        (validate_export, {"data": {}}, "identifiers is not found in the payload"),
        (validate_erasure, {"identities": []}, "request_type is not found in the payload"),
        (validate_test_connection, [], "A valid JSON document is required."),
    ],
)
def test_the_first_failing_check_is_the_contracts_400(
    validate: Any, payload: Any, message: str
) -> None:
    with pytest.raises(ContractError) as raised:
        validate(payload, WS, None, 0)
    assert (raised.value.status, raised.value.message) == (400, message)
