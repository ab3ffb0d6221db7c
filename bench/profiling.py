"""Where trackd's time goes: py-spy on the thread holding the GIL, and CPU per thread."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.machine import pinned, thread_cpu
from bench.measure import wrk
from bench.model import BODIES, CLIENT_CORE, Options
from bench.servers import running

#: py-spy from PATH, else beside this Python (a venv's bin is often not on PATH).
PY_SPY = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")


@dataclass
class Profile:
    body: str
    raw: Path  # py-spy's collapsed stacks, sampled only from the thread holding the GIL
    threads: list[tuple[str, float]]  # (thread, percent of one core) over the same run
    server: str = "trackd"


def profile(opts: Options, body: str, out_dir: Path, server_name: str = "trackd") -> Profile:
    """py-spy on trackd during an extra, unmeasured run at full load.

    ``--gil`` samples the thread that holds the GIL, i.e. where Python spends CPU; SQLite's own
    work runs with the GIL released, so the CPU of every thread is read from /proc as well
    (py-spy's idle detection is unreliable with every thread on one core: a thread waiting for
    the core or for the GIL counts as active). Sampling pauses the process (py-spy's default,
    accurate stacks), which is why this run is not one of the measured ones.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{server_name}-{BODIES[body][0]}.txt"
    with running(opts, server_name, f"profile-{server_name}-{BODIES[body][0]}") as server:
        pid = server.proc.pid
        command = [PY_SPY, "record", "--pid", str(pid), "--gil"]
        command += ["--duration", str(int(opts.seconds)), "--format", "raw", "-o", str(out)]
        spy = subprocess.Popen(pinned(CLIENT_CORE, command, opts.pin), stdout=subprocess.DEVNULL)
        before, started = thread_cpu(pid), time.monotonic()
        wrk(opts, server, body, opts.seconds)
        after, wall = thread_cpu(pid), time.monotonic() - started
        spy.wait(timeout=60)
        names = thread_names(pid)
    threads = [
        (names.get(tid, str(tid)), 100 * (after[tid] - before.get(tid, 0.0)) / wall)
        for tid in sorted(after, key=lambda t: before.get(t, 0.0) - after[t])
    ]
    return Profile(body, out, threads, server_name)


def thread_names(pid: int) -> dict[int, str]:
    dump = subprocess.run([PY_SPY, "dump", "--pid", str(pid)], capture_output=True, text=True)
    return {
        int(m.group(1)): m.group(2)
        for m in re.finditer(r'^Thread (\d+) \([^)]*\): "([^"]+)"', dump.stdout, re.MULTILINE)
    }


def top_frames(raw: Path, limit: int = 15) -> list[tuple[str, float, float]]:
    """(function, self %, inclusive %) from py-spy's collapsed stacks, by self time."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith("thread (")]
        total += int(count)
        own[frames[-1]] = own.get(frames[-1], 0) + int(count)
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + int(count)
    ranked = sorted(own, key=lambda f: own[f], reverse=True)[:limit]
    return [(f, 100 * own[f] / total, 100 * inclusive[f] / total) for f in ranked]
