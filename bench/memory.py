"""Memory of a server under test: its process and every descendant, sampled once a second.

Two sums are kept per sample. RSS (``VmRSS`` in /proc/PID/status) is what the issue's target
names; summed over processes it counts the pages they share (the interpreter, shared libraries)
once per process, so it is an upper bound on what they take together. PSS (``Pss`` in
/proc/PID/smaps_rollup) divides each shared page among its users, so its sum is what the
processes really take together. The descendants are looked up again at every sample: `trackd
serve` restarts its `trackd worker` child if it dies.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from types import TracebackType

from bench.machine import process_tree
from bench.model import MemorySample, Result
from bench.servers import Server


def status_kb(pid: int, field: str, name: str = "status") -> int:
    """A ``kB`` field of /proc/PID/status (or smaps_rollup); 0 for a process gone meanwhile."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def sample(pids: list[int], t: float) -> MemorySample:
    """``pids[0]``: the server process, the others its descendants."""
    rss = [status_kb(pid, "VmRSS") for pid in pids]
    pss = sum(status_kb(pid, "Pss", "smaps_rollup") for pid in pids)
    return MemorySample(round(t, 3), sum(rss) / 1024, pss / 1024, len(pids), rss[0] / 1024)


class MemorySampler:
    """``with MemorySampler(server) as memory:`` samples at entry, each ``interval`` s, and at
    exit. Each tick also re-pins the server's children (a restarted processor child of the
    ``trackd-2core`` variant starts on the edge's core)."""

    def __init__(self, server: Server, core: str | None, interval: float = 1.0) -> None:
        self.server = server
        self.core = core
        self.interval = interval
        self.samples: list[MemorySample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-memory", daemon=True)
        self._started = 0.0

    def __enter__(self) -> MemorySampler:
        self._started = time.monotonic()
        self._tick()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._tick()

    def _run(self) -> None:
        if self.core is not None:  # this thread only: beside wrk, off the server's core
            os.sched_setaffinity(0, {int(self.core)})
        while not self._stop.wait(self.interval):
            self._tick()

    def _tick(self) -> None:
        self.server.pin_children()
        pids = process_tree(self.server.proc.pid)
        self.samples.append(sample(pids, time.monotonic() - self._started))

    def record(self, result: Result) -> None:
        """The most each sum took over the samples (each at its own moment)."""
        result.rss_max_mb = max(s.rss_mb for s in self.samples)
        result.pss_max_mb = max(s.pss_mb for s in self.samples)
        result.rss_parent_max_mb = max(s.parent_rss_mb for s in self.samples)
        result.rss_children_max_mb = max(s.rss_mb - s.parent_rss_mb for s in self.samples)
        result.memory_samples = len(self.samples)
