"""The one frozen Settings object, built once at the edge (the CLI) from flags and env vars.

Nothing below the CLI reads ``os.environ``: settings are passed down explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

ENV_PREFIX = "TRACKD_"
#: The variable through which `trackd serve --workers N` hands its settings to each worker.
SETTINGS_ENV = "TRACKD_SETTINGS_JSON"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: str = "./trackd-data"
    workers: int = 1
    #: Backend URLs; empty means the embedded default inside ``data_dir``.
    queue: str = ""
    store: str = ""
    limiter: str = ""
    log_level: str = "info"
    #: Largest body, declared, read or inflated (contract row 1).
    max_body_bytes: int = 131072
    #: Requests waiting for a group commit beyond which the edge answers 503 at once.
    max_pending_writes: int = 20000
    #: Admission control (`trackd.edge.admission`), per process: a Track request is answered
    #: 503 at once while as many requests, their bodies received, wait for their answer as the
    #: process answers in `max_wait_seconds` at its recent peak (at least 64, at most
    #: `max_in_flight_requests`); `/readyz` is 503 meanwhile and for `shed_hold_seconds` after
    #: the last such refusal.
    max_wait_seconds: float = 0.5
    max_in_flight_requests: int = 2048
    shed_hold_seconds: float = 2.0
    #: How often every process looks for workspace and key changes, in seconds.
    registry_refresh_seconds: float = 0.25
    #: How long an Idempotency-Key is remembered, in seconds.
    idempotency_ttl_seconds: int = 86400
    #: Seconds SIGTERM waits for in-flight requests before closing them.
    graceful_timeout_seconds: float = 10.0
    #: Bearer token that reads every workspace through `/api` (empty: none).
    admin_token: str = ""
    #: Where `serve` runs the embedded processor: "process" (a `trackd worker` child process,
    #: so the edge and the processor each get a core: measured in BENCHMARKS.md), "inline"
    #: (in the edge's own event loop: one process, for tests), or "off".
    processor: str = "process"
    #: Seconds a client has to send a request's line and headers, then its whole body; past
    #: either the connection is closed (slow clients, `trackd.edge.protocol`).
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0

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
        """Flags win over ``TRACKD_*`` env vars, which win over the defaults."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, field_type in _FIELDS.items():
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None:
                values[name] = field_type(raw)
        values.update({k: v for k, v in flags.items() if v is not None and k in _FIELDS})
        return cls(**values)

    def to_json(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Settings:
        return msgspec.json.decode(raw, type=cls)


_FIELDS: dict[str, type] = {f.name: type(f.default) for f in msgspec.structs.fields(Settings)}
