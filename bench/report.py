"""The printed report: the results table, durability, freshness, memory, and the issue's targets."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from bench.model import SINGLE, Result, Soak

MEMORY_LIMIT_MB = 250.0  # issue 14
#: our reading of "flat": the soak's last 10 s at most this much above its first 10 s
FLAT_PERCENT = 5.0
FRESH_MS = 1000.0
#: issue 14: a 10 s burst of 100-event requests drained within this long after wrk stops
DRAIN_S = 2.0

HEADER = (
    f"{'body':<11}{'server':<16}{'req/s':>10}{'events/s':>12}{'p50 ms':>9}{'p99 ms':>9}"
    f"{'non-2xx':>9}{'sock err':>9}{'req/s/nginx':>13}{'ev/s/nginx':>12}{'srv CPU':>9}"
    f"{'wrk CPU':>9}{'core0':>7}{'core1':>7}{'other':>7}{'RSS MB':>8}{'PSS MB':>8}"
)


LEGEND = """\
p50/p99: wrk's latency (closed loop); @50% rows: from each request's scheduled time (open loop).
srv CPU, wrk CPU: those processes' CPU, % of one core. core0 (server), core1 (wrk): how busy
each core was, kernel work included. other: core time that went to neither: other load on the
machine, plus the kernel's disk and network work done outside the two processes (5-15% when the
machine is quiet). A measurement over --max-interference is made again; the least disturbed
attempt is kept. trackd-2core: the edge on core 0, its processor child on core 1 beside wrk (srv
CPU counts both). RSS MB, PSS MB: the most the server's processes (the server and every
descendant: trackd's processor child, nginx's worker) took together, sampled each second while
wrk ran; summed RSS counts shared pages once per process, PSS divides them."""


def table(results: list[Result]) -> str:
    """A row per result; the ratio columns are against nginx's row of the same body, blank in a
    partial run (`--only`) that left nginx out."""
    lines = [HEADER, "-" * len(HEADER)]
    for r in results:
        ceiling = next((x.rps for x in results if x.server == "nginx" and x.body == r.body), 0)
        ratios = (
            f"{r.rps / ceiling:>13.3f}{r.eps / ceiling:>12.3f}"
            if ceiling
            else f"{'-':>13}{'-':>12}"
        )
        lines.append(
            f"{r.body:<11}{r.server:<16}{r.rps:>10,.0f}{r.eps:>12,.0f}{r.p50_ms:>9.2f}"
            f"{r.p99_ms:>9.2f}{r.non_2xx:>9}{r.socket_errors:>9}{ratios}"
            f"{r.server_cpu:>8.0f}%{r.wrk_cpu:>8.0f}%"
            f"{r.server_core:>6.0f}%{r.client_core:>6.0f}%{r.interference:>6.0f}%"
            f"{r.rss_max_mb or 0:>8.1f}{r.pss_max_mb or 0:>8.1f}"
        )
    return "\n".join(lines)


def find(results: list[Result], server: str, body: str) -> Result:
    return next(r for r in results if r.server == server and r.body == body)


def targets(results: list[Result], soaked: Soak | None) -> list[str]:
    """Issue 14's targets, measured against what this run saw."""
    single, batch = SINGLE, "100 events"
    nginx = find(results, "nginx", single).rps
    two_core = find(results, "trackd-2core", single).rps / nginx
    alone = [r for r in results if r.server == "trackd-edge" and r.body == single]
    paced = next(  # the smoke paces only trackd
        (r for r in results if r.server == "trackd-2core@50%" and r.body == single),
        find(results, "trackd@50%", single),
    )
    achieved = paced.rps / (paced.target_rate or 1)
    burst = find(results, "trackd-2core", batch)
    events = burst.eps / find(results, "nginx", batch).rps
    kept_up = burst.drain_s is not None and burst.drain_s <= DRAIN_S
    drained = f"drained in {burst.drain_s:.2f} s" if burst.drain_s is not None else "not in time"
    trackd = [r for r in results if r.server.startswith("trackd")]
    if soaked is not None:
        trackd.append(soaked.row)
    durable = all(r.all_durable for r in trackd)
    non_2xx = sum(r.non_2xx + r.socket_errors for r in trackd)
    lines = [
        f"single-event req/s, trackd-2core >= 0.30 x nginx: {two_core:.3f} x -> "
        f"{verdict(two_core >= 0.30)}",
        f"every 200 durable (each 200's request_id on disk after SIGKILL, every trackd run): "
        f"{'yes' if durable else 'NO'} -> {verdict(durable)}",
        f"single-event p99 < 5 ms at half the max rate ({paced.server}): {paced.p99_ms:.2f} ms "
        f"at {paced.rps:,.0f} req/s ({100 * achieved:.0f}% of the {paced.target_rate:,.0f} asked)"
        f" -> {verdict(paced.p99_ms < 5 and achieved > 0.95)}",
        *disk_floor(paced),
        f"zero non-2xx from trackd: {non_2xx} -> {verdict(non_2xx == 0)}",
        f"100-event events/s >= 2 x nginx req/s (trackd-2core): {events:.2f} x -> "
        f"{verdict(events >= 2)}",
        f"... with the processor keeping up (the lag drained within {DRAIN_S:g} s of the "
        f"{burst.seconds:.0f} s burst): {burst.lag_at_end or 0:,} events lagging, {drained} -> "
        f"{verdict(kept_up)}",
    ]
    if alone:  # not in a run with --no-edge-only (the smoke)
        edge = alone[0].rps / nginx
        lines.insert(
            1,
            f"single-event req/s, trackd-edge (the edge alone) >= 0.40 x nginx: {edge:.3f} x -> "
            f"{verdict(edge >= 0.40)}",
        )
    lines += memory_targets(trackd, soaked) + freshness_targets(results)
    return lines + scale_out_targets(results)


