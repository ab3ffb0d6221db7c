"""The Limiter protocol: per-workspace event limits over a sliding 60-second window."""

from __future__ import annotations

from typing import NamedTuple, Protocol

WINDOW_SECONDS = 60


class Decision(NamedTuple):
    """What the rate-limit headers say: `reset` is whole seconds until the window allows it."""

    allowed: bool
    limit: int
    remaining: int
    reset: int


class Limiter(Protocol):
    """Counts events per key over the last 60 seconds, in one-second buckets.

    Contract, for every adapter:

    - `acquire` admits `cost` events whole, or not at all: when the events counted in the
      window plus `cost` exceed `limit`, nothing is counted and `allowed` is False. Admission
      and counting are one atomic step, across every process sharing the limiter, so the limit
      holds for the deployment as a whole: no 60-second window ever admits more than `limit`.
    - `peek` reports the same numbers for a cost of zero and counts nothing.
    - `refund` gives back `cost` events of an admitted request that was then not kept (the
      queue refused it), taking them from the newest buckets, so a 503 costs no quota.
    - `reset` is the whole seconds until the request would be admitted (when allowed: until the
      oldest counted bucket leaves the window; 0 if none).
    - `ready` tells whether `acquire` can decide now (its engine answers), within about a
      second whatever the engine does; it raises nothing. `/readyz` asks it.
    - `aclose` releases the engine. Idempotent.
    """

    async def open(self) -> None: ...

    async def acquire(self, key: str, cost: int, limit: int) -> Decision: ...

    async def peek(self, key: str, limit: int) -> Decision: ...

    async def refund(self, key: str, cost: int) -> None: ...

    async def ready(self) -> bool: ...

    async def aclose(self) -> None: ...
