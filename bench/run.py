"""The Track Event benchmark behind BENCHMARKS.md: nginx, trackd and a naive baseline, one run.

    python3 bench/run.py                # 10 s per measurement (the numbers in BENCHMARKS.md)
    python3 bench/run.py --smoke        # 2 s each, what CI runs (tests/bench)
    python3 bench/run.py --profile DIR  # also py-spy trackd in extra, unmeasured runs

For single-event and 100-event requests it measures, each on a fresh server pinned to core 0
with wrk (bench/track.lua) pinned to core 1:

- ``nginx``: a static 200 (bench/nginx.conf, one worker), the ceiling;
- ``trackd``: ``python3 -m trackd serve`` with its defaults on a fresh data dir;
- ``fastapi``: bench/baseline_fastapi.py on uvicorn, one worker;
- ``trackd@50%``: trackd again, open loop at half the rate it just reached, latency counted
  from each request's scheduled time (wrk2's model; wrk2 is not packaged here).

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