def disk_floor(paced: Result) -> list[str]:
    """What the disk alone did at the paced row's rate (bench/disk.py), right after it."""
    if paced.disk is None:
        return []
    d = paced.disk
    return [
        f"... the disk alone at {d.rate:,.0f} commits/s (bench/disk.py, one SQLite commit per "
        f"row): p50 {d.p50_ms:.2f} ms, p99 {d.p99_ms:.2f}, p99.9 {d.p999_ms:.2f}, max "
        f"{d.max_ms:.2f}; {d.over_2ms} of {d.commits:,} commits over 2 ms; so a request "
        f"arriving at random waits at least {d.floor_p99_ms:.2f} ms (p99) for its commit"
    ]


def scale_out_targets(results: list[Result]) -> list[str]:
    """The JetStream edge against the embedded edge, single-event, where this run has both."""
    try:
        embedded, js = find(results, "trackd-edge", SINGLE), find(results, "trackd-edge-js", SINGLE)
    except StopIteration:
        return []
    ratio = js.rps / embedded.rps
    return [
        f"single-event req/s of trackd-edge-js >= 0.7 x trackd-edge: {js.rps:,.0f} / "
        f"{embedded.rps:,.0f} = {ratio:.3f} x -> {verdict(ratio >= 0.7)}"
    ]


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def memory_targets(trackd: list[Result], soaked: Soak | None) -> list[str]:
    at_max = [r for r in trackd if r.target_rate is None and r.rss_max_mb is not None]
    worst = max(at_max, key=lambda r: r.rss_max_mb or 0.0)
    peak = worst.rss_max_mb or 0.0
    lines = [
        f"all trackd processes < {MEMORY_LIMIT_MB:.0f} MB RSS at max load (summed RSS, most of "
        f"every max-rate row{' and the soak' if soaked else ''}): {peak:.1f} MB ({worst.body}, "
        f"{worst.server}) -> {verdict(peak < MEMORY_LIMIT_MB)}"
    ]
    if soaked is not None:
        growth = 100 * soaked.growth_mb / soaked.first_mean_mb
        lines.append(
            f"RSS flat over a {soaked.row.seconds:.0f} s soak (last {soaked.window_s:g} s mean at "
            f"most {FLAT_PERCENT:g}% above the first): {soaked.growth_mb:+.1f} MB "
            f"({growth:+.1f}%) -> {verdict(growth <= FLAT_PERCENT)}"
        )
    return lines


