"""The printed report: the results table, durability, and the issue's targets."""

from __future__ import annotations

from bench.model import Result

HEADER = (
    f"{'body':<11}{'server':<16}{'req/s':>10}{'events/s':>12}{'p50 ms':>9}{'p99 ms':>9}"
    f"{'non-2xx':>9}{'sock err':>9}{'req/s/nginx':>13}{'ev/s/nginx':>12}{'srv CPU':>9}"
    f"{'wrk CPU':>9}{'core0':>7}{'core1':>7}{'other':>7}"
)


LEGEND = """\
p50/p99: wrk's latency (closed loop); @50% rows: from each request's scheduled time (open loop).
srv CPU, wrk CPU: those processes' CPU, % of one core. core0 (server), core1 (wrk): how busy
each core was, kernel work included. other: core time that went to neither: other load on the
machine, plus the kernel's disk and network work done outside the two processes (5-15% when the
machine is quiet). A measurement over --max-interference is made again; the least disturbed
attempt is kept."""


def table(results: list[Result]) -> str:
    lines = [HEADER, "-" * len(HEADER)]
    for r in results:
        ceiling = next(x for x in results if x.server == "nginx" and x.body == r.body)
        lines.append(
            f"{r.body:<11}{r.server:<16}{r.rps:>10,.0f}{r.eps:>12,.0f}{r.p50_ms:>9.2f}"
            f"{r.p99_ms:>9.2f}{r.non_2xx:>9}{r.socket_errors:>9}{r.rps / ceiling.rps:>13.3f}"
            f"{r.eps / ceiling.rps:>12.3f}{r.server_cpu:>8.0f}%{r.wrk_cpu:>8.0f}%"
            f"{r.server_core:>6.0f}%{r.client_core:>6.0f}%{r.interference:>6.0f}%"
        )
    return "\n".join(lines)


def find(results: list[Result], server: str, body: str) -> Result:
    return next(r for r in results if r.server == server and r.body == body)


def targets(results: list[Result]) -> list[str]:
    """The issue's targets, measured against what this run saw."""
    single, batch = "1 event", "100 events"
    ratio = find(results, "trackd", single).rps / find(results, "nginx", single).rps
    paced = find(results, "trackd@50%", single)
    achieved = paced.rps / (paced.target_rate or 1)
    events = find(results, "trackd", batch).eps / find(results, "nginx", batch).rps
    trackd = [r for r in results if r.server.startswith("trackd")]
    durable = all(r.all_durable for r in trackd)
    non_2xx = sum(r.non_2xx + r.socket_errors for r in trackd)

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    return [
        f"single-event req/s >= 0.2 x nginx: {ratio:.3f} x -> {verdict(ratio >= 0.2)}",
        f"every 200 durable (each 200's request_id on disk after SIGKILL, every trackd run): "
        f"{'yes' if durable else 'NO'} -> {verdict(durable)}",
        f"single-event p99 < 10 ms at half the max rate: {paced.p99_ms:.2f} ms at "
        f"{paced.rps:,.0f} req/s ({100 * achieved:.0f}% of the {paced.target_rate:,.0f} asked)"
        f" -> {verdict(paced.p99_ms < 10 and achieved > 0.95)}",
        f"zero non-2xx from trackd: {non_2xx} -> {verdict(non_2xx == 0)}",
        f"100-event events/s >= 2 x nginx req/s (100-event requests): {events:.2f} x -> "
        f"{verdict(events >= 2)}",
    ]


def durability(results: list[Result]) -> list[str]:
    return [
        f"{r.body:<11}{r.server:<16} 200s: {r.ok:>9,}  on disk after SIGKILL: {r.durable:>9,}"
        f" envelopes, {r.lost} of the 200s missing ({r.backlog:,} still queued, warmup included)  "
        f"{'OK' if r.all_durable else 'LOST'}"
        for r in results
        if r.durable is not None
    ]
