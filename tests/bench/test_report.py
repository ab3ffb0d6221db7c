"""bench/report.py's table: its ratio columns are against nginx's row of the same body."""

from __future__ import annotations

from bench.model import Result
from bench.report import table


def result(server: str, body: str, requests: int) -> Result:
    return Result(
        server, body, 1 if body == "1 event" else 100, 10.0, requests, {"2xx": requests}, 0,
        1.0, 2.0, 90.0, 50.0, 95.0, 60.0,
    )  # fmt: skip


def test_each_row_is_divided_by_nginx_of_its_body() -> None:
    rows = table([result("nginx", "1 event", 800_000), result("trackd-edge", "1 event", 80_000)])
    edge = rows.splitlines()[3].split()
    assert edge[:4] == ["1", "event", "trackd-edge", "8,000"]
    assert edge[9:11] == ["0.100", "0.100"]


def test_a_partial_run_without_nginx_leaves_the_ratios_blank() -> None:
    rows = table([result("trackd-edge", "1 event", 80_000), result("nginx", "100 events", 10)])
    edge = rows.splitlines()[2].split()
    assert edge[:4] == ["1", "event", "trackd-edge", "8,000"]
    assert edge[9:11] == ["-", "-"]
