"""The web console's static files (trackd/edge/console.py): `/` and `/console` redirect, each file
with its content type, ETag and security headers, a 304 on a matching If-None-Match, and a 404
(with the same headers) for any name that is not one of the package's files: `..`, `%2e%2e`,
backslashes, encoded slashes. The files are package data: importlib.resources finds each, and
pyproject's package-data globs cover each (so the wheel carries them)."""

from __future__ import annotations

import fnmatch
import json
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Harness
from trackd.edge.console import CSP, Console, load_files

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "trackd" / "edge" / "console_static"
SECURITY = {
    "content-security-policy": CSP.decode(),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
EXPECTED_CSP = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; object-src 'none'; "
    "frame-ancestors 'none'"
)


async def call(
    console: Console,
    path: str,
    *,
    raw: bytes | None = None,
    method: str = "GET",
    headers: list[tuple[bytes, bytes]] = [],  # noqa: B006
) -> tuple[int, dict[str, str], bytes]:
    """The console's answer to a request with exactly this path (and raw path): no client in
    between to normalise it."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": raw if raw is not None else path.encode(),
        "query_string": b"",
        "headers": headers,
    }
    await console(scope, receive, send)
    start, body = sent
    answer = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], answer, body["body"]


def static_files() -> list[str]:
    return sorted(str(p.relative_to(STATIC)) for p in STATIC.rglob("*") if p.is_file())


def test_the_csp_is_the_strict_one_of_the_issue() -> None:
    assert CSP.decode() == EXPECTED_CSP


def test_importlib_resources_finds_every_file_and_pyproject_ships_each() -> None:
    names = static_files()
    assert {"index.html", "app.js", "dom.js", "api.js", "chart.js", "console.css"} <= set(names)
    assert {
        f"views/{v}.js" for v in ("overview", "live", "requests", "issues", "schema", "users")
    } <= set(names)
    root = files("trackd.edge").joinpath("console_static")
    for name in names:
        assert root.joinpath(name).read_bytes() == (STATIC / name).read_bytes()
    assert sorted(load_files()) == names
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["trackd.edge"]
    unshipped = [
        n for n in names if not any(fnmatch.fnmatch(f"console_static/{n}", g) for g in globs)
    ]
    assert unshipped == []


def test_no_file_of_the_console_writes_markup_or_inline_code() -> None:
    """The console builds the DOM with dom.js only: no innerHTML, no eval, no inline handlers
    or styles (the CSP would refuse them anyway)."""
    for name in static_files():
        text = (STATIC / name).read_text().replace("http://www.w3.org/2000/svg", "")  # SVG's xmlns
        for needle in (
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            "style=",
            " onclick",
            " onload",
            "<script>",
            "http://",
            "https://",
        ):
            assert needle not in text, f"{name} holds {needle!r}"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("", "text/html; charset=utf-8"),
        ("index.html", "text/html; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("views/live.js", "text/javascript; charset=utf-8"),
        ("console.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
async def test_each_file_with_its_type_etag_and_security_headers(
    name: str, content_type: str
) -> None:
    console = Console()
    status, headers, body = await call(console, f"/console/{name}")
    assert status == 200
    assert body == (STATIC / (name or "index.html")).read_bytes()
    assert headers["content-type"] == content_type
    assert headers["content-length"] == str(len(body))
    assert headers["cache-control"] == "no-cache"
    assert {k: headers[k] for k in SECURITY} == SECURITY
    etag = headers["etag"]
    status, again, body = await call(
        console, f"/console/{name}", headers=[(b"if-none-match", etag.encode())]
    )
    assert (status, body, again["etag"]) == (304, b"", etag)
    status, _, body = await call(
        console, f"/console/{name}", headers=[(b"if-none-match", b'"other"')]
    )
    assert status == 200 and body
    status, head, body = await call(console, f"/console/{name}", method="HEAD")
    assert (status, body, head["content-length"]) == (200, b"", headers["content-length"])


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/console/nope.js", b"/console/nope.js"),
        ("/console/views/", b"/console/views/"),
        ("/console/../app.py", b"/console/../app.py"),
        ("/console/views/../app.js", b"/console/views/../app.js"),
        ("/console/../console.py", b"/console/%2e%2e/console.py"),
        ("/console/../console.py", b"/console/%2E%2E/console.py"),
        ("/console/views/../../app.py", b"/console/views%2f..%2f..%2fapp.py"),
        ("/console/..\\console.py", b"/console/..\\console.py"),
        ("/console/..\\console.py", b"/console/..%5cconsole.py"),
        ("/console/views\\live.js", b"/console/views\\live.js"),
        ("/console//etc/passwd", b"/console//etc/passwd"),
        ("/console/./app.js", b"/console/./app.js"),
        ("/console/app.js\x00.html", b"/console/app.js%00.html"),
        ("/console/%61pp.js", b"/console/%2561pp.js"),
    ],
)
async def test_any_other_name_is_a_404_with_the_security_headers(path: str, raw: bytes) -> None:
    status, headers, body = await call(Console(), path, raw=raw)
    assert status == 404
    assert json.loads(body)["error"]["type"] == "NotFound"
    assert headers["content-type"] == "application/json"
    assert {k: headers[k] for k in SECURITY} == SECURITY


async def test_a_post_is_a_405() -> None:
    status, headers, _ = await call(Console(), "/console/", method="POST")
    assert (status, headers["allow"]) == (405, "GET, HEAD")


async def test_the_app_redirects_the_root_and_serves_the_console(harness: Harness) -> None:
    for path in ("/", "/console"):
        response = await harness.client.get(path)
        assert (response.status_code, response.headers["location"]) == (302, "/console/")
    response = await harness.client.get("/console/")
    assert response.status_code == 200
    assert response.text == (STATIC / "index.html").read_text()
    assert response.headers["content-security-policy"] == EXPECTED_CSP
    assert (await harness.client.get("/consoles")).status_code == 404
    assert (await harness.client.get("/api/workspaces/WS1/stats")).status_code == 401
