"""The Queue protocol: the durable, ordered log between the edge and the processor."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from trackd.models import Envelope

#: The consumer name the processor reads the queue as (every worker shares it); the read API
#: and /metrics ask the queue for its backlog under this name.
PROCESSOR = "processor"
#: The fingerprint of an idempotent put made without one (or before fingerprints were kept):
#: it matches any request, as every replay did before.
UNKNOWN = ""


class Delivery(NamedTuple):
    """An envelope handed to a consumer, with the position that acknowledges it."""

    seq: int
    envelope: Envelope


class Backlog(NamedTuple):
    """What a consumer has not yet acknowledged of one workspace."""

    envelopes: int
    events: int
    oldest_received_at: int | None  # epoch ms of the oldest waiting envelope


class Queue(Protocol):
    """A durable log of envelopes, read in order by named consumers.

    Contract, for every adapter:

    - `put` returns only once the envelope is durable: it survives `kill -9` of any trackd
      process (and, for a replicated engine, of the node that acknowledged it). Concurrent puts
      may share one flush (group commit). `put` raises `QueueUnavailable` when the write cannot
      be made durable now (disk full, engine down, too many writes pending): nothing is kept.
      While it waits for the disk or the engine, `put` holds the envelope's encoding, not the
      envelope (a 200-event request's decoded objects are ~4 x its body: the edge's memory in
      an overload is what its requests in flight hold).
    - With ``idempotent=True``, a second put of the same `request_id` within the dedupe window
      (24 h) stores nothing and returns False; otherwise `put` returns True. (The edge reuses a
      request id only for idempotent requests; engines that deduplicate by message id, such
      as JetStream, store a repeated id once whatever the flag.) The first put's `fingerprint`
      (what the request was: the edge's hash of endpoint and body) is remembered with it.
    - `remembered` returns the fingerprint of the idempotent put of that `request_id` within
      the window (`UNKNOWN` if it was put without one, or before fingerprints were kept), or
      None when there is none.
    - `get` returns up to `max_items` deliveries after the consumer's position, in put order
      (so in order per workspace), waiting at most `timeout` seconds; [] on timeout. Delivery is
      at least once: what is not acknowledged comes again after `nack` or a restart.
    - `ack` commits the consumer's position past the given deliveries; consumed entries are
      reclaimed once every consumer has acknowledged them, so the log does not grow unbounded.
    - `ready` is True while the queue can take writes. `lag` counts unacknowledged envelopes;
      `backlog` tells, for one workspace, the envelopes and events not yet acknowledged.
    - `aclose` waits for pending puts to finish, then releases the engine. Idempotent.

    Read-your-writes (data-api.md §0, issue 12 item 3; Delete User's not-found):

    - `head` is a position at or after every put that has returned (0 when none ever did), in
      the numbering of `Delivery.seq`, in any process sharing the queue.
    - `applied` is the consumer's acknowledged position (0 before its first `ack`): every put
      at or before it is applied. So once `applied(c) >= head()` as read before, consumer `c`
      has applied every put that returned before `head` was read.
    """

    async def open(self) -> None: ...

    async def put(
        self, envelope: Envelope, *, idempotent: bool = False, fingerprint: str = UNKNOWN
    ) -> bool: ...

    async def remembered(self, request_id: str) -> str | None: ...

    async def get(self, consumer: str, max_items: int, timeout: float) -> list[Delivery]: ...

    async def ack(self, consumer: str, deliveries: list[Delivery]) -> None: ...

    async def nack(self, consumer: str) -> None: ...

    async def ready(self) -> bool: ...

    async def lag(self, consumer: str) -> int: ...

    async def backlog(self, consumer: str, workspace_id: str) -> Backlog: ...

    # -- read-your-writes (Delete User, data-api.md §0) --

    async def head(self) -> int: ...

    async def applied(self, consumer: str) -> int: ...

    async def aclose(self) -> None: ...
