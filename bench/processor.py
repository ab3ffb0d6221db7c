"""The processor's throughput: a queue full of envelopes into the SQLite event store, or a
JetStream stream into PostgreSQL (scale-out, issue 14 item 4).

    .venv/bin/python bench/processor.py                     # 200,000 events, 1- then 100-event
    .venv/bin/python bench/processor.py --events 50000 --actions 100 --json out.json
    .venv/bin/python bench/processor.py --inprocess         # in this process (py-spy, stalls)
    .venv/bin/python bench/processor.py --scale-out         # NATS JetStream -> PostgreSQL
    .venv/bin/python bench/processor.py --queue nats://127.0.0.1:4222 \
        --store postgresql://postgres@127.0.0.1:5432/test   # the same, engines named

For each envelope size it fills a fresh data dir's SQLite queue with N events, in envelopes of K
actions shaped like bench/track.lua's bodies (8 attributes of mixed types, 10 action names, one
of 200,000 customers per body, epoch-second, epoch-ms or ISO times). Each body goes through
`trackd.wire.event.validate_event` and becomes the `Envelope` the edge would put, put through
trackd's own `SQLiteQueue`. Then it starts ``python -m trackd worker`` on that data dir (the
code `trackd serve` runs as its processor child), pinned to one core, and times it from its
"processing" line until the queue's consumer has acknowledged the last envelope: events/s of
wall time, and of the worker's CPU time (all its threads, from /proc). Last it checks that the
store holds exactly N events and counted N processed events. The fill is not timed. With
``--inprocess`` the processor runs in this process instead (unpinned), which also reports the
longest time it held the event loop.

``--scale-out`` (or ``--queue nats://HOST:PORT`` and ``--store postgresql://...``): the same
envelopes are published to a JetStream stream of the run's own (``TRACKDBENCH<tag>``) and the
worker drains it into a PostgreSQL schema of the run's own (``bench_<tag>``), both dropped
afterwards (`bench.engines`); done is when the consumer's ack floor reaches the last envelope,
and the events are counted in that schema.

Exit status 0 when every store held exactly what was put.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `trackd` from any directory

from bench import engines as engines_module
from bench.engines import Engines
from trackd.models import Envelope, Workspace
from trackd.queue import open_queue
from trackd.settings import Settings
from trackd.wire.contract import new_request_id
from trackd.wire.event import validate_event

ROOT = Path(__file__).resolve().parent.parent
WORKSPACE = Workspace(id="BENCH", name="bench", key_hash=None, rate_limit=10**9)
CONSUMER = "processor"  # trackd.processor.runner.CONSUMER

ACTIONS = (
    "Viewed Product", "Added To Cart", "Removed From Cart", "Checkout Started", "Purchased",
    "App Opened", "Searched", "Signed Up", "Shared", "Rated Product",
)  # fmt: skip
CATEGORIES = ("Shoes", "Accessories", "Electronics", "Books", "Grocery", "Toys")
PLATFORMS = ("ANDROID", "iOS", "web")
CURRENCIES = ("INR", "USD", "EUR")
CUSTOMERS = 200_000
PUT_CHUNK = 4096  # puts in flight at once: one group commit of the queue


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def action_body(rng: random.Random, now: int) -> dict[str, Any]:
    """One action as bench/track.lua writes it."""
    when = now - rng.randint(0, 60)
    style = rng.randint(1, 3)
    current: Any = (
        str(when) if style == 1 else when * 1000 + rng.randint(0, 999) if style == 2 else _iso(when)
    )
    return {
        "action": rng.choice(ACTIONS),
        "attributes": {
            "product_id": f"SKU-{rng.randint(1, 999_999):06d}",
            "category": rng.choice(CATEGORIES),
            "price": round(rng.random() * 500, 2),
            "currency": rng.choice(CURRENCIES),
            "quantity": rng.randint(1, 5),
            "in_stock": rng.random() < 0.5,
            "tags": ["sale", rng.choice(CATEGORIES)],
            "viewed_at": _iso(when - rng.randint(0, 3600)),
        },
        "platform": rng.choice(PLATFORMS),
        "app_version": f"5.{rng.randint(0, 9)}.{rng.randint(0, 20)}",
        "current_time": current,
        "user_time": _iso(when),
        "user_timezone_offset": 19800,
    }


def body(rng: random.Random, actions: int, now: int) -> dict[str, Any]:
    customer = f"cust-{rng.randint(1, CUSTOMERS):06d}"
    return {
        "type": "event",
        "customer_id": customer,
        "device_id": f"dev-{customer}",
        "actions": [action_body(rng, now) for _ in range(actions)],
    }


def envelope(payload: dict[str, Any], received_ms: int) -> Envelope:
    """What `trackd.edge.track.TrackEndpoint` puts for an accepted request."""
    validated = validate_event(payload, WORKSPACE, None, received_ms)
    return Envelope(
        request_id=new_request_id(),
        workspace_id=WORKSPACE.id,
        received_at=received_ms,
        client_ip="127.0.0.1",
        customer_id=validated.customer_id,
        device_id=validated.device_id,
        user_identifiers=validated.user_identifiers,
        actions=validated.actions,
        warnings=validated.warnings,
        event_count=validated.event_count,
    )


async def fill(settings: Settings, events: int, actions: int, seed: int) -> int:
    """Put `events` events in envelopes of `actions` (the last one may be smaller); returns the
    number of envelopes."""
    rng = random.Random(seed)
    now = int(time.time())
    queue = open_queue(settings.queue_url(), settings)
    await queue.open()
    put = 0
    try:
        left = events
        while left:
            chunk = []
            while left and len(chunk) < PUT_CHUNK:
                k = min(actions, left)
                chunk.append(envelope(body(rng, k, now), int(time.time() * 1000)))
                left -= k
            results = await asyncio.gather(*(queue.put(e) for e in chunk))
            assert all(results)
            put += len(chunk)
    finally:
        await queue.aclose()
    return put


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _acknowledged(queue_db: Path) -> int:
    """The processor's committed position in the queue (0 before its first ack)."""
    conn = sqlite3.connect(f"file:{queue_db}?mode=ro", uri=True, timeout=30)
    try:
        row = conn.execute("SELECT position FROM consumers WHERE name = ?", (CONSUMER,)).fetchone()
        return int(row[0]) if row else 0
    finally:
        conn.close()


