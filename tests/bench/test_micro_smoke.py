"""`bench/decode.py` and `bench/edge.py` at a small size: every step runs on the typed path and
both roads answer every request 200 (`bench/edge.py` asserts it per request). No timing is
asserted: the ratios belong in BENCHMARKS.md."""

from __future__ import annotations

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
