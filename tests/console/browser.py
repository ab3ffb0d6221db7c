"""The browser side of the console tests: Debian's chromium, where screenshots go, and a page
watched for what it should never do (the fixtures are in conftest.py)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import ConsoleMessage, Dialog, Page

CHROMIUM = "/usr/bin/chromium"
#: Kept by CI (.ci/run prints its path): one screenshot per view.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "console"


class Watched:
    """A page and what it did that it should not: dialogs, uncaught errors, console errors."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.on("console", self._console)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