def run_worker(
    data_dir: Path,
    envelopes: int,
    core: int | None,
    timeout: float,
    engines: Engines | None = None,
) -> dict[str, float]:
    """`trackd worker` until it has acknowledged envelope number `envelopes` (the queue's first
    sequence numbers on a fresh data dir or stream); wall and CPU seconds of that stretch."""
    command = [sys.executable, "-m", "trackd", "worker", "--data-dir", str(data_dir)]
    command += ["--log-level", "warning"]
    env = {**os.environ, **(engines.env() if engines else {})}
    acknowledged: Callable[[], int] = lambda: _acknowledged(data_dir / "queue.db")  # noqa: E731
    close: Callable[[], None] = lambda: None  # noqa: E731
    if engines is not None:
        probe = engines.acknowledged()
        acknowledged, close = probe, probe.close
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=(lambda: os.sched_setaffinity(0, {core})) if core is not None else None,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "processing" not in line:
            raise RuntimeError(f"trackd worker did not start: {line!r}")
        started, cpu = time.monotonic(), _cpu_seconds(proc.pid)
        deadline = started + timeout
        while acknowledged() < envelopes:
            if proc.poll() is not None:
                raise RuntimeError(f"trackd worker exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the queue was not drained within {timeout:.0f} s")
            time.sleep(0.01)
        wall, cpu = time.monotonic() - started, _cpu_seconds(proc.pid) - cpu
    finally:
        close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return {"wall_seconds": wall, "cpu_seconds": cpu}


STALL = [0.0]


async def _longest_stall() -> None:
    """The longest time the event loop was held (a 1 ms sleep's overshoot): what a request
    would wait for with the processor inline."""
    while True:
        asked = time.monotonic()
        await asyncio.sleep(0.001)
        STALL[0] = max(STALL[0], time.monotonic() - asked - 0.001)


def run_inprocess(settings: Settings, envelopes: int) -> dict[str, float]:
    """The worker's processor in this process (what `trackd.server._work` builds), until the
    queue is drained: for py-spy and cProfile."""
    import uvloop

    from trackd.processor.runner import Processor
    from trackd.store import open_event_store

    async def main() -> dict[str, float]:
        queue = open_queue(settings.queue_url(), settings)
        events = open_event_store(settings.store_url())
        await events.open()
        await queue.open()
        processor = Processor(queue, events)
        stalls = asyncio.create_task(_longest_stall())
        started, cpu = time.monotonic(), time.process_time()
        while processor.processed_envelopes < envelopes:
            await processor.run_once()
        wall, cpu = time.monotonic() - started, time.process_time() - cpu
        stalls.cancel()
        await queue.aclose()
        await events.aclose()
        return {"wall_seconds": wall, "cpu_seconds": cpu, "longest_stall_seconds": STALL[0]}

    return uvloop.run(main())


