"""Fixtures of every suite: the anyio backend, and `harness`, the app in process on the
in-memory adapters (tests/harness.py). Helpers live in named modules: tests/factories.py (what
the tests send), tests/services.py (which services run), tests/clock.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.harness import Harness, started


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with started(tmp_path) as h:
        yield h
