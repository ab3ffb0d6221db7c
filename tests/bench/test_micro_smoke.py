"""`bench/decode.py`, `bench/edge.py` and `bench/disk.py` at a small size: every step runs on
the typed path, both roads answer every request 200 (`bench/edge.py` asserts it per request),
and every commit of the disk's loop is in its file. No timing is asserted: the ratios belong
in BENCHMARKS.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def bench(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_decode_runs_every_step() -> None:
    out = bench("bench/decode.py", "--loops", "2", "--repeat", "1")
    for step in ("typed_decode", "times", "decode_event", "envelope"):
        assert f"  {step} " in out


def test_edge_answers_every_request_on_both_roads() -> None:
    out = bench("bench/edge.py", "--requests", "50", "--repeat", "1", "--actions", "3")
    assert "  fast " in out and "  asgi " in out


def test_one_step_and_one_road_run_alone_for_callgrind() -> None:
    bench("bench/decode.py", "--step", "times", "--loops", "2")
    bench("bench/edge.py", "--road", "fast", "--requests", "20")


def test_the_disk_loop_commits_each_row_at_the_rate_asked() -> None:
    out = json.loads(bench("bench/disk.py", "--rate", "400", "--seconds", "0.5", "--json"))
    assert (out["rate"], out["commits"], out["rows"]) == (400, 200, 200)
    assert 0 < out["p50_ms"] <= out["p99_ms"] <= out["p999_ms"] <= out["max_ms"]
    assert out["p50_ms"] <= out["floor_p99_ms"]  # a request waits for one commit at least
