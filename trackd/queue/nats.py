"""The Queue protocol on NATS JetStream (nats-py), for scale-out.

URL: ``nats://host:4222[,host2:4222]/STREAM?replicas=3&dedupe=86400&max_age=604800``. The
stream (created if absent, with the replicas asked for) keeps envelopes on subjects
``STREAM.env.<workspace>.<event count>`` for `max_age` seconds (default 7 days; limits
retention). Interest retention would reclaim acknowledged envelopes sooner, but on the NATS
2.9 servers we test against it dropped envelopes that were in flight to a worker when the
server restarted; with limits retention they are redelivered after `ack_wait`. The durable
pull consumer ``processor`` is created at open, so a stream never exists without it.

- `put` publishes with ``Nats-Msg-Id`` = request id and returns only after JetStream's PubAck
  (the message is stored, on a quorum of replicas). A retried publish of the same id within the
  duplicate window is stored once; for an idempotent put that makes `put` return False.
  Publishes do not wait for one another: each is sent at once (nats-py's `publish_async`, the
  messages of one loop iteration leave in one write) and awaits its own PubAck future, so
  concurrent requests' acks are awaited together. No timer per publish: one sweeper fails the
  futures older than `PUBLISH_TIMEOUT` (it wakes every `SWEEP_SECONDS`), and `aclose` waits
  for those in flight.
- `remembered` reads a key-value bucket that remembers idempotent request ids (with their
  fingerprints) for the window.
- Workers share one durable pull consumer and ack after the store has committed; what is not
  acknowledged (a crash, `nack`) is redelivered. A `get` or `ack` cancelled by a stopping
  worker still completes its exchange with the server: what the fetch took is handed back
  (`nak`, redelivered at once), the acks are sent. Otherwise messages delivered to a worker
  that stopped cleanly would wait `ack_wait` (30 s) to be redelivered. With several workers,
  envelopes of one workspace may be processed out of order; every store write commutes except
  Track User attributes, where the later processed wins.
- `backlog` scans the workspace's envelopes above the consumer's ack floor (their subject's
  last token is the envelope's event count), up to `BACKLOG_SCAN` of them: beyond, a lower
  bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any
from urllib.parse import parse_qs, urlsplit

from trackd.errors import ConfigError, MissingDriver, QueueUnavailable
from trackd.models import Envelope
from trackd.queue.base import PROCESSOR, UNKNOWN, Backlog, Delivery

try:
    import nats
    from nats.errors import Error as NatsError
    from nats.js import api
    from nats.js.errors import KeyNotFoundError, NotFoundError
except ImportError as exc:  # pragma: no cover - depends on the install
    raise MissingDriver("nats", "nats-py", "nats") from exc

log = logging.getLogger(__name__)

ACK_WAIT_SECONDS = 30
BACKLOG_SCAN = 2000
PUBLISH_TIMEOUT = 5.0
SWEEP_SECONDS = 0.25
#: PubAcks awaited at once beyond which a put fails at once (QueueUnavailable: a 503), rather
#: than wait for a slot (admission control keeps a process far below it).
MAX_PENDING_ACKS = 20_000
RECEIVED_HEADER = "Trackd-Received-At"
#: The key-value entry of an idempotent put without a fingerprint (all of them, before
#: fingerprints were kept): a KV value cannot be empty.
LEGACY = "1"
_FAILURES = (NatsError, OSError, TimeoutError, asyncio.TimeoutError)


class NatsQueue:
    def __init__(self, url: str, *, dedupe_seconds: float = 86400.0) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self._servers = [f"nats://{host}" for host in parts.netloc.split(",") if host]
        self.stream = parts.path.strip("/") or "TRACKD"
        if not self.stream.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"a JetStream stream name is letters, digits, '_' or '-': {url!r}")
        self.replicas = int(query.get("replicas", ["1"])[0])
        self.dedupe_seconds = float(query.get("dedupe", [str(dedupe_seconds)])[0])
        self.max_age = float(query.get("max_age", ["604800"])[0])
        self._nc: Any = None
        self._js: Any = None
        self._kv: Any = None
        self._subscriptions: dict[str, Any] = {}
        self._inflight: dict[str, dict[int, Any]] = {}
        self._closed = False
        self._puts_in_flight = 0
        self._no_puts = asyncio.Event()
        self._no_puts.set()
        #: (deadline, PubAck future) of the publishes in flight, oldest first: the sweeper's.
        self._deadlines: deque[tuple[float, asyncio.Future[Any]]] = deque()
        self._sweeper: asyncio.Task[None] | None = None

    def _subject(self, workspace_id: str, events: int | str = "*") -> str:
        return f"{self.stream}.env.{workspace_id}.{events}"

    async def open(self) -> None:
        try:
            self._nc = await nats.connect(
                servers=self._servers,
                connect_timeout=2,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                allow_reconnect=True,
            )
            self._js = self._nc.jetstream(
                timeout=PUBLISH_TIMEOUT, publish_async_max_pending=MAX_PENDING_ACKS
            )
            await self._ensure_stream()
            self._kv = await self._js.create_key_value(
                bucket=f"{self.stream}_idempotency", ttl=self.dedupe_seconds, history=1
            )
            await self._subscription(PROCESSOR)
        except _FAILURES as exc:
            raise QueueUnavailable(f"cannot open JetStream stream {self.stream}: {exc}") from exc
        self._closed = False
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        """Fail the PubAck futures that waited `PUBLISH_TIMEOUT`: one timer for every publish."""
        deadlines = self._deadlines
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = time.monotonic()
            while deadlines and (deadlines[0][1].done() or deadlines[0][0] <= now):
                _, future = deadlines.popleft()
                if not future.done():
                    future.set_exception(TimeoutError("no PubAck within the publish timeout"))

    async def _ensure_stream(self) -> None:
        try:
            await self._js.stream_info(self.stream)
        except NotFoundError:
            await self._js.add_stream(
                api.StreamConfig(
                    name=self.stream,
                    subjects=[f"{self.stream}.env.>"],
                    retention=api.RetentionPolicy.LIMITS,
                    max_age=self.max_age,
                    storage=api.StorageType.FILE,
                    num_replicas=self.replicas,
                    duplicate_window=self.dedupe_seconds,
                )
            )

    async def _subscription(self, consumer: str) -> Any:
        if consumer not in self._subscriptions:
            self._subscriptions[consumer] = await self._js.pull_subscribe(
                f"{self.stream}.env.>",
                durable=consumer,
                stream=self.stream,
                config=api.ConsumerConfig(
                    ack_policy=api.AckPolicy.EXPLICIT,
                    deliver_policy=api.DeliverPolicy.ALL,
                    ack_wait=ACK_WAIT_SECONDS,
                    max_ack_pending=100_000,
                ),
            )
        return self._subscriptions[consumer]

    async def put(
        self, envelope: Envelope, *, idempotent: bool = False, fingerprint: str = UNKNOWN
    ) -> bool:
        if self._closed or self._nc is None or not self._nc.is_connected:
            raise QueueUnavailable("JetStream is not connected")
        request_id = envelope.request_id
        headers = {
            "Nats-Msg-Id": request_id,
            RECEIVED_HEADER: str(envelope.received_at),
        }
        if self._js.publish_async_pending() >= MAX_PENDING_ACKS:  # never wait for a slot
            raise QueueUnavailable(f"{MAX_PENDING_ACKS} publishes await JetStream's PubAck")
        subject = self._subject(envelope.workspace_id, envelope.event_count)
        encoded = envelope.encode()
        del envelope  # its encoding is what waits for the PubAck (the Queue contract)
        self._puts_in_flight += 1
        self._no_puts.clear()
        try:
            future = await self._js.publish_async(subject, encoded, headers=headers)
            del encoded  # the client's pending buffer holds the bytes until they are sent
            self._deadlines.append((time.monotonic() + PUBLISH_TIMEOUT, future))
            ack = await future
            if idempotent and not ack.duplicate:
                await self._kv.put(request_id, (fingerprint or LEGACY).encode())
        except _FAILURES as exc:
            raise QueueUnavailable(f"JetStream did not acknowledge: {exc}") from exc
        finally:
            self._puts_in_flight -= 1
            if not self._puts_in_flight:
                self._no_puts.set()
        return not (idempotent and ack.duplicate)

    async def remembered(self, request_id: str) -> str | None:
        try:
            entry = await self._kv.get(request_id)
        except KeyNotFoundError:
            return None
        except _FAILURES as exc:
            raise QueueUnavailable(str(exc)) from exc
        value = (entry.value or b"").decode()
        return UNKNOWN if value == LEGACY else value

    async def get(self, consumer: str, max_items: int, timeout: float) -> list[Delivery]:
        try:
            subscription = await self._subscription(consumer)
            fetch = asyncio.ensure_future(subscription.fetch(max_items, timeout=max(timeout, 0.05)))
            try:
                messages = await asyncio.shield(fetch)
            except asyncio.CancelledError:  # a stopping worker: hand back what it took
                await _hand_back(fetch)
                raise
        except TimeoutError:
            return []
        except _FAILURES as exc:
            raise QueueUnavailable(str(exc)) from exc
        inflight = self._inflight.setdefault(consumer, {})
        deliveries = []
        for message in messages:
            seq = message.metadata.sequence.stream
            inflight[seq] = message
            deliveries.append(Delivery(seq, Envelope.decode(message.data)))
        return deliveries

    async def ack(self, consumer: str, deliveries: list[Delivery]) -> None:
        acks = asyncio.ensure_future(self._ack(consumer, deliveries))
        try:
            await asyncio.shield(acks)
        except asyncio.CancelledError:  # a stopping worker: the store has committed, send them
            await asyncio.gather(acks, return_exceptions=True)
            raise

    async def _ack(self, consumer: str, deliveries: list[Delivery]) -> None:
        inflight = self._inflight.get(consumer, {})
        try:
            messages = [inflight.pop(d.seq, None) for d in deliveries]
            taken = [m for m in messages if m is not None]
            for message in taken[:-1]:
                await message.ack()
            if taken:  # the server confirms the last: it handles a consumer's acks in order,
                await taken[-1].ack_sync(timeout=PUBLISH_TIMEOUT)  # so `lag` then counts all
        except _FAILURES as exc:
            raise QueueUnavailable(str(exc)) from exc

    async def nack(self, consumer: str) -> None:
        inflight = self._inflight.pop(consumer, {})
        for seq in sorted(inflight):
            with contextlib.suppress(*_FAILURES):
                await inflight[seq].nak()
        with contextlib.suppress(*_FAILURES):
            await self._nc.flush(timeout=PUBLISH_TIMEOUT)  # redelivery starts before the next get

    async def ready(self) -> bool:
        return not self._closed and self._nc is not None and self._nc.is_connected

    async def lag(self, consumer: str) -> int:
        try:
            info = await self._js.consumer_info(self.stream, consumer)
        except NotFoundError:
            return 0
        except _FAILURES as exc:
            raise QueueUnavailable(str(exc)) from exc
        return int(info.num_pending + info.num_ack_pending)

    # -- read-your-writes (Delete User, data-api.md §0) --

    async def head(self) -> int:
        """The stream's last sequence: at or after every put JetStream acknowledged."""
        try:
            info = await self._js.stream_info(self.stream)
        except _FAILURES as exc:
            raise QueueUnavailable(str(exc)) from exc
        return int(info.state.last_seq)

    async def applied(self, consumer: str) -> int:
        """The durable consumer's ack floor: every message at or before it is acknowledged."""
        try:
            info = await self._js.consumer_info(self.stream, consumer)
        except NotFoundError:
            return 0
        except _FAILURES as exc:
            raise QueueUnavailable(str(exc)) from exc
        return int(info.ack_floor.stream_seq)

    async def backlog(self, consumer: str, workspace_id: str) -> Backlog:
        try:
            info = await self._js.consumer_info(self.stream, consumer)
            if not info.num_pending and not info.num_ack_pending:
                return Backlog(0, 0, None)
            return await self._scan(info.ack_floor.stream_seq + 1, workspace_id)
        except NotFoundError:
            return Backlog(0, 0, None)
        except _FAILURES as exc:
            raise QueueUnavailable(str(exc)) from exc

    async def _scan(self, seq: int, workspace_id: str) -> Backlog:
        envelopes = events = 0
        oldest: int | None = None
        for _ in range(BACKLOG_SCAN):
            try:
                message = await self._js.get_msg(
                    self.stream, seq=seq, subject=self._subject(workspace_id), next=True
                )
            except NotFoundError:
                break
            envelopes += 1
            events += int(message.subject.rsplit(".", 1)[1])
            if oldest is None:
                oldest = int((message.headers or {}).get(RECEIVED_HEADER, 0)) or None
            seq = message.seq + 1
        return Backlog(envelopes, events, oldest)

    async def aclose(self) -> None:
        if self._nc is None or self._closed:
            return
        self._closed = True
        with contextlib.suppress(TimeoutError):  # puts already made get their PubAck first
            await asyncio.wait_for(self._no_puts.wait(), PUBLISH_TIMEOUT)
        while self._deadlines:  # still unacknowledged: those puts fail (a 503), none hangs
            _, future = self._deadlines.popleft()
            if not future.done():
                future.set_exception(TimeoutError("the queue closed before the PubAck came"))
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        with contextlib.suppress(*_FAILURES):
            await self._nc.flush(timeout=2)  # acks sent; publishes were each acknowledged
        with contextlib.suppress(*_FAILURES):
            await self._nc.close()
        self._nc = None


async def _hand_back(fetch: asyncio.Future[list[Any]]) -> None:
    """Let a fetch whose caller was cancelled finish (within its timeout), then `nak` what it
    took, so the stream redelivers it now rather than after `ack_wait`."""
    try:
        messages = await fetch
    except (*_FAILURES, asyncio.CancelledError):
        return
    for message in messages:
        with contextlib.suppress(*_FAILURES):
            await message.nak()
