"""Fixtures of the browser tests: one real `trackd serve` for the module, Debian's chromium
driven by playwright, and a page that fails the test on any dialog, page error or console error
(a script that should not have run)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.console.browser import CHROMIUM, Watched
from tests.e2e.server import Launcher, TrackdProcess


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TrackdProcess]:
    launcher = Launcher(tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2]))
    try:
        yield launcher.start()
    finally:
        launcher.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update"],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1360, "height": 860})
    try:
        yield Watched(context.new_page())
    finally:
        context.close()
