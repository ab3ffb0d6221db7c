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
        return max(0.0, self.server_core - self.server_cpu) + max(
            0.0, self.client_core - self.wrk_cpu
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
