"""The edge's cost per request in process, fast path against the ASGI road (issue 14 item 1).

    python3 bench/edge.py                         # µs per request, both roads, best of --repeat
    python3 bench/edge.py --road fast --requests 2000      # one road only, for callgrind:
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \\
        python3 bench/edge.py --road asgi --requests 2000
    python3 bench/edge.py --queue sqlite --connections 64  # the real durable put (group commit)

trackd's own HTTP protocol (`trackd.edge.protocol.TrackdHttpProtocol`) on a socket-less
transport that keeps what is written, in front of the real app on in-memory backends (the
memory queue and limiter, the workspace registry, admission control): each request is fed as
bytes, the loop runs until its whole answer is written, and the next one is fed on the same
keep-alive connection. So it counts what a request costs the edge's CPU above the kernel (no
socket, no disk, no wrk), the same for both roads: the parse, the checks, the envelope and the
answer, through `FastCycle` or through uvicorn's ASGI cycle (`fast_path` off). The bodies are
bench/track.lua's (bench/decode.py builds them). Compare the two roads' ratio within one run,
or their instruction counts under callgrind (repeatable on a loaded machine).

`--queue sqlite` puts each envelope on the embedded SQLite queue in a scratch dir (the real
durable put: group commit, `synchronous=FULL`, its writer thread; each 200 follows its commit),
and `--connections N` feeds a request to each of N connections at once, waiting for all N
answers before the next round, so that a commit carries N puts as it does under wrk's 64
connections. The disk's fsync is in the wall-clock figures then, not in callgrind's counts.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `trackd` from any directory

from uvicorn.server import ServerState

from bench.decode import body
from trackd import admin
from trackd.edge.app import TrackdApp
from trackd.edge.protocol import ClientLimits, Config, TrackdHttpProtocol
from trackd.limiter.memory import MemoryLimiter
from trackd.queue.memory import MemoryQueue
from trackd.queue.sqlite import SQLiteQueue
from trackd.server import tune_gc
from trackd.services import Services
from trackd.settings import Settings
from trackd.store import open_event_store
from trackd.store.memory import MemoryWorkspaceStore

WORKSPACE = "BENCH"


class Transport:
    """What the protocol writes to, kept; an answer is complete once its body is."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False
        self.done = asyncio.Event()  # set once the answer is whole (no polling: callgrind)

    def write(self, data: bytes) -> None:
        self.written += data
        if self.answered():
            self.done.set()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("198.51.100.7", 4321), "sockname": ("127.0.0.1", 8080)}.get(
            name, default
        )

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def can_write_eof(self) -> bool:
        return False

    def answered(self) -> bool:
        head, sep, rest = self.written.partition(b"\r\n\r\n")
        if not sep:
            return False
        length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
        return len(rest) >= length


async def edge(fast: bool, scratch: str, queue: str) -> tuple[TrackdApp, str]:
    settings = Settings(data_dir=scratch, processor="off", fast_path=fast)
    app = TrackdApp(
        Services(
            settings,
            workspaces=MemoryWorkspaceStore(),
            events=open_event_store("memory://"),
            queue=MemoryQueue() if queue == "memory" else SQLiteQueue(Path(scratch) / "queue.db"),
            limiter=MemoryLimiter(),
        )
    )
    await app.startup()
    _, key = await admin.create_workspace(
        app.store, workspace_id=WORKSPACE, name="bench", rate_limit=10**9
    )
    await app.registry.refresh()
    tune_gc()  # as `serve` does
    return app, key


#: Distinct bodies, built whatever the number of requests (so that two runs' instruction
#: counts differ by their requests alone), sent in turn.
POOL = 100


def requests(key: str, actions: int, count: int) -> list[bytes]:
    auth = base64.b64encode(f"{WORKSPACE}:{key}".encode())
    rng = random.Random(14)
    now = int(time.time())
    pool = []
    for _ in range(POOL):
        payload = body(actions, now, rng)
        pool.append(
            b"POST /v1/event/BENCH HTTP/1.1\r\nHost: trackd\r\nAuthorization: Basic %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (auth, len(payload), payload)
        )
    return [pool[n % POOL] for n in range(count)]


async def run(app: TrackdApp, raw: list[bytes], connections: int = 1) -> float:
    """Seconds to answer every request of `raw`, in rounds of one request on each of
    `connections` keep-alive connections (one connection: one after another)."""
    config = Config(
        app,
        client_limits=ClientLimits(),
        lifespan="off",
        access_log=False,
        log_config=None,
    )
    config.load()
    loop = asyncio.get_running_loop()
    state = ServerState()
    links = []
    for _ in range(connections):
        protocol = TrackdHttpProtocol(config, state, {}, loop)
        transport = Transport()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        links.append((protocol, transport))
    began = time.perf_counter()
    for start in range(0, len(raw), connections):
        rounds = list(zip(links, raw[start : start + connections], strict=False))
        for (protocol, transport), request in rounds:
            transport.written.clear()
            transport.done.clear()
            protocol.data_received(request)
        for _, transport in (link for link, _ in rounds):
            await transport.done.wait()
            assert transport.written.startswith(b"HTTP/1.1 200 "), bytes(transport.written[:300])
    elapsed = time.perf_counter() - began
    for protocol, _ in links:
        protocol.connection_lost(None)
    return elapsed


async def main_async(args: argparse.Namespace) -> None:
    roads = [args.road] if args.road else ["fast", "asgi"]
    with tempfile.TemporaryDirectory(prefix="trackd-bench-edge-") as scratch:
        results = {}
        for road in roads:
            app, key = await edge(road == "fast", f"{scratch}/{road}", args.queue)
            raw = requests(key, args.actions, args.requests)
            if args.road:  # one pass, for callgrind
                await run(app, raw, args.connections)
            else:
                await run(app, raw[: max(1, len(raw) // 10)], args.connections)  # warm up
                timings = [await run(app, raw, args.connections) for _ in range(args.repeat)]
                results[road] = min(timings)
            await app.shutdown()
    if results:
        print(
            f"{args.actions} event(s) per request, {args.requests} requests, "
            f"{args.queue} queue, {args.connections} connection(s), best of {args.repeat}:"
        )
        for road, seconds in results.items():
            us = seconds / args.requests * 1e6
            ratio = seconds / results["asgi"] if "asgi" in results else 1.0
            print(f"  {road:<6}{us:>9.1f} µs per request   {ratio:.2f} x asgi")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/edge.py", description=__doc__.split("\n")[0])
    parser.add_argument("--actions", type=int, default=1, help="events per request (1)")
    parser.add_argument("--requests", type=int, default=2000, help="per timing (2000)")
    parser.add_argument("--repeat", type=int, default=5, help="timings per road, best kept (5)")
    parser.add_argument("--road", choices=("fast", "asgi"), help="one road, one pass (callgrind)")
    parser.add_argument(
        "--queue", choices=("memory", "sqlite"), default="memory", help="the queue (memory)"
    )
    parser.add_argument("--connections", type=int, default=1, help="requests in flight at once (1)")
    args = parser.parse_args(argv)
    import uvloop

    uvloop.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
