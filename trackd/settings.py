"""The one frozen Settings object, built once at the edge (the CLI) from flags and env vars.

Nothing below the CLI reads ``os.environ``: settings are passed down explicitly. `Settings.load`
validates every value it is given against the field's type (msgspec, from the annotations
below); a bad one is a `ConfigError` of one line naming the flag or variable it came from, the
value, and what the field accepts. The constructor trusts its arguments (code, checked by mypy).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import msgspec

from trackd.errors import ConfigError

ENV_PREFIX = "TRACKD_"
#: The variable through which `trackd serve --workers N` hands its settings to each worker.
SETTINGS_ENV = "TRACKD_SETTINGS_JSON"

LogLevel = Literal["debug", "info", "warning", "error"]
ProcessorMode = Literal["process", "inline", "off"]
#: The URL schemes each backend registry opens (`trackd.queue`, `trackd.store`, `trackd.limiter`).
QUEUE_SCHEMES = ("sqlite", "memory", "nats")
STORE_SCHEMES = ("sqlite", "memory", "postgresql", "postgres")
LIMITER_SCHEMES = ("memory", "sqlite", "redis", "rediss")


def _url(schemes: tuple[str, ...], default: str) -> msgspec.Meta:
    """A backend URL of one of `schemes`, or empty for `default`."""
    *first, last = (f"{scheme}://" for scheme in schemes)
    return msgspec.Meta(
        pattern=rf"\A(?:\Z|(?:{'|'.join(schemes)})://)",
        description=f"a {', '.join(first)} or {last} URL, or empty for {default}",
    )


Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Count = Annotated[int, msgspec.Meta(ge=1)]
#: Seconds that must pass for something to happen at all; a day at most (and so never inf).
Seconds = Annotated[float, msgspec.Meta(gt=0, le=86400)]
#: Seconds that may be zero (nothing waited for, nothing held).
Wait = Annotated[float, msgspec.Meta(ge=0, le=86400)]
QueueURL = Annotated[str, _url(QUEUE_SCHEMES, "the embedded SQLite queue")]
StoreURL = Annotated[str, _url(STORE_SCHEMES, "the embedded SQLite store")]
LimiterURL = Annotated[
    str, _url(LIMITER_SCHEMES, "memory:// (a shared SQLite file with --workers)")
]


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: Port = 8080
    data_dir: str = "./trackd-data"
    workers: Count = 1
    #: Backend URLs; empty means the embedded default inside ``data_dir``.
    queue: QueueURL = ""
    store: StoreURL = ""
    limiter: LimiterURL = ""
    log_level: LogLevel = "info"
    #: Largest body, declared, read or inflated (contract row 1).
    max_body_bytes: Count = 131072
    #: Requests waiting for a group commit beyond which the edge answers 503 at once.
    max_pending_writes: Count = 20000
    #: Admission control (`trackd.edge.admission`), per process: a Track request is answered
    #: 503 at once while as many requests, their bodies received, wait for their answer as the
    #: process answers in `max_wait_seconds` at its recent peak (at least 64, at most
    #: `max_in_flight_requests`); `/readyz` is 503 meanwhile and for `shed_hold_seconds` after
    #: the last such refusal.
    max_wait_seconds: Seconds = 0.5
    max_in_flight_requests: Count = 2048
    shed_hold_seconds: Wait = 2.0
    #: How often every process looks for workspace and key changes, in seconds.
    registry_refresh_seconds: Seconds = 0.25
    #: How long an Idempotency-Key is remembered, in seconds.
    idempotency_ttl_seconds: Count = 86400
    #: Seconds SIGTERM waits for in-flight requests before closing them.
    graceful_timeout_seconds: Wait = 10.0
    #: Bearer token that reads every workspace through `/api` (empty: none).
    admin_token: str = ""
    #: Where `serve` runs the embedded processor: "process" (a `trackd worker` child process,
    #: so the edge and the processor each get a core: measured in BENCHMARKS.md), "inline"
    #: (in the edge's own event loop: one process, for tests), or "off".
    processor: ProcessorMode = "process"
    #: Seconds a client has to send a request's line and headers, then its whole body; past
    #: either the connection is closed (slow clients, `trackd.edge.protocol`).
    header_timeout_seconds: Seconds = 10.0
    body_timeout_seconds: Seconds = 30.0
    # -- Request log (issue 13 item 1) --
    #: The last requests kept per workspace in the request log (`GET /api/workspaces/{ws}/
    #: requests`); 0 records none.
    request_log_size: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 1000
    #: Entries each edge process holds before writing them; past it the oldest are dropped and
    #: counted (`trackd_request_log_dropped_total`).
    request_log_buffer: Count = 10000

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    def queue_url(self) -> str:
        return self.queue or f"sqlite:///{self.data_path.resolve() / 'queue.db'}"

    def store_url(self) -> str:
        return self.store or f"sqlite:///{self.data_path.resolve() / 'trackd.db'}"

    def limiter_url(self) -> str:
        """In-process when one process serves; a shared file when several do."""
        if self.limiter:
            return self.limiter
        if self.workers > 1:
            return f"sqlite:///{self.data_path.resolve() / 'limits.db'}"
        return "memory://"

    def embedded_processor(self) -> bool:
        """`serve` processes too unless the queue is a shared engine served by `trackd worker`."""
        return self.queue_url().split("://", 1)[0] in ("sqlite", "memory")

    @classmethod
    def load(cls, flags: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
        """Flags win over ``TRACKD_*`` env vars, which win over the defaults; every value given
        is converted from its text and checked (`ConfigError`: one line, see the module)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, field in _FIELDS.items():
            if flags.get(name) is not None:
                source, raw = f"--{name.replace('_', '-')} {flags[name]!r}", flags[name]
            elif (text := env.get(env_name(name))) is not None:
                source, raw = f"{env_name(name)}={text!r}", text
            else:
                continue
            if name == "log_level" and isinstance(raw, str):
                raw = raw.lower()  # INFO as well as info, as logging itself takes them
            try:
                values[name] = msgspec.convert(raw, field, strict=False)
            except msgspec.ValidationError:
                raise ConfigError(f"{source}: expected {accepts(name)}") from None
        return cls(**values)

    def to_json(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Settings:
        return msgspec.json.decode(raw, type=cls)


def env_name(field: str) -> str:
    """The variable that sets a field: ``TRACKD_PORT`` for ``port``."""
    return ENV_PREFIX + field.upper()


def accepts(field: str) -> str:
    """What a field accepts, in words, read from the same annotation msgspec checks."""
    annotation = _FIELDS[field]
    base, *extras = get_args(annotation) if get_origin(annotation) is Annotated else [annotation]
    meta = next((m for m in extras if isinstance(m, msgspec.Meta)), msgspec.Meta())
    if meta.description:
        return meta.description
    if get_origin(base) is Literal:
        *first, last = (str(value) for value in get_args(base))
        return f"one of {', '.join(first)} or {last}" if first else last
    if base is bool:
        return "true, false, 1 or 0"
    if base in (int, float):
        return ("an integer" if base is int else "a number") + _bounds(meta)
    return "text"


def _bounds(meta: msgspec.Meta) -> str:
    if meta.ge is not None and meta.le is not None:
        return f" from {meta.ge:g} to {meta.le:g}"
    words = {"gt": "above", "ge": "of at least", "lt": "below", "le": "up to"}
    bounds = {word: getattr(meta, key) for key, word in words.items()}
    return ",".join(f" {word} {bound:g}" for word, bound in bounds.items() if bound is not None)


#: Each field's annotation (with its `msgspec.Meta` constraints), as `msgspec.convert` takes it.
_FIELDS: dict[str, Any] = {f.name: f.type for f in msgspec.structs.fields(Settings)}
