"""`bench/run.py --smoke`, as CI runs it: every server answers, only with 2xx, every 200 of
trackd is on disk after SIGKILL, and the run reports memory, freshness probes and the lag after
a burst. No timing is asserted: the numbers belong in BENCHMARKS.md.

Needs wrk and nginx (`apt-get install -y nginx-light wrk`, done by scripts/services): skipped
where they are missing, a failure under CI. The `trackd-edge-js` rows (the edge on NATS
JetStream + Redis, workspaces in PostgreSQL) are expected where those three run, and always
under CI: a missing engine there fails the row tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.contracts import postgres_db
from tests.services import IN_CI, nats_available, needs_service, redis_available

ROOT = Path(__file__).resolve().parents[2]
BODIES = ("1 event", "100 events")
SCALE_OUT = IN_CI or (nats_available() and redis_available() and postgres_db.available())
SERVERS = ("nginx", "trackd", "fastapi", "trackd@50%", "trackd-2core")  # no 2core@50% in smoke
SERVERS += ("trackd-edge-js",) if SCALE_OUT else ()
PROCESSING = ("trackd", "trackd-2core")  # the processor runs: the lag drains, probes are read
ROW = re.compile(
    r"^(?P<body>1 event|100 events)\s+(?P<server>\S+)\s+(?P<rps>[\d,]+)\s+(?P<eps>[\d,]+)"
    r"\s+[\d.]+\s+[\d.]+\s+(?P<non2xx>\d+)\s+(?P<sockerr>\d+)\s"
)
DURABLE = re.compile(
    r"^(?P<body>1 event|100 events)\s+(?P<server>\S+)\s+200s:\s+(?P<ok>[\d,]+)\s+on disk after "
    r"SIGKILL:\s+(?P<durable>[\d,]+) envelopes, (?P<lost>\d+) of the 200s missing .*"
    r"\s(?P<verdict>OK|LOST)$"
)


def _tools_present() -> bool:
    nginx = shutil.which("nginx") or (Path("/usr/sbin/nginx").exists() and "/usr/sbin/nginx")
    return bool(shutil.which("wrk") and nginx)


pytestmark = [pytest.mark.e2e, needs_service("wrk and nginx", _tools_present)]


@pytest.fixture(scope="module")
def smoke(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    results = tmp_path_factory.mktemp("bench") / "results.json"
    proc = subprocess.run(
        [sys.executable, "bench/run.py", "--smoke", "--json", str(results)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
        env={**os.environ, "TRACKD_BENCH_POSTGRES": postgres_db.SERVER},
    )
    return proc, results


def test_smoke_bench_completes_and_prints_a_row_per_server_and_body(
    smoke: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    proc, _ = smoke
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [m.groupdict() for m in map(ROW.match, proc.stdout.splitlines()) if m]
    assert [(r["body"], r["server"]) for r in rows] == [(b, s) for b in BODIES for s in SERVERS]
    assert all(int(r["rps"].replace(",", "")) > 0 for r in rows), proc.stdout
    assert all((r["non2xx"], r["sockerr"]) == ("0", "0") for r in rows), proc.stdout


def test_every_server_answered_every_request_with_2xx(
    smoke: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    proc, results = smoke
    assert proc.returncode == 0, proc.stdout + proc.stderr
    measured = json.loads(results.read_text())["rows"]
    assert [(r["body"], r["server"]) for r in measured] == [(b, s) for b in BODIES for s in SERVERS]
    for result in measured:
        assert result["requests"] > 0, result
        assert sum(result["statuses"].values()) == result["requests"], result
        assert set(result["statuses"]) == {"200"}, result
        assert result["socket_errors"] == 0, result


def test_every_200_of_trackd_was_on_disk_after_sigkill(
    smoke: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    proc, results = smoke
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [m.groupdict() for m in map(DURABLE.match, proc.stdout.splitlines()) if m]
    trackd = [(b, s) for b in BODIES for s in SERVERS if s.startswith("trackd")]
    assert [(d["body"], d["server"]) for d in lines] == trackd
    for line in lines:
        ok, durable = (int(line[k].replace(",", "")) for k in ("ok", "durable"))
        assert durable >= ok > 0, line
        assert (line["lost"], line["verdict"]) == ("0", "OK"), line
    measured = {(r["body"], r["server"]): r for r in json.loads(results.read_text())["rows"]}
    for key in trackd:
        assert measured[key]["durable"] >= measured[key]["statuses"]["200"], measured[key]
        assert measured[key]["lost"] == 0, measured[key]


def test_memory_of_every_row_and_of_the_soak_is_reported(
    smoke: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    proc, results = smoke
    assert proc.returncode == 0, proc.stdout + proc.stderr
    measured = json.loads(results.read_text())
    for row in measured["rows"]:
        assert row["memory_samples"] >= 2, row  # at the start and at the end, at least
        assert row["rss_max_mb"] > 0 and row["pss_max_mb"] > 0, row
    soak = measured["soak"]
    assert soak["row"]["server"] == "trackd-soak"
    assert soak["row"]["requests"] > 0 and set(soak["row"]["statuses"]) == {"200"}, soak["row"]
    assert soak["row"]["lost"] == 0 and soak["row"]["durable"] >= soak["row"]["statuses"]["200"]
    assert len(soak["samples"]) >= 2
    assert all(s["processes"] == 2 and s["rss_mb"] > 0 for s in soak["samples"]), soak
    assert soak["max_mb"] == max(s["rss_mb"] for s in soak["samples"])
    assert "memory soak (trackd's processes, RSS summed, sampled each second):" in proc.stdout
    assert re.search(r"RSS summed: first [\d.]+ s mean [\d.]+ MB, last", proc.stdout), proc.stdout


def test_freshness_probes_were_sent_and_read_back_beside_the_half_rate_row(
    smoke: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    proc, results = smoke
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {(r["body"], r["server"]): r for r in json.loads(results.read_text())["rows"]}
    probed = [key for key, row in rows.items() if row["freshness"] is not None]
    assert probed == [("1 event", "trackd@50%")]
    for key in probed:
        fresh = rows[key]["freshness"]
        assert fresh["sent"] > 0 and fresh["ok"] == fresh["sent"], fresh
        assert 0 < fresh["readable"] <= fresh["ok"], fresh
    lines = [ln for ln in proc.stdout.splitlines() if " probes: " in ln]
    assert [ln.split()[2] for ln in lines] == ["trackd@50%"], proc.stdout


def test_the_disk_alone_is_measured_at_the_half_rate_rows_rate(
    smoke: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """bench/disk.py beside the paced single-event row: the floor under its p99."""
    proc, results = smoke
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {(r["body"], r["server"]): r for r in json.loads(results.read_text())["rows"]}
    measured = [key for key, row in rows.items() if row["disk"] is not None]
    assert measured == [("1 event", "trackd@50%")]
    paced = rows[("1 event", "trackd@50%")]
    disk = paced["disk"]
    assert disk["rate"] == round(paced["target_rate"])
    assert disk["commits"] == disk["rows"] == round(disk["rate"] * 2)  # every commit's row kept
    assert 0 < disk["p50_ms"] <= disk["p99_ms"] <= disk["p999_ms"] <= disk["max_ms"]
    assert disk["p50_ms"] <= disk["floor_p99_ms"]  # a request waits for one commit at least
    assert "... the disk alone at " in proc.stdout, proc.stdout


def test_the_lag_after_each_max_rate_row_with_a_processor_is_reported(
    smoke: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    proc, results = smoke
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(results.read_text())["rows"]
    drained = [(r["body"], r["server"]) for r in rows if r["lag_at_end"] is not None]
    assert drained == [(b, s) for b in BODIES for s in PROCESSING]
    assert all(r["lag_at_end"] >= 0 for r in rows if r["lag_at_end"] is not None)
    lines = [ln for ln in proc.stdout.splitlines() if "lag when wrk stopped:" in ln]
    assert len(lines) == len(drained), proc.stdout


@needs_service("postgresql", postgres_db.available)
@needs_service("nats", nats_available)
@needs_service("redis", redis_available)
def test_the_jetstream_edge_rows_are_measured_and_every_200_is_in_the_stream(
    smoke: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    proc, results = smoke
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no trackd-edge-js rows" not in proc.stdout, proc.stdout
    rows = [r for r in json.loads(results.read_text())["rows"] if r["server"] == "trackd-edge-js"]
    assert [r["body"] for r in rows] == list(BODIES), proc.stdout
    for row in rows:
        assert row["requests"] > 0 and set(row["statuses"]) == {"200"}, row
        # durable: the messages the stream held after SIGKILL, less the warmup's (none in smoke)
        assert row["durable"] >= row["statuses"]["200"] and row["lost"] == 0, row
        assert row["lag_at_end"] is None and row["freshness"] is None, row  # no worker ran
