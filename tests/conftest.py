"""Fixtures of every suite: the anyio backend, `harness`, the app in process on the in-memory
adapters (tests/harness.py), and the drop of the session's PostgreSQL database
(tests/contracts/postgres_db.py), which the contract, store and scale-out suites share. Helpers
live in named modules: tests/factories.py (what the tests send), tests/services.py (which
services run), tests/clock.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.contracts import postgres_db
from tests.harness import Harness, started


@pytest.fixture(scope="session", autouse=True)
def _drop_postgres_database() -> Iterator[None]:
    yield
    postgres_db.drop_database()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with started(tmp_path) as h:
        yield h
