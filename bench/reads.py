"""How the read API's cost grows: a store filled with millions of events, then every read timed.

    .venv/bin/python bench/reads.py                          # 10,000,000 events, 1,000,000 users
    .venv/bin/python bench/reads.py --events 20000 --users 2000 --samples 20   # CI's smoke
    .venv/bin/python bench/reads.py --store postgresql://127.0.0.1:5432/test?schema=bench_reads
    .venv/bin/python bench/reads.py --json out.json
    .venv/bin/python bench/reads.py --events 1000000 --users 100000 --only export \
        --baseline /path/to/other/checkout --rounds 5 --in-process   # export, before vs after

The fill goes through trackd's own processor code (`trackd.processor.plan` and `apply`, the
same transaction per batch the worker runs), `--actions` events per envelope, one customer per
envelope (of `--users`), `--names` event names, event times spread over the last 30 days in
arrival order, each event with 8 attributes of mixed types. It is timed but has no target.

Then a real `trackd serve` (processor off) on that store answers, over one keep-alive HTTP
connection, `--samples` requests of each read, with ids and names drawn at random:

- `profile`: `GET /api/workspaces/{ws}/users/{customer_id}`
- `events_by_customer`: `GET .../events?customer_id=C` (a page of 100)
- `events_by_name_range`: `GET .../events?action=A&since=S&until=U` (a 1-day range)
- `schema`, `stats`: `GET .../schema`, `GET .../stats`

and `trackd events export` writes every event to NDJSON (events/s); with `--baseline`, another
checkout's export too, on the same store, alternately with this one's, and whether the two wrote
the same bytes; with `--in-process`, the NDJSON export in this process, the read API's view of
each page encoded (the export before `EventStore.event_lines`) against `event_lines`. Last, the
bytes on disk per event (SQLite: the database file after a checkpoint; PostgreSQL: the tables
with their indexes).
Exit status 0 when the store held exactly what was put and every read answered 200.
Targets (issue 14): p99 under 20 ms for profile, events by customer and stats, under 100 ms for
schema; export at least 200,000 events/s. Index use is checked by tests/store/test_query_plans.py.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.client
import json
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `trackd` from any directory

from bench.servers import LISTENING, START_SECONDS, wait_ready
from trackd.models import Action, Envelope, Workspace
from trackd.processor.apply import apply
from trackd.processor.plan import plan
from trackd.store import open_event_store, open_workspace_store

ROOT = Path(__file__).resolve().parent.parent
WORKSPACE = Workspace(id="READS", name="reads", key_hash=None, rate_limit=10**9)
TOKEN = "bench-reads-admin-token"
DAY_MS = 86_400_000
SPAN_MS = 30 * DAY_MS
BATCH_ENVELOPES = 200  # envelopes per store transaction while filling
PLATFORMS = ("ANDROID", "iOS", "web")


def _action(index: int, name: str, at: int, rng: random.Random) -> Action:
    return Action(
        index=index,
        action=name,
        attributes={
            "sku": f"SKU-{rng.randrange(100_000)}",
            "price": round(rng.uniform(1, 500), 2),
            "quantity": rng.randrange(1, 9),
            "in_stock": rng.random() < 0.8,
            "category": rng.choice(("Shoes", "Books", "Toys", "Grocery")),
            "tags": ["a", "b"],
            "page": "/products/" + str(rng.randrange(5000)),
            "rating": rng.randrange(1, 6),
        },
        platform=rng.choice(PLATFORMS),
        current_time=at,
        user_time=at,
        user_timezone_offset=19800,
    )


async def fill(url: str, events: int, users: int, names: int, per: int, seed: int) -> float:
    """Put `events` events into the store at `url`; returns the fill's seconds."""
    rng = random.Random(seed)
    workspaces = open_workspace_store(url)
    await workspaces.open()
    try:
        await workspaces.create(WORKSPACE)
    finally:
        await workspaces.aclose()
    store = open_event_store(url)
    await store.open()
    start_ms = int(time.time() * 1000) - SPAN_MS
    envelopes = -(-events // per)
    step = SPAN_MS / max(1, events)
    started = time.perf_counter()
    try:
        made, plans = 0, []
        for n in range(envelopes):
            count = min(per, events - made)
            base = start_ms + int(made * step)
            actions = [
                _action(i, f"Event {rng.randrange(names):03d}", base + int(i * step), rng)
                for i in range(count)
            ]
            made += count
            envelope = Envelope(
                request_id=f"fill-{seed}-{n}",
                workspace_id=WORKSPACE.id,
                received_at=actions[-1].current_time,
                customer_id=f"user-{n % users}",
                device_id=None,
                actions=actions,
                event_count=count,
            )
            plans.append(plan(envelope))
            if len(plans) == BATCH_ENVELOPES:
                await apply(store, plans)
                plans = []
                if n % 10_000 < BATCH_ENVELOPES:
                    print(f"  filled {made:,} events", file=sys.stderr, flush=True)
        await apply(store, plans)
    finally:
        await store.aclose()
    return time.perf_counter() - started


def start(data_dir: Path, store: str) -> tuple[subprocess.Popen[bytes], str]:
    log = open(data_dir / "serve.log", "w+b")  # noqa: SIM115 - the process keeps it
    env = {**os.environ, "TRACKD_ADMIN_TOKEN": TOKEN, "TRACKD_PROCESSOR": "off"}
    command = [sys.executable, "-m", "trackd", "serve", "--data-dir", str(data_dir), "--port", "0"]
    if store:
        command += ["--store", store]
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        log.seek(0)
        for line in log.read().decode(errors="replace").splitlines():
            match = LISTENING.match(line.strip())
            if match:
                wait_ready(match.group(1) + "/readyz", deadline)
                return proc, match.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    log.seek(0)
    raise RuntimeError("trackd serve did not start:\n" + log.read().decode(errors="replace"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed_reads(url: str, paths: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    out: dict[str, dict[str, float]] = {}
    for name, batch in paths.items():
        times: list[float] = []
        for path in batch:
            began = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            times.append((time.perf_counter() - began) * 1000)
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status} {body[:200]!r}")
        out[name] = {
            "p50_ms": round(percentile(times, 0.50), 2),
            "p99_ms": round(percentile(times, 0.99), 2),
            "max_ms": round(max(times), 2),
        }
    conn.close()
    return out


def read_paths(
    events: int, users: int, names: int, per: int, samples: int, seed: int
) -> dict[str, list[str]]:
    rng = random.Random(seed + 1)
    base = f"/api/workspaces/{WORKSPACE.id}"
    start_ms = int(time.time() * 1000) - SPAN_MS
    span = max(1, min(users, -(-events // per)))  # the users the fill made

    def ranged() -> str:
        since = start_ms + rng.randrange(SPAN_MS - DAY_MS)
        action = f"Event {rng.randrange(names):03d}"
        return f"{base}/events?" + urlencode(
            {"action": action, "since": since, "until": since + DAY_MS}
        )

    def user() -> str:
        return f"user-{rng.randrange(span)}"

    return {
        "profile": [f"{base}/users/{quote(user())}" for _ in range(samples)],
        "events_by_customer": [f"{base}/events?customer_id={user()}" for _ in range(samples)],
        "events_by_name_range": [ranged() for _ in range(samples)],
        "schema": [f"{base}/schema"] * samples,
        "stats": [f"{base}/stats"] * samples,
    }


def export_command(data_dir: Path, store: str) -> list[str]:
    command = [sys.executable, "-m", "trackd", "events", "export", WORKSPACE.id]
    command += ["--format", "ndjson", "--data-dir", str(data_dir)]
    return command + (["--store", store] if store else [])


def export_rate(
    data_dir: Path, store: str, expected: int, code: Path = ROOT
) -> tuple[float, float]:
    """Events/s of `trackd events export` (the package at `code`) into /dev/null, by the wall
    clock and by the CPU time the export process used (on a shared machine the wall clock
    also counts the time other work held the cores)."""
    env = {**os.environ, "PYTHONPATH": str(code)}  # and `code` the cwd: `-m` puts it first
    command = [*export_command(data_dir, store), "--out", os.devnull]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env, cwd=code)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return expected / wall, expected / max(cpu, 1e-9)


def export_digest(data_dir: Path, store: str, code: Path) -> str:
    """SHA-256 of what `trackd events export` (the package at `code`) writes (untimed)."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    digest = hashlib.sha256()
    with subprocess.Popen(
        export_command(data_dir, store),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=code,
    ) as proc:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(1 << 20):
            digest.update(chunk)
    if proc.returncode != 0:
        raise RuntimeError(f"export with {code} failed: {proc.returncode}")
    return digest.hexdigest()


def compare_exports(
    data_dir: Path, store: str, expected: int, baseline: Path, rounds: int
) -> dict[str, Any]:
    """This checkout's export and `baseline`'s (another checkout of trackd) on the same store,
    alternately `rounds` times each (so both see the same machine), and whether they wrote
    the same bytes."""
    rates: dict[str, list[tuple[float, float]]] = {"baseline": [], "this": []}
    for _ in range(rounds):
        rates["baseline"].append(export_rate(data_dir, store, expected, baseline))
        rates["this"].append(export_rate(data_dir, store, expected))
    return {
        "baseline": str(baseline),
        "rounds": rounds,
        "baseline_events_per_s": [round(wall) for wall, _ in rates["baseline"]],
        "this_events_per_s": [round(wall) for wall, _ in rates["this"]],
        "baseline_events_per_cpu_s": [round(cpu) for _, cpu in rates["baseline"]],
        "this_events_per_cpu_s": [round(cpu) for _, cpu in rates["this"]],
        "identical_output": export_digest(data_dir, store, baseline)
        == export_digest(data_dir, store, ROOT),
    }


class _Null:
    """A binary sink that counts what it is given."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.bytes += len(data)
        return len(data)

    def flush(self) -> None:
        pass


async def in_process(url: str, expected: int, rounds: int) -> dict[str, list[int]]:
    """Events/s in this process, into a null sink, alternately: the read API's view of each
    page encoded (`trackd.cli.export.pages` + ``encode_lines``, the NDJSON export before
    `EventStore.event_lines`) and `trackd.cli.export.export` (which writes `event_lines`)."""
    import msgspec

    from trackd.cli.export import export, pages

    encode_lines = msgspec.json.Encoder().encode_lines
    store = open_event_store(url)
    await store.open()
    rates: dict[str, list[int]] = {"view": [], "lines": []}
    try:
        for _ in range(rounds):
            sink, began = _Null(), time.perf_counter()
            async for page in pages(store, WORKSPACE.id, None, None):
                sink.write(encode_lines(page))
            rates["view"].append(round(expected / (time.perf_counter() - began)))
            began = time.perf_counter()
            count = await export(store, WORKSPACE.id, _Null(), "ndjson")  # type: ignore[arg-type]
            rates["lines"].append(round(expected / (time.perf_counter() - began)))
            if count != expected:
                raise RuntimeError(f"exported {count} events of {expected}")
    finally:
        await store.aclose()
    return rates


def stored(data_dir: Path, store: str) -> tuple[int, int]:
    """(events stored, bytes on disk for them and everything else of the store)."""
    if not store:
        path = data_dir / "trackd.db"
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            count = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        return int(count), path.stat().st_size
    import asyncpg  # the scale-out store's driver

    async def query() -> tuple[int, int]:
        schema = store.partition("schema=")[2] or "public"
        conn = await asyncpg.connect(store.split("?", 1)[0])
        try:
            count = await conn.fetchval(f'SELECT count(*) FROM "{schema}".events')
            size = await conn.fetchval(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = $1 AND c.relkind = 'r'",
                schema,
            )
        finally:
            await conn.close()
        return int(count), int(size)

    return asyncio.run(query())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--names", type=int, default=200)
    parser.add_argument("--actions", type=int, default=10, help="events per envelope")
    parser.add_argument("--samples", type=int, default=500, help="requests per read")
    parser.add_argument("--store", default="", help="a PostgreSQL URL (default: SQLite)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument(
        "--only", choices=("export",), help="export: time the export alone (no HTTP reads)"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout of trackd (its root): its export is timed on the same store, "
        "alternately with this one's, and their outputs compared",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="exports of each, with --baseline or --in-process"
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="also time the NDJSON export in this process: the encoded view vs event_lines",
    )
    args = parser.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="trackd-reads-"))
    url = args.store or f"sqlite:///{data_dir / 'trackd.db'}"
    proc = None
    try:
        print(f"filling {args.events:,} events for {args.users:,} users", file=sys.stderr)
        fill_s = asyncio.run(
            fill(url, args.events, args.users, args.names, args.actions, args.seed)
        )
        count, size = stored(data_dir, args.store)
        result: dict[str, Any] = {
            "store": "postgresql" if args.store else "sqlite",
            "events": count,
            "users": args.users,
            "names": args.names,
            "fill_events_per_s": round(args.events / fill_s),
            "bytes_per_event": round(size / max(1, count)),
        }
        if args.only != "export":
            proc, server = start(data_dir, args.store)
            paths = read_paths(
                args.events, args.users, args.names, args.actions, args.samples, args.seed
            )
            result["reads"] = timed_reads(server, paths)
            proc.terminate()
            proc.wait(timeout=30)
            proc = None
        wall, cpu = export_rate(data_dir, args.store, count)
        result["export_events_per_s"] = round(wall)
        result["export_events_per_cpu_s"] = round(cpu)
        if args.baseline is not None:
            result["export_compared"] = compare_exports(
                data_dir, args.store, count, args.baseline.resolve(), args.rounds
            )
        if args.in_process:
            result["export_in_process_events_per_s"] = asyncio.run(
                in_process(url, count, args.rounds)
            )
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if count == args.events else 1


if __name__ == "__main__":
    sys.exit(main())
