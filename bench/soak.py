"""The memory soak: trackd at max rate (closed loop, single-event) for ``--soak`` seconds, its
processes' RSS sampled each second, then killed and every 200 looked up on disk."""

from __future__ import annotations

from bench.measure import check_durable, wrk
from bench.memory import MemorySampler
from bench.model import CLIENT_CORE, SINGLE, Options, Soak
from bench.servers import running

WINDOW_SECONDS = 10.0


def soak(opts: Options, seconds: float) -> Soak:
    """One attempt, never re-measured: other work during it shows in the row's ``other``."""
    files = [opts.scratch / "soak-warmup.ids", opts.scratch / "soak.ids"]
    core = CLIENT_CORE if opts.pin else None
    with running(opts, "trackd", "soak") as server:
        warm = wrk(opts, server, SINGLE, opts.warmup, ids=files[0]) if opts.warmup else None
        with MemorySampler(server, core) as memory:
            row = wrk(opts, server, SINGLE, seconds, ids=files[1])
        if server.data_dir is not None:
            check_durable(server, server.data_dir, row, warm, files)
    row.server = "trackd-soak"
    memory.record(row)
    print(f"  measured {row.server:<16} {SINGLE:<10} {row.rps:>10,.0f} req/s", flush=True)
    # the first and last windows do not overlap in a short soak (--smoke: 3 s)
    return Soak(row, min(WINDOW_SECONDS, seconds / 2), memory.samples)
