"""The Track Event benchmark behind BENCHMARKS.md: nginx, trackd and a naive baseline, one run.

    python3 bench/run.py                # 10 s per measurement (the numbers in BENCHMARKS.md)
    python3 bench/run.py --smoke        # 2 s each, a 3 s soak, what CI runs (tests/bench)
    python3 bench/run.py --profile DIR  # also py-spy trackd in extra, unmeasured runs
    python3 bench/run.py --seconds 5 --soak 20   # shorter

For single-event and 100-event requests it measures, each on a fresh server pinned to core 0
with wrk (bench/track.lua) pinned to core 1:

- ``nginx``: a static 200 (bench/nginx.conf, one worker), the ceiling;
- ``trackd``: ``python3 -m trackd serve`` with its defaults on a fresh data dir;
- ``fastapi``: bench/baseline_fastapi.py on uvicorn, one worker;
- ``trackd@50%``: trackd again, open loop at half the rate it just reached, latency counted
  from each request's scheduled time (wrk2's model; wrk2 is not packaged here);
- ``trackd-2core`` (and ``@50%``, not in --smoke): the edge on core 0 and its processor child
  (`trackd worker`) moved to core 1, beside wrk;
- ``trackd-edge`` (and ``@50%``, not in --smoke): the processor held off (its lease held).

Beside each row: the summed RSS and PSS of the server and its descendants, sampled each second
(bench/memory.py). In the single-event ``@50%`` rows of trackd and trackd-2core, a freshness
probe sends a marked request every 50 ms and polls the read API until it is listed
(bench/freshness.py). After each max-rate row of those two, the bench waits for the stats
route's ``lag_events`` to reach 0. Last, ``--soak`` seconds (60; smoke 3; 0 skips) of trackd at
max rate, single-event, with its RSS sampled each second (bench/soak.py).

trackd's bench workspace is created with a rate limit of 10^9 events/minute: the default (30,000)
would answer 429 to nearly every request, and the limiter still runs on every request. After
each trackd measurement the server is killed with SIGKILL and its queue file is read: every 200
must be there (the log's AUTOINCREMENT sequence counts every envelope ever committed).

Exit status 0 when every measurement completed with nothing but 2xx and every 200 was durable.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `bench` from any directory

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
