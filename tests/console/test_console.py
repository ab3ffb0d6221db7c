"""The web console in a real browser (Debian's chromium, driven by playwright) against the real
`trackd serve` (issue 13): sign-in, Live within 2 s, a 400 in Requests with its message and body,
Schema, Issues, Users and Overview showing what was sent, a wrong key (or another workspace's key)
refused, and hostile names and values shown literally with no script run. Each view's screenshot
goes to test-output/console/."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.console.browser import Watched
from tests.e2e.helpers import cli_json
from tests.e2e.server import Launcher, TrackdProcess
from tests.factories import basic

pytestmark = [pytest.mark.e2e]

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "</script><script>alert(2)</script>"
JS_URL = "javascript:alert(3)"


class Workspace:
    def __init__(self, server: TrackdProcess) -> None:
        created = cli_json(server.data_dir, "workspace", "create")
        self.id: str = created["workspace_id"]
        self.key: str = created["api_key"]
        self.client = httpx.Client(base_url=server.url, timeout=30)
        self.url = server.url
        deadline = time.monotonic() + 30
        while self.get("stats").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)

    def headers(self) -> dict[str, str]:
        return {"Authorization": basic(self.id, self.key), "Content-Type": "application/json"}

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(
            f"/api/workspaces/{self.id}/{path}", params=params, headers=self.headers()
        )

    def post(self, endpoint: str, body: Any) -> httpx.Response:
        return self.client.post(f"/v1/{endpoint}/{self.id}", json=body, headers=self.headers())

    def event(self, action: str, customer_id: str = "c-1", **attributes: Any) -> None:
        body = {
            "type": "event",
            "customer_id": customer_id,
            "actions": [{"action": action, "attributes": attributes}],
        }
        response = self.post("event", body)
        assert response.status_code == 200, response.text

    def logged(self, requests: int) -> None:
        deadline = time.monotonic() + 30
        while len(self.get("requests").json()["requests"]) < requests:
            if time.monotonic() > deadline:
                pytest.fail(f"the request log did not show {requests} requests in time")
            time.sleep(0.05)

    def settled(self, events: int) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.get("stats").json()["processed_events"] >= events:
                return
            time.sleep(0.05)
        pytest.fail(f"the processor did not store {events} events in time")


@pytest.fixture
def workspace(server: TrackdProcess) -> Iterator[Callable[[], Workspace]]:
    """Makes workspaces on the module's server (their HTTP clients closed at the end)."""
    made: list[Workspace] = []

    def make() -> Workspace:
        made.append(Workspace(server))
        return made[-1]

    try:
        yield make
    finally:
        for ws in made:
            ws.client.close()


def sign_in(page: Page, ws: Workspace, key: str | None = None, view: str = "") -> None:
    page.goto(f"{ws.url}/console/" + (f"#/{view}" if view else ""))
    page.fill("#workspace", ws.id)
    page.fill("#secret", key if key is not None else ws.key)
    page.click("button[type=submit]")


def signed_in(page: Page, ws: Workspace, view: str = "overview") -> None:
    sign_in(page, ws, view=view)
    expect(page.locator("header .workspace")).to_have_text(ws.id)
    expect(page.locator(f"#view-{view}")).to_be_visible()


