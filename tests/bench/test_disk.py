"""bench/disk.py's floor: the wait of a request arriving at a random time for its commit."""

from __future__ import annotations

import pytest

from bench.disk import arrival_waits


def test_regular_commits_hold_a_request_between_one_and_two_commits() -> None:
    spans = [(t / 1000, (t + 1) / 1000) for t in range(0, 2000, 2)]  # 1 ms commits, 1 ms apart
    waits = arrival_waits(spans, arrivals=10_000)
    assert waits[0] == pytest.approx(1.0, abs=1e-6)  # between commits: the next one whole
    assert waits[-1] <= 2.0 + 1e-6  # at a commit's start: it whole, then the next
    assert 1.0 < waits[len(waits) // 2] < 2.0


def test_a_stalled_commit_holds_the_requests_arriving_while_it_runs() -> None:
    spans = [(t / 1000, (t + 1) / 1000) for t in range(0, 2000, 2)]
    spans[500] = (1.000, 1.100)  # one commit stalls 100 ms: 1.000-1.100 s
    spans = [s for s in spans if not (1.000 < s[0] < 1.100)]  # the writer waited for it
    waits = arrival_waits(spans, arrivals=20_000)
    share = sum(w > 5 for w in waits) / len(waits)
    assert share == pytest.approx(0.095 / 1.95, rel=0.15)  # the stall's share of the run
    assert max(waits) == pytest.approx(101.0, abs=0.5)
