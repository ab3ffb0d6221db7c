"""`trackd send`: an NDJSON file of events to a server, batched under 128 KB, with retries.

A line holding `actions` is a whole Track Event body and is sent as it is. Any other line is one
event: `customer_id` (and optionally `device_id`) with the action's fields (`action`,
`attributes`, `platform`, times, …); consecutive events of the same user are batched into one
request while its body stays under `max_bytes`. Each request carries an `Idempotency-Key`, so a
retry after a timeout never ingests twice; 429 and 5xx are retried after `Retry-After`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec

MAX_BYTES = 120_000  # below the 131072-byte limit, with room for the envelope
ACTION_FIELDS = (
    "action", "attributes", "platform", "app_version", "user_time", "current_time",
    "user_timezone_offset", "moe_os_type", "real_time_action",
)  # fmt: skip
_encode = msgspec.json.Encoder().encode


@dataclass
class SendReport:
    requests: int = 0
    events: int = 0
    failed_requests: int = 0
    failures: list[str] = field(default_factory=list)


def batches(lines: Iterable[bytes], max_bytes: int = MAX_BYTES) -> Iterator[tuple[bytes, int]]:
    """Request bodies and their event counts, in file order."""
    pending: dict[str, Any] | None = None
    size = 0
    for raw in lines:
        if not raw.strip():
            continue
        record = msgspec.json.decode(raw)
        if isinstance(record, dict) and "actions" in record:
            if pending:
                yield _body(pending)
                pending = None
            yield raw.strip(), len(record.get("actions") or [])
            continue
        action = {k: record[k] for k in ACTION_FIELDS if k in record}
        user = (record.get("customer_id"), record.get("device_id"))
        action_size = len(_encode(action)) + 1
        if pending is not None and (
            (pending["customer_id"], pending.get("device_id")) != user
            or size + action_size > max_bytes
        ):
            yield _body(pending)
            pending = None
        if pending is None:
            pending = {"type": "event", "customer_id": user[0], "actions": []}
            if user[1] is not None:
                pending["device_id"] = user[1]
            size = len(_encode(pending))
        pending["actions"].append(action)
        size += action_size
    if pending:
        yield _body(pending)


def _body(pending: dict[str, Any]) -> tuple[bytes, int]:
    return _encode(pending), len(pending["actions"])


async def send(
    lines: Iterable[bytes],
    url: str,
    workspace_id: str,
    key: str,
    *,
    concurrency: int = 4,
    attempts: int = 8,
    progress: Callable[[SendReport], None] = lambda report: None,
) -> SendReport:
    report = SendReport()
    queue: asyncio.Queue[tuple[bytes, int] | None] = asyncio.Queue(maxsize=concurrency * 2)
    endpoint = f"{url.rstrip('/')}/v1/event/{workspace_id}"
    async with httpx.AsyncClient(auth=(workspace_id, key), timeout=30) as client:

        async def worker() -> None:
            while (item := await queue.get()) is not None:
                body, count = item
                ok, why = await _post(client, endpoint, body, attempts)
                report.requests += 1
                if ok:
                    report.events += count
                else:
                    report.failed_requests += 1
                    report.failures.append(why)
                progress(report)

        workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
        for item in batches(lines):
            await queue.put(item)
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
    return report


async def _post(
    client: httpx.AsyncClient, endpoint: str, body: bytes, attempts: int
) -> tuple[bool, str]:
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": uuid.uuid4().hex,  # one per request, the same on every retry
    }
    why = ""
    for attempt in range(attempts):
        try:
            response = await client.post(endpoint, content=body, headers=headers)
        except httpx.TransportError as exc:
            why, wait = f"{type(exc).__name__}: {exc}", min(2.0**attempt * 0.2, 10.0)
        else:
            if response.status_code == 200:
                return True, ""
            why = f"{response.status_code} {response.text}"
            if response.status_code != 429 and response.status_code < 500:
                return False, why
            wait = float(response.headers.get("retry-after", "1"))
        await asyncio.sleep(min(wait, 30.0))
    return False, why
