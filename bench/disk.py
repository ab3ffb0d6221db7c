"""The disk's own commit latency: the floor under trackd's single-event p99 (issue 14).

    python3 bench/disk.py --rate 2400 --seconds 10          # paced, in a scratch dir
    python3 bench/disk.py --rate 2400 --dir /tmp/x --json   # the figures as JSON

One SQLite connection as the embedded queue opens it (`trackd.embedded.connect`: WAL,
``synchronous=FULL``) commits one 600-byte row per transaction, paced at ``--rate`` commits per
second, and times each ``COMMIT`` (the WAL's write and its fsync). Nothing else runs in the
process: no HTTP, no event loop, no threads. A 200 of trackd waits for such a commit (its
batch's), so a commit stalled by the disk for N ms holds every request that arrived meanwhile for
about N ms more: when this loop's p99.9 is already over trackd's p99 target at the same rate,
the target is bound by the disk, not by trackd. `bench/run.py` runs it beside the @50% rows, on
the server's core, in the run's scratch dir.
"""

from __future__ import annotations

import argparse
import bisect
import json
import random
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `trackd` from any directory

from bench.model import Commits
from trackd.embedded import connect

ROW = b"x" * 600  # about a single-event envelope


def commit_loop(folder: Path, rate: float, seconds: float) -> Commits:
    conn = connect(folder / "disk.db", "FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    conn.execute("DELETE FROM log")
    latencies, spans = [], []
    due = time.perf_counter()
    for _ in range(max(1, round(rate * seconds))):
        due += 1 / rate
        while (ahead := due - time.perf_counter()) > 0:
            if ahead > 0.001:
                time.sleep(ahead - 0.0005)  # the rest spun: sleep overshoots by ~0.1 ms
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO log (body) VALUES (?)", (ROW,))
        began = time.perf_counter()
        conn.execute("COMMIT")
        ended = time.perf_counter()
        latencies.append(1000 * (ended - began))
        spans.append((began, ended))
    rows = conn.execute("SELECT count(*) FROM log").fetchone()[0]
    conn.close()
    floor = arrival_waits(spans)
    latencies.sort()
    n = len(latencies)
    return Commits(
        rate=rate,
        commits=n,
        rows=rows,
        p50_ms=latencies[n // 2],
        p99_ms=latencies[min(n - 1, int(n * 0.99))],
        p999_ms=latencies[min(n - 1, int(n * 0.999))],
        max_ms=latencies[-1],
        over_2ms=sum(x > 2 for x in latencies),
        floor_p99_ms=floor[min(len(floor) - 1, int(len(floor) * 0.99))],
    )


def arrival_waits(spans: list[tuple[float, float]], arrivals: int = 100_000) -> list[float]:
    """The wait, in ms and sorted, of a request arriving at a random time for a commit that
    holds it, if commits ran as measured and the next one started as soon as the last ended
    (trackd's writer does): arriving during commit i, the rest of i and then all of i + 1;
    between commits, all of the next. trackd's p99 at this rate cannot be below this one's."""
    starts = [s for s, _ in spans]
    ends = [e for _, e in spans]
    first, last = starts[0], ends[-2]  # every arrival has a next commit to wait for
    rng = random.Random(1)
    waits = []
    for _ in range(arrivals):
        t = rng.uniform(first, last)
        i = bisect.bisect_right(ends, t)  # the first commit not yet over at t
        if starts[i] <= t:  # inside commit i: its rest, then the next commit whole
            wait = ends[i] - t + (ends[i + 1] - starts[i + 1])
        else:
            wait = ends[i] - starts[i]
        waits.append(1000 * wait)
    waits.sort()
    return waits


def describe(c: Commits) -> str:
    return (
        f"{c.commits:,} commits at {c.rate:,.0f}/s: p50 {c.p50_ms:.2f} ms, p99 {c.p99_ms:.2f}, "
        f"p99.9 {c.p999_ms:.2f}, max {c.max_ms:.2f}; {c.over_2ms} over 2 ms; a request "
        f"arriving at random waits for its commit at least {c.floor_p99_ms:.2f} ms (p99)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/disk.py", description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=2400.0, help="commits per second (2400)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long (10)")
    parser.add_argument("--dir", type=Path, help="where the file goes (a scratch dir)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="trackd-disk-", dir=args.dir) as scratch:
        result = commit_loop(Path(scratch), args.rate, args.seconds)
    print(json.dumps(asdict(result)) if args.json else describe(result))
    return 0 if result.rows == result.commits else 1


if __name__ == "__main__":
    sys.exit(main())
