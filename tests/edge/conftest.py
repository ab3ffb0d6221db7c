"""Fixtures of the edge tests (the `harness` fixture is in tests/conftest.py, its class in
tests/harness.py)."""

from __future__ import annotations

import pytest

from tests.harness import Harness

# the helpers assert what the tests expect: rewritten, a failure shows both sides
pytest.register_assert_rewrite("tests.edge.answers")


@pytest.fixture
async def inspecting(harness: Harness) -> None:
    """Read the queue once before any request: the inspecting consumer then holds position 0,
    so the embedded processor's acknowledgements never reclaim what a test has yet to see.

    A module that reads the queue takes it for every test with
    ``pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("inspecting")]``."""
    assert await harness.queued() == []
