"""The one error hierarchy of trackd.

    TrackdError
    ├── ContractError        a request breaks the wire contract; carries HTTP status, MoEngage
    │                        error type, message and the offending attribute. Every instance is
    │                        built in `trackd.wire.contract`, the one place that knows the bodies.
    ├── BackendError         an engine (queue, store, limiter) failed
    │   ├── QueueUnavailable the durable queue cannot take a write now (the edge answers 503)
    │   └── StoreError       the store failed or holds something unexpected
    ├── NotFound             an admin command names a workspace or project that does not exist
    └── ConfigError          settings or a backend URL are wrong
        └── MissingDriver    a backend's driver is not installed; names the pip extra

Adapters translate driver errors at their edge with ``raise ... from exc``.
"""

from __future__ import annotations


class TrackdError(Exception):
    """Base of every error trackd raises on purpose."""


class ContractError(TrackdError):
    """A request that the Track Event contract rejects (a 4xx, or the 5xx rows)."""

    def __init__(self, status: int, type_: str, message: str, attribute: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.attribute = attribute


# -- Delete User (data-api.md §4) --
class TitledError(ContractError):
    """A contract error whose body is ``{"status": "fail", "title", "description"}`` (REF §2.1:
    Delete User's 429 and 500) instead of the standard envelope: `type` is the title and
    `message` the description."""


class BackendError(TrackdError):
    """An engine behind a protocol failed."""


class QueueUnavailable(BackendError):
    """The durable queue cannot make a write durable right now; retrying later may work."""


class StoreError(BackendError):
    """The store failed."""


class NotFound(TrackdError):
    """An admin command names something that does not exist."""


class ConfigError(TrackdError):
    """Settings or a backend URL are wrong."""


class MissingDriver(ConfigError):
    """A backend's driver is not installed."""

    def __init__(self, scheme: str, module: str, extra: str) -> None:
        super().__init__(
            f"the {scheme}:// backend needs the {module!r} package: "
            f"run `pip install 'trackd[{extra}]'`"
        )
