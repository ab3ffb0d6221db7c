"""Fixtures of the e2e suites: `trackd`, a launcher of real servers on one data dir, and
`server`, one server for a module (tests/e2e/server.py holds both kinds)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import Launcher, TrackdProcess


@pytest.fixture
def trackd(tmp_path: Path) -> Iterator[Launcher]:
    """``trackd.start(workers=N)`` starts a server on ``trackd.data_dir`` (the same each call)."""
    launcher = Launcher(tmp_path)
    try:
        yield launcher
    finally:
        launcher.close()


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TrackdProcess]:
    """One server for the module, on a data dir named after it; every test makes its own
    workspace on it. A module may override it (test_live_admin.py starts one per worker count)."""
    launcher = Launcher(tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2]))
    try:
        yield launcher.start()
    finally:
        launcher.close()
