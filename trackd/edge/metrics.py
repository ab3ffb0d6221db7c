"""`GET /metrics` in Prometheus text format, and the edge's own counters.

The hot path only bumps integers in `EdgeCounters`; a scrape turns them, the store's counts and
the queue's lag into metric families rendered by `prometheus_client`. Request counters are per
process (with ``--workers N`` a scrape sees the worker that answered it); store- and queue-derived
values are the deployment's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from trackd.edge.registry import WorkspaceRegistry
from trackd.queue.base import PROCESSOR, Queue
from trackd.store.base import EventStore

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class EdgeCounters:
    """What this process's edge answered; `rejected` is drained into the store every second."""

    def __init__(self) -> None:
        self.responses: Counter[int] = Counter()
        self.accepted_events = 0
        self.warnings: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        #: Requests refused by admission control (also counted in `responses[503]`).
        self.shed = 0
        #: Idempotency-Keys used again for another body or endpoint (answered 422).
        self.idempotency_conflicts = 0
        # -- Request log (issue 13 item 1) --
        #: Entries the request log dropped: its buffer was full, or the store refused a batch.
        self.request_log_dropped = 0

    def take_rejected(self) -> dict[tuple[str, str], int]:
        taken = {(ws, "rejected_requests"): n for ws, n in self.rejected.items()}
        self.rejected.clear()
        return taken


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


async def render(
    counters: EdgeCounters, registry: WorkspaceRegistry, store: EventStore, queue: Queue
) -> bytes:
    requests = CounterMetricFamily(
        "trackd_requests", "Track Event responses by status", labels=["status"]
    )
    for status, n in sorted(counters.responses.items()):
        requests.add_metric([str(status)], n)
    shed = CounterMetricFamily(
        "trackd_requests_shed", "Track Event requests refused with 503 because the edge was behind"
    )
    shed.add_metric([], counters.shed)
    conflicts = CounterMetricFamily(
        "trackd_idempotency_conflicts",
        "Requests answered 422: their Idempotency-Key was used for another body or endpoint",
    )
    conflicts.add_metric([], counters.idempotency_conflicts)
    accepted = CounterMetricFamily("trackd_events_accepted", "Events in 200 responses")
    accepted.add_metric([], counters.accepted_events)
    warned = CounterMetricFamily(
        "trackd_edge_warnings", "Drops, cuts and rewrites at the edge", labels=["reason"]
    )
    for reason, n in sorted(counters.warnings.items()):
        warned.add_metric([reason], n)
    processed = CounterMetricFamily(
        "trackd_events_processed", "Events stored", labels=["workspace"]
    )
    dropped = CounterMetricFamily(
        "trackd_events_dropped", "Events dropped whole", labels=["workspace"]
    )
    for workspace_id in registry.ids():
        counts = await store.counts(workspace_id)
        processed.add_metric([workspace_id], counts.get("processed_events", 0))
        dropped.add_metric([workspace_id], counts.get("dropped_events", 0))
    lag = GaugeMetricFamily("trackd_queue_lag_envelopes", "Envelopes not yet processed")
    lag.add_metric([], await queue.lag(PROCESSOR))
    # -- Request log (issue 13 item 1) --
    request_log_dropped = CounterMetricFamily(
        "trackd_request_log_dropped",
        "Request log entries dropped before they were written (a full buffer, a store failure)",
    )
    request_log_dropped.add_metric([], counters.request_log_dropped)
    collector_registry = CollectorRegistry(auto_describe=False)
    families = [requests, shed, conflicts, accepted, warned, processed, dropped, lag]
    families.append(request_log_dropped)
    collector_registry.register(_Families(families))
    return generate_latest(collector_registry)