def freshness_targets(results: list[Result]) -> list[str]:
    lines = []
    paced = find(results, "trackd@50%", SINGLE)
    fresh = paced.freshness
    if fresh is not None:
        ok = fresh.readable > 0 and fresh.unreadable == 0 and fresh.p99_ms < FRESH_MS
        lines.append(
            f"at half the max rate an event is readable within 1 s (p99, send-200 to readable, "
            f"trackd@50%): {fresh.p99_ms:,.0f} ms over {fresh.readable} probes "
            f"({fresh.unreadable} never readable) -> {verdict(ok)}"
        )
    bursts = [r for r in results if r.server == "trackd" and r.lag_at_end is not None]
    if bursts:
        drained = all(r.drain_s is not None for r in bursts)
        each = "; ".join(
            f"{r.body}: {r.lag_at_end:,} events lagging when wrk stopped, 0 after "
            + (f"{r.drain_s:.2f} s" if r.drain_s is not None else "NOT within the deadline")
            for r in bursts
        )
        lines.append(
            f"after a burst the lag drains (trackd's max-rate rows): {each} -> {verdict(drained)}"
        )
    return lines


def memory(results: list[Result]) -> list[str]:
    return [
        f"{r.body:<11}{r.server:<16} RSS summed {r.rss_max_mb:6.1f} MB (the edge alone up to "
        f"{r.rss_parent_max_mb or 0:6.1f}, its children up to {r.rss_children_max_mb or 0:6.1f});"
        f" PSS summed {r.pss_max_mb or 0:6.1f} MB; {r.memory_samples} samples"
        for r in results
        if r.server.startswith("trackd") and r.rss_max_mb is not None
    ]


def freshness(results: list[Result]) -> list[str]:
    lines = []
    for r in results:
        f = r.freshness
        if f is not None:
            lines.append(
                f"{r.body:<11}{r.server:<16} probes: {f.sent} sent (one each "
                f"{f.interval_ms:.0f} ms), {f.ok} answered 200, {f.readable} readable, "
                f"{f.unreadable} not; send-200 to readable (polled each {f.poll_ms:.0f} ms): "
                f"p50 {f.p50_ms:,.0f} ms, p99 {f.p99_ms:,.0f} ms, max {f.max_ms:,.0f} ms"
            )
    return lines


def drains(results: list[Result]) -> list[str]:
    lines = []
    for r in results:
        if r.lag_at_end is None:
            continue
        if r.drain_s is None:
            took = "NOT drained within the deadline"
        else:
            rate = f", {r.lag_at_end / r.drain_s:,.0f} events/s" if r.drain_s > 0 else ""
            took = f"drained to 0 in {r.drain_s:.2f} s{rate}"
        lines.append(
            f"{r.body:<11}{r.server:<16} lag when wrk stopped: {r.lag_at_end:>9,} events; {took}"
        )
    return lines


def soak_report(soaked: Soak) -> list[str]:
    r = soaked.row
    w = f"{soaked.window_s:g} s"
    step = max(1, len(soaked.samples) // 12)
    series = ", ".join(f"{s.t:.0f}s {s.rss_mb:.0f}" for s in soaked.samples[::step])
    return [
        f"trackd, {r.body}, closed loop, {r.seconds:.0f} s: {r.rps:,.0f} req/s, p99 "
        f"{r.p99_ms:.2f} ms, {r.non_2xx} non-2xx, {r.socket_errors} socket errors, "
        f"other {r.interference:.0f}%",
        f"RSS summed: first {w} mean {soaked.first_mean_mb:.1f} MB, last {w} mean "
        f"{soaked.last_mean_mb:.1f} MB, max {soaked.max_mb:.1f} MB, growth "
        f"{soaked.growth_mb:+.1f} MB ({100 * soaked.growth_mb / soaked.first_mean_mb:+.1f}%); "
        f"the edge alone up to {r.rss_parent_max_mb or 0:.1f} MB, its child up to "
        f"{r.rss_children_max_mb or 0:.1f} MB; max PSS summed {r.pss_max_mb or 0:.1f} MB; "
        f"{len(soaked.samples)} samples",
        f"RSS over time (MB): {series}",
        *durability([r]),
    ]


def soak_json(soaked: Soak) -> dict[str, Any]:
    return {
        **asdict(soaked),
        "first_mean_mb": soaked.first_mean_mb,
        "last_mean_mb": soaked.last_mean_mb,
        "max_mb": soaked.max_mb,
        "growth_mb": soaked.growth_mb,
    }


def durability(results: list[Result]) -> list[str]:
    return [
        f"{r.body:<11}{r.server:<16} 200s: {r.ok:>9,}  on disk after SIGKILL: {r.durable:>9,}"
        f" envelopes, {r.lost} of the 200s missing ({r.backlog:,} still queued, warmup included)  "
        f"{'OK' if r.all_durable else 'LOST'}"
        for r in results
        if r.durable is not None
    ]
