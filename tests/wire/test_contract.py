"""The contract's pre-encoded success body is byte for byte the encoded `success_body`, and the
documented answers (`ErrorBody`, `SuccessBody`, `MergeSuccessBody`) are the bodies built."""

from __future__ import annotations

import string

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from trackd.errors import ContractError
from trackd.models import Warning
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


# The documented answers (/openapi.json) describe the bodies built: decoded by their Struct, a
# body re-encodes to itself, so no field is missing, extra or of another type.

warnings = st.lists(
    st.builds(
        Warning,
        st.integers(0, 1000),
        st.text(max_size=20),
        st.none() | st.text(max_size=20),
        st.none() | st.text(max_size=10),
        st.none() | st.text(max_size=20),
    ),
    max_size=3,
)


def _round_trip(raw: bytes, shape: type) -> None:
    decoded = msgspec.json.decode(raw, type=shape)
    assert msgspec.json.decode(msgspec.json.encode(decoded)) == msgspec.json.decode(raw)


@given(st.text(alphabet=URL_SAFE, min_size=1, max_size=24), warnings)
def test_success_bodies_are_what_success_body_documents(request_id: str, warned: list) -> None:
    _round_trip(
        msgspec.json.encode(contract.success_body(request_id, warned)), contract.SuccessBody
    )
    _round_trip(contract.success_json(request_id), contract.SuccessBody)
    _round_trip(contract.merge_success_json(request_id, []), contract.MergeSuccessBody)


@given(
    st.text(alphabet=URL_SAFE, min_size=1, max_size=24),
    st.sampled_from([contract.payload_too_large(), contract.not_found("customer_id")]),
)
def test_error_bodies_are_what_error_body_documents(request_id: str, exc: ContractError) -> None:
    _round_trip(msgspec.json.encode(contract.error_body(exc, request_id)), contract.ErrorBody)
