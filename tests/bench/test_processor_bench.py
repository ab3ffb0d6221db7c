"""`bench/processor.py` on a few hundred events: it fills the queue, `trackd worker` drains it,
and the store holds exactly what was put. No timing is asserted: the figures belong in the
benchmark's own output."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 250


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("bench-processor")
    command = [sys.executable, "bench/processor.py", "--events", str(EVENTS)]
    command += ["--actions", "1", "--actions", "100", "--json", str(out / "results.json")]
    command += ["--keep", str(out / "data"), "--timeout", "60"]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=100)
    return proc, out


def test_the_benchmark_exits_0_and_reports_both_envelope_sizes(
    run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    proc, out = run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(":")[0].strip() for line in lines] == [
        "1-event envelopes",
        "100-event envelopes",
    ]
    assert all(
        line.endswith(f"store holds {EVENTS} events, counted {EVENTS}: OK") for line in lines
    )
    results = json.loads((out / "results.json").read_text())["results"]
    assert [(r["actions"], r["envelopes"], r["stored_events"], r["ok"]) for r in results] == [
        (1, EVENTS, EVENTS, True),
        (100, 3, EVENTS, True),
    ]


@pytest.mark.parametrize("actions", [1, 100])
def test_the_store_holds_exactly_the_events_put_and_the_queue_is_drained(
    run: tuple[subprocess.CompletedProcess[str], Path], actions: int
) -> None:
    data = run[1] / "data" / f"actions-{actions}"
    with sqlite3.connect(data / "trackd.db") as store:
        ids = [r[0] for r in store.execute("SELECT event_id FROM events")]
        counted = store.execute(
            "SELECT value FROM counters WHERE workspace = 'BENCH' AND name = 'processed_events'"
        ).fetchone()
    assert len(ids) == len(set(ids)) == EVENTS
    assert counted == (EVENTS,)
    with sqlite3.connect(data / "queue.db") as queue:
        (last,) = queue.execute("SELECT seq FROM sqlite_sequence WHERE name = 'log'").fetchone()
        (position,) = queue.execute(
            "SELECT position FROM consumers WHERE name = 'processor'"
        ).fetchone()
    assert position == last == (EVENTS if actions == 1 else 3)
