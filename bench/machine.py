"""The machine seen from /proc: cores, processes, threads; and taskset pinning."""

from __future__ import annotations

import contextlib
import os
import platform
import time
from pathlib import Path


def pinned(core: str, command: list[str], pin: bool) -> list[str]:
    return ["taskset", "-c", core, *command] if pin else command


def core_times() -> dict[str, tuple[int, int]]:
    """Per core (``cpu0``, ...): (busy, total) jiffies from /proc/stat."""
    cores = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            ticks = [int(v) for v in values[:8]]
            cores[name] = (sum(ticks) - ticks[3] - ticks[4], sum(ticks))  # less idle, iowait
    return cores


def busy(before: dict[str, tuple[int, int]], core: str) -> float:
    after = core_times()[f"cpu{core}"]
    start = before[f"cpu{core}"]
    return 100 * (after[0] - start[0]) / max(1, after[1] - start[1])


def process_tree(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        tree.extend(frontier)
    return tree


def cpu_seconds(pids: list[int], task: str = "") -> float:
    """User + system time of the processes (all their threads, or one: ``task``), from /proc."""
    total = 0
    for pid in pids:
        stat = Path(f"/proc/{pid}/task/{task}/stat" if task else f"/proc/{pid}/stat")
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[int, float]:
    return {
        int(task.name): cpu_seconds([pid], task.name)
        for task in Path(f"/proc/{pid}/task").iterdir()
    }


def machine() -> str:
    model = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    python = platform.python_version()
    return f"{os.cpu_count()} cores, {model}, {mem_kb / 2**20:.1f} GiB RAM, Python {python}"


def background(seconds: float = 2.0) -> str:
    """How busy the machine already is: other work skews every number below."""
    before = core_times()
    time.sleep(seconds)
    cores = ", ".join(f"core{c} {busy(before, str(c)):.0f}% busy" for c in range(len(before)))
    return f"{cores} (over {seconds:g} s), load average {os.getloadavg()[0]:.2f}"