def stored(data_dir: Path) -> tuple[int, int]:
    """(events rows, the processed_events counter) in the data dir's store."""
    conn = sqlite3.connect(f"file:{data_dir / 'trackd.db'}?mode=ro", uri=True)
    try:
        (rows,) = conn.execute("SELECT count(*) FROM events").fetchone()
        counted = conn.execute(
            "SELECT coalesce(sum(value), 0) FROM counters WHERE name = 'processed_events'"
        ).fetchone()[0]
        return int(rows), int(counted)
    finally:
        conn.close()


def measure(args: argparse.Namespace, actions: int, data_dir: Path) -> dict[str, Any]:
    engines = Engines() if args.scale_out else None
    try:
        return _measure(args, actions, data_dir, engines)
    finally:
        if engines is not None and not args.keep:
            engines.drop()


def _measure(
    args: argparse.Namespace, actions: int, data_dir: Path, engines: Engines | None
) -> dict[str, Any]:
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=str(data_dir))
    if engines is not None:
        settings = Settings(
            data_dir=str(data_dir), queue=engines.queue_url(), store=engines.store_url()
        )
    filling = time.monotonic()
    envelopes = asyncio.run(fill(settings, args.events, actions, args.seed))
    filled = time.monotonic() - filling
    if args.inprocess:
        timing = run_inprocess(settings, envelopes)
    else:
        timing = run_worker(data_dir, envelopes, args.core, args.timeout, engines)
    rows, counted = engines.count_events() if engines else stored(data_dir)
    return {
        "queue": "nats" if engines else "sqlite",
        "store": "postgresql" if engines else "sqlite",
        **({"stream": engines.stream, "schema": engines.schema} if engines else {}),
        "actions": actions,
        "events": args.events,
        "envelopes": envelopes,
        "fill_seconds": round(filled, 2),
        **{k: round(v, 3) for k, v in timing.items()},
        "events_per_second": round(args.events / timing["wall_seconds"]),
        "events_per_cpu_second": round(args.events / max(timing["cpu_seconds"], 1e-9)),
        "stored_events": rows,
        "counted_events": counted,
        "ok": rows == counted == args.events,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/processor.py", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="events per run (200,000)")
    parser.add_argument(
        "--actions", type=int, action="append", help="events per envelope (default: 1, then 100)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--seed", type=int, default=1, help="of the generated bodies (1)")
    parser.add_argument(
        "--core",
        type=int,
        default=max(os.sched_getaffinity(0)),
        help="the core the worker is pinned to (the highest); -1: not pinned",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per drain (600)")
    parser.add_argument("--inprocess", action="store_true", help="run the processor in here")
    parser.add_argument(
        "--keep", type=Path, help="keep the data dirs (and a scale-out run's stream and schema)"
    )
    parser.add_argument(
        "--scale-out",
        action="store_true",
        help="a JetStream stream into PostgreSQL (bench/engines.py's servers)",
    )
    parser.add_argument("--queue", help="nats://HOST:PORT: the JetStream server (--scale-out)")
    parser.add_argument("--store", help="postgresql://...: the PostgreSQL database (--scale-out)")
    args = parser.parse_args(argv)
    if args.queue or args.store:
        if not (args.queue or "").startswith("nats://") or not (args.store or "").startswith(
            ("postgresql://", "postgres://")
        ):
            parser.error("--queue nats://... and --store postgresql://... go together")
        engines_module.NATS, engines_module.POSTGRES = args.queue.rstrip("/"), args.store
        args.scale_out = True
    if args.core < 0:
        args.core = None
    if args.events < 1 or any(k < 1 for k in args.actions or []):
        parser.error("--events and --actions must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = []
    scratch = Path(tempfile.mkdtemp(prefix="trackd-bench-processor-"))
    try:
        for actions in args.actions or [1, 100]:
            data_dir = (args.keep or scratch) / f"actions-{actions}"
            shutil.rmtree(data_dir, ignore_errors=True)
            result = measure(args, actions, data_dir)
            results.append(result)
            stall = result.get("longest_stall_seconds")
            where = "JetStream -> PostgreSQL, " if args.scale_out else ""
            print(
                f"{actions:>3}-event envelopes: {where}{result['events']:,} events in "
                f"{result['envelopes']:,} envelopes: {result['wall_seconds']:.2f} s wall, "
                f"{result['cpu_seconds']:.2f} s CPU: {result['events_per_second']:,} events/s, "
                f"{result['events_per_cpu_second']:,} events/CPU-s; store holds "
                f"{result['stored_events']:,} events, counted {result['counted_events']:,}: "
                f"{'OK' if result['ok'] else 'WRONG'}"
                + ("" if stall is None else f"; event loop held up to {stall * 1000:.0f} ms"),
                flush=True,
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps({"results": results}, indent=2) + "\n")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
