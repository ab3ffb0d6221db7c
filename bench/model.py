"""What a measurement is: the bodies, the options of a run, and one row of results."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORKSPACE = "BENCH"
#: body label -> (actions per request, requests precomputed per wrk thread)
BODIES = {"1 event": (1, 1000), "100 events": (100, 64)}
SERVER_CORE, CLIENT_CORE = "0", "1"
SINGLE = "1 event"


@dataclass
class Commits:
    """bench/disk.py: the disk's own commit latency at a rate, one SQLite row per commit."""

    rate: float  # asked, commits per second
    commits: int
    rows: int  # read back after the loop: every commit's row is in the file
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    over_2ms: int
    #: p99 of the wait for a commit of a request arriving at a random time, commits as measured
    floor_p99_ms: float


@dataclass
class Freshness:
    """The probe beside an open-loop row: one marked single-event request every ``interval_ms``
    (its own customer), then the read API polled every ``poll_ms`` until that event is listed."""

    interval_ms: float
    poll_ms: float
    sent: int = 0
    ok: int = 0  # answered 200
    readable: int = 0  # of those, found through the read API before the deadline
    p50_ms: float = 0.0  # from the 200's arrival to the answer of the first poll listing it
    p99_ms: float = 0.0
    max_ms: float = 0.0

    @property
    def unreadable(self) -> int:
        return self.ok - self.readable


@dataclass
class Result:
    server: str
    body: str
    actions: int
    seconds: float
    requests: int
    statuses: dict[str, int]
    socket_errors: int
    p50_ms: float
    p99_ms: float
    server_cpu: float  # percent of one core: the server's processes
    wrk_cpu: float
    server_core: float  # percent busy: the whole core, kernel network work included
    client_core: float
    target_rate: float | None = None
    durable: int | None = None  # envelopes found in the queue after SIGKILL (trackd)
    backlog: int | None = None  # of those, not yet processed
    lost: int | None = None  # request_ids of 200s found neither in the queue nor processed
    attempts: int = 1
    server_cpu_client_core: float = 0.0  # of server_cpu: its processes pinned to wrk's core
    rss_max_mb: float | None = None  # the server and its children, summed, sampled each second
    pss_max_mb: float | None = None
    rss_parent_max_mb: float | None = None  # the server process itself (trackd: the edge)
    rss_children_max_mb: float | None = None  # its descendants (trackd: the processor child)
    memory_samples: int = 0
    freshness: Freshness | None = None  # trackd@50% rows with a processor, single-event
    lag_at_end: int | None = None  # max-rate rows with a processor: lag_events when wrk stopped
    drain_s: float | None = None  # then the seconds until lag_events was 0 (None: not in time)
    disk: Commits | None = None  # trackd@50% rows, single-event: bench/disk.py at the same rate

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def eps(self) -> float:
        return self.rps * self.actions

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if s.startswith("2"))

    @property
    def non_2xx(self) -> int:
        return self.requests - self.ok

    @property
    def interference(self) -> float:
        """Percent of the two cores busy with work other than the server's and wrk's."""
        own_core = self.server_cpu - self.server_cpu_client_core
        return max(0.0, self.server_core - own_core) + max(
            0.0, self.client_core - self.wrk_cpu - self.server_cpu_client_core
        )

    @property
    def clean(self) -> bool:
        return self.non_2xx == 0 and self.socket_errors == 0 and self.lost in (None, 0)

    @property
    def all_durable(self) -> bool:
        """trackd: as many envelopes on disk as 200s, and each 200's request_id found."""
        return self.durable is not None and self.durable >= self.ok and self.lost == 0


@dataclass
class Options:
    seconds: float
    warmup: float
    connections: int
    paced_connections: int
    pin: bool
    profile_dir: Path | None
    scratch: Path
    edge_only: bool
    retries: int = 0
    max_interference: float = 25.0
    drain_deadline: float = 120.0  # seconds to wait for the lag to drain after a burst
    probe_deadline: float = 30.0  # seconds after the run for the last probes to become readable
    paced_2core: bool = True  # measure trackd-2core@50% too
    only: tuple[str, ...] = ()  # these servers at max rate, nothing else (--only)
    scale_out: bool = False  # the trackd-edge-js rows (NATS, Redis and PostgreSQL reachable)


@dataclass
class MemorySample:
    t: float  # seconds since sampling started
    rss_mb: float  # VmRSS of the server and its descendants, summed (shared pages counted twice)
    pss_mb: float  # Pss from smaps_rollup, summed (shared pages divided among their users)
    processes: int
    parent_rss_mb: float = 0.0  # of rss_mb: the server process itself (trackd's edge)


@dataclass
class Soak:
    """trackd at max rate (closed loop, single-event) for ``row.seconds``, RSS sampled each
    second."""

    row: Result
    window_s: float  # the length of the first and last windows averaged
    samples: list[MemorySample]

    def _mean(self, first: bool) -> float:
        end = self.samples[-1].t
        inside = [
            s.rss_mb
            for s in self.samples
            if (s.t <= self.window_s if first else s.t >= end - self.window_s)
        ]
        return sum(inside) / len(inside)

    @property
    def first_mean_mb(self) -> float:
        return self._mean(first=True)

    @property
    def last_mean_mb(self) -> float:
        return self._mean(first=False)

    @property
    def max_mb(self) -> float:
        return max(s.rss_mb for s in self.samples)

    @property
    def growth_mb(self) -> float:
        return self.last_mean_mb - self.first_mean_mb
