from __future__ import annotations

import pytest

from tests.factories import SEED_BODY
from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def test_seed_request_is_accepted_and_queued(harness: Harness) -> None:
    response = await harness.post(SEED_BODY)
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    assert response.json() == {
        "status": "success",
        "message": "Your request has been accepted and will be processed soon.",
        "request_id": request_id,
    }
    [envelope] = await harness.queued()
    assert envelope.request_id == request_id
    assert envelope.customer_id == "123"
    assert envelope.actions[0].platform == "ANDROID"
    assert envelope.client_ip == "198.51.100.7"