def test_the_root_redirects_to_the_console_and_it_signs_in(
    server: TrackdProcess, watched: Watched, workspace: Callable[[], Workspace]
) -> None:
    ws = workspace()
    page = watched.page
    page.goto(server.url + "/")
    assert page.url == server.url + "/console/"
    expect(page.locator("form.signin h1")).to_have_text("trackd console")
    watched.screenshot("signin")
    sign_in(page, ws)
    expect(page.locator("header .workspace")).to_have_text(ws.id)
    expect(page.locator("nav.tabs a")).to_have_text(
        ["Overview", "Live", "Requests", "Issues", "Schema", "Users"]
    )
    assert page.evaluate("document.cookie") == ""
    assert ws.key in page.evaluate("sessionStorage.getItem('trackd.console.session')")
    page.reload()  # the tab's session survives a reload
    expect(page.locator("header .workspace")).to_have_text(ws.id)
    page.click("#signout")
    expect(page.locator("form.signin")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    assert (watched.dialogs, watched.errors) == ([], [])


def test_a_wrong_key_or_another_workspaces_key_cannot_sign_in(
    server: TrackdProcess, watched: Watched, workspace: Callable[[], Workspace]
) -> None:
    ws, other = workspace(), workspace()
    page = watched.page
    sign_in(page, ws, key="not-the-key")
    expect(page.locator("#signin-error")).to_contain_text("Sign-in failed")
    watched.screenshot("signin-refused")
    assert page.locator("header .workspace").count() == 0
    assert page.evaluate("sessionStorage.length") == 0
    sign_in(page, ws, key=other.key)  # the other workspace's key, for this workspace
    expect(page.locator("#signin-error")).to_contain_text("Sign-in failed")
    assert page.evaluate("sessionStorage.length") == 0
    # the read API is what refuses: one workspace's key reads nothing of another's
    for path in ("stats", "events", "requests", "activity", "schema", "issues", "live"):
        response = other.client.get(
            f"/api/workspaces/{ws.id}/{path}",
            headers={"Authorization": basic(other.id, other.key)},
        )
        assert response.status_code == 403, (path, response.text)
    assert watched.dialogs == []


def test_events_sent_over_http_appear_in_live_within_two_seconds(
    server: TrackdProcess, watched: Watched, workspace: Callable[[], Workspace]
) -> None:
    ws = workspace()
    page = watched.page
    signed_in(page, ws, "live")
    expect(page.locator("#live-state")).to_have_text("● live")
    started = time.monotonic()
    ws.event("Checkout", customer_id="c-live", total=42, moe_bad=1)
    rows = page.locator("#live-rows tr.event-row")
    expect(rows).to_have_count(1, timeout=2000)
    assert time.monotonic() - started < 2
    expect(rows.first).to_contain_text("Checkout")
    expect(rows.first).to_contain_text("c-live")
    rows.first.click()
    detail = page.locator("aside.detail")
    expect(detail).to_contain_text("reserved_prefix")
    expect(detail.locator("pre")).to_contain_text('"total": 42')
    watched.screenshot("live")

    page.click("#live-pause")
    ws.event("WhilePaused", customer_id="c-live")
    expect(page.locator("#live-waiting")).to_have_text("1 new while paused", timeout=2000)
    expect(rows).to_have_count(1)
    page.click("#live-pause")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("WhilePaused")

    page.fill("#live-action", "Wanted")
    page.press("#live-action", "Enter")
    expect(page.locator("#live-state")).to_have_text("● live")
    ws.event("Unwanted", customer_id="c-live")
    ws.event("Wanted", customer_id="c-live")
    expect(rows).to_have_count(1, timeout=2000)
    expect(rows.first).to_contain_text("Wanted")
    assert (watched.dialogs, watched.errors) == ([], [])


def test_a_400_appears_in_requests_with_its_message_and_body(
    server: TrackdProcess, watched: Watched, workspace: Callable[[], Workspace]
) -> None:
    ws = workspace()
    ws.event("Fine")
    bad = '{"type": "event", "customer_id": "c-bad", "actions": [{"attributes": {"x": 1}}]}'
    response = ws.client.post(f"/v1/event/{ws.id}", content=bad, headers=ws.headers())
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    ws.logged(2)  # the request log is flushed in batches, off the hot path
    page = watched.page
    signed_in(page, ws, "requests")
    rows = page.locator("#requests-rows tr.request-row")
    expect(rows).to_have_count(2, timeout=5000)
    expect(rows.first).to_contain_text("400")
    expect(rows.first).to_contain_text(message)
    expect(rows.nth(1)).to_contain_text("200")
    rows.first.click()
    expect(page.locator("#request-error-body")).to_contain_text(f'"message": "{message}"')
    expect(page.locator("#request-error-body")).to_contain_text(response.headers["x-request-id"])
    expect(page.locator("#request-body")).to_contain_text('"customer_id": "c-bad"')
    expect(page.locator("aside.detail")).to_contain_text("[redacted]")
    expect(page.locator("aside.detail")).not_to_contain_text(ws.key)
    watched.screenshot("requests")
    page.select_option("#requests-status", "2xx")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("200")
    assert watched.dialogs == []


def test_schema_issues_users_and_overview_show_what_was_sent(
    server: TrackdProcess, watched: Watched, workspace: Callable[[], Workspace]
) -> None:
    ws = workspace()
    customer = {
        "type": "customer",
        "customer_id": "c-7",
        "attributes": {"name": "Ada", "plan": "pro"},
    }
    assert ws.post("customer", customer).status_code == 200
    for n in range(3):
        ws.event("Bought", customer_id="c-7", price=10 + n, moe_secret="x")
    ws.event("Bought", customer_id="c-7", price="twelve")  # a mixed type
    ws.event("Viewed", customer_id="c-8", page="/home")
    assert (
        ws.client.post(f"/v1/event/{ws.id}", content=b"{", headers=ws.headers()).status_code == 400
    )
    ws.settled(5)
    ws.logged(6)  # /activity counts from the request log, flushed in batches
    page = watched.page

    signed_in(page, ws, "overview")
    expect(page.locator("#card-accepted .card-value")).to_have_text("5")
    expect(page.locator("#card-rejected .card-value")).to_have_text("1")
    expect(page.locator("svg.chart polyline")).to_have_count(2)
    expect(page.locator("svg.chart text.tick").first).to_be_visible()
    expect(page.locator("meter")).not_to_have_count(0)
    watched.screenshot("overview")

    page.click("nav a[href='#/schema']")
    table = page.locator("#schema-table")
    expect(table.locator("tr.event-name")).to_have_count(2)
    bought = table.locator("tr.event-name", has_text="Bought")
    expect(bought).to_contain_text("4")
    expect(table.locator("tr.mixed")).to_have_count(1)
    expect(table.locator("tr.mixed")).to_contain_text("price")
    expect(table.locator("tr.mixed")).to_contain_text("number \u00d7 3")
    expect(table.locator("tr.mixed")).to_contain_text("string \u00d7 1")
    watched.screenshot("schema")

    page.click("nav a[href='#/issues']")
    summary = page.locator("#issues-summary")
    expect(summary).to_contain_text("reserved_prefix")
    expect(summary.locator("tbody tr").first.locator("td.num")).to_have_text("3")
    expect(page.locator("#issues-groups")).to_contain_text("moe_secret")
    watched.screenshot("issues")

    page.click("nav a[href='#/users']")
    page.fill("#users-id", "c-7")
    page.press("#users-id", "Enter")
    profile = page.locator("#users-profile")
    expect(profile).to_contain_text("Ada")
    expect(profile).to_contain_text("pro")
    expect(page.locator("#users-events tr.event-row")).to_have_count(4)
    expect(page.locator("#users-events tr.event-row").first).to_contain_text("twelve")
    watched.screenshot("users")
    assert (watched.dialogs, watched.errors) == ([], [])


def test_hostile_names_and_values_show_literally_and_run_no_script(
    server: TrackdProcess, watched: Watched, workspace: Callable[[], Workspace]
) -> None:
    ws = workspace()
    page = watched.page
    signed_in(page, ws, "live")
    expect(page.locator("#live-state")).to_have_text("● live")
    hostile_customer = f"c{IMG}"
    attributes = {IMG: SCRIPT, "link": JS_URL, SCRIPT: IMG}
    ws.event(IMG, customer_id=hostile_customer, **attributes)
    ws.event(SCRIPT, customer_id=hostile_customer, url=JS_URL)
    bad = {"type": "event", "customer_id": SCRIPT, "actions": [{"attributes": {IMG: JS_URL}}]}
    assert ws.post("event", bad).status_code == 400
    rows = page.locator("#live-rows tr.event-row")
    expect(rows).to_have_count(2, timeout=2000)
    expect(rows.nth(1).locator("td.strong")).to_have_text(IMG)
    expect(rows.first.locator("td.strong")).to_have_text(SCRIPT)
    rows.nth(1).click()
    expect(page.locator("aside.detail h3")).to_have_text(IMG)
    expect(page.locator("aside.detail pre")).to_contain_text(JS_URL)
    watched.screenshot("hostile-live")
    ws.settled(2)
    ws.logged(3)

    page.click("nav a[href='#/schema']")
    schema = page.locator("#schema-table")
    expect(schema.locator("tr.event-name td.strong")).to_have_text(sorted([IMG, SCRIPT]))
    expect(schema.locator("tr.attribute td.indent", has_text=SCRIPT)).to_have_count(1)

    page.click("nav a[href='#/requests']")
    page.locator("#requests-rows tr.request-row").first.click()
    expect(page.locator("#request-body")).to_contain_text(SCRIPT)
    expect(page.locator("#request-body")).to_contain_text(JS_URL)
    watched.screenshot("hostile-requests")

    page.click("nav a[href='#/users']")
    page.fill("#users-id", hostile_customer)
    page.press("#users-id", "Enter")
    expect(page.locator("#users-profile h3").first).to_have_text(hostile_customer)
    expect(page.locator("#users-events")).to_contain_text(JS_URL)
    watched.screenshot("hostile-users")

    # nothing of it became markup: no <img>, no script but the console's own, no javascript: link
    assert page.locator("img").count() == 0
    assert page.evaluate("[...document.scripts].map(s => s.src)") == [
        f"{server.url}/console/app.js"
    ]
    assert page.locator("a[href^='javascript']").count() == 0
    assert re.search(r"alert\(\d\)", page.locator("#users-profile").inner_text())
    assert (watched.dialogs, watched.errors) == ([], [])


def test_the_admin_token_signs_in_to_any_workspace_and_a_wrong_one_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, watched: Watched
) -> None:
    token = "console-admin-token-0123456789"
    monkeypatch.setenv("TRACKD_ADMIN_TOKEN", token)
    launcher = Launcher(tmp_path)
    try:
        server = launcher.start()
        ws = Workspace(server)
        try:
            ws.event("ByAdmin", customer_id="c-admin")
            ws.settled(1)
            page = watched.page
            page.goto(f"{server.url}/console/#/schema")
            page.fill("#workspace", ws.id)
            page.check("#kind-admin")
            page.fill("#secret", token[:-1])
            page.click("button[type=submit]")
            expect(page.locator("#signin-error")).to_contain_text("Sign-in failed")
            page.fill("#secret", token)
            page.click("button[type=submit]")
            expect(page.locator("header .badge")).to_have_text("admin")
            expect(page.locator("#schema-table")).to_contain_text("ByAdmin")
            watched.screenshot("admin-schema")
            assert watched.dialogs == []
        finally:
            ws.client.close()
    finally:
        launcher.close()
