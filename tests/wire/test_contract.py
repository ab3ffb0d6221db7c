"""The contract's pre-encoded success body is byte for byte the encoded `success_body`."""

from __future__ import annotations

import string

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from trackd.wire import contract

URL_SAFE = string.ascii_letters + string.digits + "-_"


@given(st.text(alphabet=URL_SAFE, min_size=1, max_size=24))
def test_success_json_is_the_encoded_success_body(request_id: str) -> None:
    expected = msgspec.json.encode(contract.success_body(request_id, []))
    assert contract.success_json(request_id) == expected


def test_success_json_of_a_new_request_id() -> None:
    request_id = contract.new_request_id()
    assert msgspec.json.decode(contract.success_json(request_id)) == {
        "status": "success",
        "message": "Your request has been accepted and will be processed soon.",
        "request_id": request_id,
    }
