"""`bench/reads.py` at a small size, as CI runs it: the fill stores exactly what it put, a real
`trackd serve` answers every read 200, and the export writes every event. No timing is
asserted: the numbers at 10 million events belong in BENCHMARKS.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.contracts import postgres_db
from tests.services import needs_service

ROOT = Path(__file__).resolve().parents[2]
READS = ("profile", "events_by_customer", "events_by_name_range", "schema", "stats")


def run(tmp_path: Path, *store: str) -> dict[str, object]:
    out = tmp_path / "reads.json"
    proc = subprocess.run(
        [sys.executable, "bench/reads.py", "--events", "3000", "--users", "300", "--names", "20",
         "--samples", "10", "--json", str(out), *store],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result: dict[str, object] = json.loads(out.read_text())
    return result


def check(result: dict[str, object], store: str) -> None:
    assert result["store"] == store
    assert result["events"] == 3000
    reads = result["reads"]
    assert isinstance(reads, dict) and sorted(reads) == sorted(READS)
    for timings in reads.values():
        assert 0 < timings["p50_ms"] <= timings["p99_ms"] <= timings["max_ms"]
    assert isinstance(result["export_events_per_s"], int) and result["export_events_per_s"] > 0
    assert isinstance(result["bytes_per_event"], int) and result["bytes_per_event"] > 0


@pytest.mark.e2e
def test_reads_bench_on_sqlite(tmp_path: Path) -> None:
    check(run(tmp_path), "sqlite")


@pytest.mark.e2e
@needs_service("PostgreSQL", postgres_db.available)
def test_reads_bench_on_postgres(tmp_path: Path) -> None:
    check(run(tmp_path, "--store", postgres_db.store_url()), "postgresql")
