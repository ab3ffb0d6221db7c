"""What one `put` costs the edge on NATS JetStream (issue 14 item 4), without HTTP.

    .venv/bin/python bench/publish.py                      # 20,000 puts, 64 in flight
    .venv/bin/python bench/publish.py --puts 50000 --in-flight 256 --repeat 5

`trackd.queue.nats.NatsQueue.put` of single-event envelopes shaped like bench/track.lua's, with
`--in-flight` of them awaiting their PubAck at once (as many HTTP connections, each waiting for
its answer), in this process on one core, into a stream of the run's own (bench/engines.py,
dropped after). Reported: the process's CPU time per put (user + system: the client's work for
one publish and its ack, what bounds the edge on one core) and puts/s of wall time (which also
waits for nats-server, on the same machine). Best of `--repeat`. Every put returns only after
JetStream acknowledged it, so at the end the stream holds exactly the puts made: checked.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `trackd` from any directory

from bench.engines import Engines
from bench.processor import body, envelope
from trackd.models import Envelope
from trackd.queue.nats import NatsQueue


async def one_run(
    engines: Engines, envelopes: list[Envelope], in_flight: int
) -> tuple[float, float]:
    queue = NatsQueue(engines.queue_url())
    await queue.open()
    try:
        todo = iter(envelopes)

        async def connection() -> None:
            for e in todo:  # each "connection" puts one envelope at a time, as a client would
                assert await queue.put(e)

        cpu, wall = time.process_time(), time.monotonic()
        await asyncio.gather(*(connection() for _ in range(in_flight)))
        return time.process_time() - cpu, time.monotonic() - wall
    finally:
        await queue.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/publish.py", description=__doc__.split("\n")[0])
    parser.add_argument("--puts", type=int, default=20_000, help="per timing (20,000)")
    parser.add_argument("--in-flight", type=int, default=64, help="puts awaiting acks (64)")
    parser.add_argument("--repeat", type=int, default=3, help="timings, best kept (3)")
    parser.add_argument("--core", type=int, default=0, help="pinned to this core (0); -1: not")
    args = parser.parse_args(argv)
    if args.core >= 0:
        os.sched_setaffinity(0, {args.core})
    rng = random.Random(4)
    now = int(time.time())
    envelopes = [envelope(body(rng, 1, now), now * 1000) for _ in range(args.puts)]
    import uvloop

    best: tuple[float, float] | None = None
    for _ in range(args.repeat):
        engines = Engines()
        try:
            cpu, wall = uvloop.run(one_run(engines, envelopes, args.in_flight))
            held, ids = engines.stream_request_ids()
            assert held == len(ids) == args.puts, (held, len(ids))
        finally:
            engines.drop()
        best = (cpu, wall) if best is None or cpu < best[0] else best
    assert best is not None
    cpu, wall = best
    print(
        f"{args.puts:,} puts, {args.in_flight} in flight, best of {args.repeat}: "
        f"{cpu / args.puts * 1e6:.1f} µs CPU per put, {args.puts / wall:,.0f} puts/s wall; "
        f"the stream held every put: OK"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
