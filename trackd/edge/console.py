"""The web console's static files (issue 13 item 3), served under `/console/` from the package.

The files live in `trackd/edge/console_static/` and ship in the wheel as package data (no
build step: plain ES modules, docs/console.md). They are read once, when the app is made, into
a table keyed by their path: a request is answered only with a name in that table, so nothing
outside the folder can be named (`..`, `%2e%2e`, backslashes and the like are simply unknown
names, 404). Every answer under `/console/` carries the security headers of `SECURITY_HEADERS`:
the console shows data that clients sent, and the browser is told to run only its own files.
"""

from __future__ import annotations

import hashlib
from importlib.resources import files
from importlib.resources.abc import Traversable

from trackd.edge.http import Receive, Scope, Send, encode, header_map
from trackd.errors import ContractError
from trackd.wire import contract

PREFIX = "/console/"
#: No inline script or style, nothing from elsewhere, no framing, no <base>, no plugins.
CSP = (
    b"default-src 'self'; base-uri 'none'; form-action 'self'; object-src 'none'; "
    b"frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
#: Revalidated on every load (the names carry no hash): a 304 when the ETag still matches.
CACHE_CONTROL = (b"cache-control", b"no-cache")
TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".json": b"application/json",
}


class StaticFile:
    __slots__ = ("body", "content_type", "etag")

    def __init__(self, body: bytes, content_type: bytes) -> None:
        self.body = body
        self.content_type = content_type
        self.etag = b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'


def load_files(root: Traversable | None = None) -> dict[str, StaticFile]:
    """Every file of the console by its path under `/console/` ("index.html", "views/live.js"),
    only of the types in `TYPES`."""
    root = root if root is not None else files("trackd.edge").joinpath("console_static")
    found: dict[str, StaticFile] = {}

    def walk(folder: Traversable, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
                continue
            suffix = entry.name[entry.name.rfind(".") :] if "." in entry.name else ""
            if suffix in TYPES:
                found[prefix + entry.name] = StaticFile(entry.read_bytes(), TYPES[suffix])

    walk(root, "")
    return found


class Console:
    """`GET /` and `/console` redirect to `/console/`; `/console/NAME` is the file NAME."""

    def __init__(self, static: dict[str, StaticFile] | None = None) -> None:
        self.files = static if static is not None else load_files()

    @staticmethod
    def handles(path: str) -> bool:
        return path in ("/", "/console") or path.startswith(PREFIX)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if method not in ("GET", "HEAD"):
            await _error(send, contract.method_not_allowed(), [(b"allow", b"GET, HEAD")])
            return
        if path in ("/", "/console"):
            await _send(send, 302, b"", [(b"location", PREFIX.encode())], method)
            return
        name = _name(scope)
        static = self.files.get(name or "index.html") if name is not None else None
        if static is None:
            await _error(send, contract.not_found_route())
            return
        headers = [(b"etag", static.etag), CACHE_CONTROL]
        if static.etag in _etags(header_map(scope).get(b"if-none-match")):
            await _send(send, 304, b"", headers, method)
            return
        await _send(
            send, 200, static.body, [(b"content-type", static.content_type), *headers], method
        )


def _name(scope: Scope) -> str | None:
    """The file name asked for, from the raw path, or None for anything but plain segments:
    an encoded character, a backslash, an empty, `.` or `..` segment is never a file's name."""
    raw: bytes = scope.get("raw_path") or str(scope["path"]).encode()
    raw = raw.split(b"?", 1)[0]
    if not raw.startswith(PREFIX.encode()):
        return None
    text = raw[len(PREFIX) :].decode("latin-1")
    if text == "":
        return ""
    if "%" in text or "\\" in text or "\x00" in text:
        return None
    if any(part in ("", ".", "..") for part in text.split("/")):
        return None
    return text


def _etags(header: bytes | None) -> list[bytes]:
    if not header:
        return []
    return [tag.strip().removeprefix(b"W/") for tag in header.split(b",")]


async def _send(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]], method: str = "GET"
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *headers,
                (b"content-length", str(len(body)).encode()),
                *SECURITY_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


async def _error(
    send: Send,
    exc: ContractError,
    headers: list[tuple[bytes, bytes]] = [],  # noqa: B006
) -> None:
    request_id = contract.new_request_id()
    body = encode(contract.error_body(exc, request_id))
    await _send(
        send,
        exc.status,
        body,
        [(b"content-type", b"application/json"), (b"x-request-id", request_id.encode()), *headers],
    )
