"""What one rate-limit decision costs the edge on Redis (issue 14 item 4), without HTTP.

    .venv/bin/python bench/limiter.py                   # 20,000 acquires, 64 in flight

`trackd.limiter.redis.RedisLimiter.acquire` (cost 1, a limit never reached) with `--in-flight`
of them waiting at once (as many HTTP connections), in this process on one core, under a key
prefix of the run's own (bench/engines.py, removed after). Reported: the process's CPU time per
acquire (the client's share: what bounds the edge on one core) and acquires/s of wall time
(which also waits for redis-server, on the same machine). Best of `--repeat`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `trackd` from any directory

from bench.engines import Engines
from trackd.limiter.redis import RedisLimiter


async def one_run(engines: Engines, acquires: int, in_flight: int) -> tuple[float, float]:
    limiter = RedisLimiter(engines.limiter_url())
    await limiter.open()
    try:
        todo = iter(range(acquires))

        async def connection() -> None:
            for _ in todo:
                assert (await limiter.acquire("BENCH", 1, 10**9)).allowed

        cpu, wall = time.process_time(), time.monotonic()
        await asyncio.gather(*(connection() for _ in range(in_flight)))
        return time.process_time() - cpu, time.monotonic() - wall
    finally:
        await limiter.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/limiter.py", description=__doc__.split("\n")[0])
    parser.add_argument("--acquires", type=int, default=20_000, help="per timing (20,000)")
    parser.add_argument("--in-flight", type=int, default=64, help="acquires waiting (64)")
    parser.add_argument("--repeat", type=int, default=3, help="timings, best kept (3)")
    parser.add_argument("--core", type=int, default=0, help="pinned to this core (0); -1: not")
    args = parser.parse_args(argv)
    if args.core >= 0:
        os.sched_setaffinity(0, {args.core})
    import uvloop

    best: tuple[float, float] | None = None
    for _ in range(args.repeat):
        engines = Engines()
        try:
            cpu, wall = uvloop.run(one_run(engines, args.acquires, args.in_flight))
        finally:
            engines.drop()
        best = (cpu, wall) if best is None or cpu < best[0] else best
    assert best is not None
    cpu, wall = best
    print(
        f"{args.acquires:,} acquires, {args.in_flight} in flight, best of {args.repeat}: "
        f"{cpu / args.acquires * 1e6:.1f} µs CPU per acquire, {args.acquires / wall:,.0f} "
        "acquires/s wall"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
