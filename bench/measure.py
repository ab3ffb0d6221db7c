"""One measurement: wrk against a fresh server, re-measured when other work disturbed it.

Around the measured wrk run, the server's memory is sampled each second (bench/memory.py); in an
open-loop single-event row of trackd, a freshness probe runs beside wrk (bench/freshness.py);
after a max-rate row of trackd, the bench waits for the lag to drain; then trackd is killed and
every 200 looked up on disk."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.freshness import FreshnessProbe, drain
from bench.machine import busy, core_times, cpu_seconds, pinned, process_tree
from bench.memory import MemorySampler
from bench.model import (
    BENCH,
    BODIES,
    CLIENT_CORE,
    SERVER_CORE,
    SINGLE,
    WORKSPACE,
    Commits,
    Options,
    Result,
)
from bench.servers import Server, durable_envelopes, lost_ids, lost_in_stream, running

#: the servers whose processor runs: a burst's lag drains, and probes become readable
PROCESSING = ("trackd", "trackd-2core", "trackd-nolog")


def wrk(
    opts: Options,
    server: Server,
    body: str,
    seconds: float,
    rate: float | None = None,
    ids: Path | None = None,
) -> Result:
    """One wrk run against ``server``; ``rate`` (requests/s in all) switches to open loop;
    ``ids``: where wrk writes the request_id of every 200."""
    actions, pool = BODIES[body]
    connections = opts.paced_connections if rate else opts.connections
    threads = connections if rate else 1
    if rate:
        pool = max(8, pool // 8)  # one wrk thread per connection: keep memory small
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
    ]
    command += ["-s", str(BENCH / "track.lua"), server.url, "--"]
    command += [WORKSPACE, server.authorization, str(actions), str(pool)]
    env = dict(os.environ)
    env.pop("TRACKD_BENCH_RATE", None)
    env.pop("TRACKD_BENCH_IDS", None)
    if rate:
        env["TRACKD_BENCH_RATE"] = f"{rate / connections:.3f}"
    if ids:
        env["TRACKD_BENCH_IDS"] = str(ids)
    server.pin_children()
    pids = process_tree(server.proc.pid)
    beside_wrk = pids[1:] if server.child_core is not None else []
    before, before_beside = cpu_seconds(pids), cpu_seconds(beside_wrk)
    cores = core_times()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            pinned(CLIENT_CORE, command, opts.pin), stdout=out, stderr=subprocess.STDOUT, env=env
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        server_cpu = cpu_seconds(pids) - before
        server_cpu_beside = cpu_seconds(beside_wrk) - before_beside
        server_core, client_core = busy(cores, SERVER_CORE), busy(cores, CLIENT_CORE)
        out.seek(0)
        text = out.read().decode(errors="replace")
    line = next((ln for ln in text.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{text}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    wall = data["duration_us"] / 1e6
    latency = data["scheduled_latency_us"] if rate else data["latency_us"]
    errors = data["errors"]
    return Result(
        server=server.name if rate is None else f"{server.name}@50%",
        body=body,
        actions=actions,
        seconds=wall,
        requests=data["requests"],
        statuses=data["statuses"],
        socket_errors=sum(errors[k] for k in ("connect", "read", "write", "timeout")),
        p50_ms=latency["p50"] / 1000,
        p99_ms=latency["p99"] / 1000,
        server_cpu=100 * server_cpu / wall,
        wrk_cpu=100 * (usage.ru_utime + usage.ru_stime) / wall,
        server_core=server_core,
        client_core=client_core,
        target_rate=rate,
        server_cpu_client_core=100 * server_cpu_beside / wall,
    )


def measure(opts: Options, name: str, body: str, rate: float | None = None) -> Result:
    """The least disturbed of up to 1 + ``opts.retries`` attempts, each on a fresh server.

    Another attempt is made only when other work on the machine took more than
    ``opts.max_interference`` % of the two cores; an attempt with a non-2xx answer, a socket
    error or a lost 200 is returned at once, never measured away."""
    best: Result | None = None
    for attempt in range(1 + opts.retries):
        result = attempt_once(opts, name, body, rate, attempt)
        if not result.clean:
            return result
        if best is None or result.interference < best.interference:
            best = result
        if result.interference <= opts.max_interference:
            break
        print(
            f"  disturbed: {result.interference:.0f}% of the cores went to other work", flush=True
        )
    assert best is not None
    print(f"  measured {best.server:<16} {body:<10} {best.rps:>10,.0f} req/s", flush=True)
    return best


def attempt_once(opts: Options, name: str, body: str, rate: float | None, attempt: int) -> Result:
    tag = f"{name}-{BODIES[body][0]}{'-paced' if rate else ''}-{attempt}"
    files: list[Path | None] = [opts.scratch / f"{tag}-warmup.ids", opts.scratch / f"{tag}.ids"]
    if not name.startswith("trackd"):
        files = [None, None]  # nginx and the baseline: no per-request bookkeeping in wrk
    processes = name in PROCESSING
    core = CLIENT_CORE if opts.pin else None  # the bench's own threads: beside wrk
    with running(opts, name, tag) as server:
        warm = None
        if opts.warmup and not rate:
            warm = wrk(opts, server, body, opts.warmup, ids=files[0])
        probe = FreshnessProbe(server, core) if processes and rate and body == SINGLE else None
        with MemorySampler(server, core) as memory, probe or contextlib.nullcontext():
            result = wrk(opts, server, body, opts.seconds, rate, ids=files[1])
        if probe is not None:
            result.freshness = probe.finish(opts.probe_deadline)
        if processes and not rate:  # after a burst: how long until the processor caught up
            result.lag_at_end, result.drain_s = drain(server, opts.drain_deadline)
        if server.data_dir is not None:  # trackd: SIGKILL, then look for every 200 on disk
            check_durable(server, server.data_dir, result, warm, files)
    if rate and body == SINGLE and server.data_dir is not None and server.engines is None:
        result.disk = disk(opts, rate)  # the floor under this row's p99, on the same core
    memory.record(result)
    result.attempts = attempt + 1
    return result


def disk(opts: Options, rate: float) -> Commits:
    """bench/disk.py on the server's core, in the scratch dir, for as long as the row ran."""
    command = [sys.executable, str(BENCH / "disk.py"), "--rate", f"{rate:.0f}"]
    command += ["--seconds", f"{opts.seconds:g}", "--dir", str(opts.scratch), "--json"]
    done = subprocess.run(
        pinned(SERVER_CORE, command, opts.pin), capture_output=True, text=True, check=True
    )
    return Commits(**json.loads(done.stdout))


def check_durable(
    server: Server,
    data_dir: Path,
    result: Result,
    warm: Result | None,
    files: Sequence[Path | None],
) -> None:
    """SIGKILL trackd, then count its envelopes and look up each 200's request_id on disk (in
    the JetStream stream for trackd-edge-js)."""
    server.stop(hard=True)
    answered = {i for f in files if f and f.exists() for i in f.read_text().split()}
    if server.engines is not None:  # JetStream: each 200's request_id among the stream's ids
        committed, result.lost = lost_in_stream(server.engines, answered)
        result.backlog = committed  # no worker ran
    else:
        committed, result.backlog = durable_envelopes(data_dir)
        result.lost = lost_ids(data_dir, answered)
    result.durable = committed - (warm.ok if warm else 0)
