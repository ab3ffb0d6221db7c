"""`bench/run.py`'s command line: the measurements of one run, in order, then the report."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.engines import reachable
from bench.machine import background, machine
from bench.measure import measure
from bench.model import BODIES, SINGLE, Options, Result, Soak
from bench.profiling import Profile, profile, top_frames
from bench.report import (
    LEGEND,
    drains,
    durability,
    find,
    freshness,
    memory,
    scale_out_targets,
    soak_json,
    soak_report,
    table,
    targets,
)
from bench.soak import soak

PINNING = "server core 0, wrk core 1, trackd-2core's processor child core 1"


def run(opts: Options) -> list[Result]:
    if opts.only:
        return [measure(opts, name, body) for body in BODIES for name in opts.only]
    results = []
    for body in BODIES:
        for name in ("nginx", "trackd", "fastapi"):
            results.append(measure(opts, name, body))
        half = find(results, "trackd", body).rps / 2
        results.append(measure(opts, "trackd", body, rate=half))
        # the edge on core 0, its processor child on core 1 beside wrk
        results.append(measure(opts, "trackd-2core", body))
        if opts.paced_2core:  # not in --smoke: trackd@50% runs the same probe
            half = find(results, "trackd-2core", body).rps / 2
            results.append(measure(opts, "trackd-2core", body, rate=half))
        if opts.edge_only:  # where the time goes: the same server with processing held off
            results.append(measure(opts, "trackd-edge", body))
            half = find(results, "trackd-edge", body).rps / 2
            results.append(measure(opts, "trackd-edge", body, rate=half))
            # the same edge with /v1 through ASGI (TRACKD_FAST_PATH=0): what the fast path buys
            results.append(measure(opts, "trackd-edge-asgi", body))
        if opts.scale_out:  # the edge on JetStream + Redis, no worker (issue 14 item 4)
            results.append(measure(opts, "trackd-edge-js", body))
    return results


def run_request_log(opts: Options, rounds: int = 2) -> list[Result]:
    """Single-event trackd with its request log on (the default) and off, alternated `rounds`
    times on fresh servers, so that the machine's drift falls on both alike."""
    results = []
    for n in range(rounds):
        scratch = opts.scratch / f"round-{n}"  # each round's servers in folders of their own
        scratch.mkdir()
        for name in ("nginx", "trackd", "trackd-nolog"):
            results.append(measure(dataclasses.replace(opts, scratch=scratch), name, SINGLE))
    return results


def request_log_report(results: list[Result]) -> list[str]:
    on = [r.rps for r in results if r.server == "trackd"]
    off = [r.rps for r in results if r.server == "trackd-nolog"]
    ratio = sum(on) / sum(off) if sum(off) else 0.0
    return [
        f"single event, request log on:  {', '.join(f'{x:,.0f}' for x in on)} req/s",
        f"single event, request log off: {', '.join(f'{x:,.0f}' for x in off)} req/s",
        f"on / off: {ratio:.3f} (target: at least 0.95)",
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py", description="Track Event benchmark: nginx, trackd, a naive baseline"
    )
    parser.add_argument("--seconds", type=int, default=10, help="per measurement (10)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured, per server (1)")
    parser.add_argument("--connections", type=int, default=64, help="closed loop (64)")
    parser.add_argument("--paced-connections", type=int, default=32, help="open loop (32)")
    parser.add_argument("--smoke", action="store_true", help="2 s each, no warmup (CI)")
    parser.add_argument(
        "--soak", type=int, default=60, help="memory soak of trackd at max rate, s (60; smoke 3)"
    )
    parser.add_argument(
        "--no-edge-only", action="store_true", help="skip the trackd-edge rows (on unless --smoke)"
    )
    parser.add_argument(
        "--no-scale-out",
        action="store_true",
        help="skip the trackd-edge-js rows (run when NATS, Redis and PostgreSQL answer)",
    )
    parser.add_argument(
        "--retries", type=int, default=2, help="re-measure a disturbed measurement (2; smoke 0)"
    )
    parser.add_argument(
        "--max-interference",
        type=float,
        default=25.0,
        help="percent of the cores other work may take before a re-measure (25)",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not use taskset")
    parser.add_argument("--profile", type=Path, help="py-spy trackd into this folder")
    parser.add_argument(
        "--profile-server",
        default="trackd",
        help="the server --profile samples (trackd; e.g. trackd-edge-js)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--request-log",
        action="store_true",
        help="only single-event trackd with the request log on and off, alternated (issue 13)",
    )
    parser.add_argument(
        "--only",
        help="comma-separated servers, max rate only, e.g. nginx,trackd-edge,trackd-edge-asgi "
        "(a partial run: the table and durability, no targets)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.smoke:
        args.seconds, args.warmup, args.soak = 2, 0, min(args.soak, 3)
    missing = [tool for tool in ("wrk",) if shutil.which(tool) is None]
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        missing.append("nginx")
    if missing:
        print(f"bench: missing {', '.join(missing)} (apt-get install -y nginx-light wrk)")
        return 2
    absent = reachable()
    scale_out = not args.no_scale_out and not absent
    if absent and not args.no_scale_out:
        print(
            f"bench: no trackd-edge-js rows: {', '.join(absent)} not reachable (bench/engines.py)"
        )
    pin = not args.no_pin and shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    with tempfile.TemporaryDirectory(prefix="trackd-bench-") as scratch:
        opts = Options(
            args.seconds,
            args.warmup,
            args.connections,
            args.paced_connections,
            pin,
            args.profile,
            Path(scratch),
            not (args.smoke or args.no_edge_only),
            0 if args.smoke else args.retries,
            args.max_interference,
            drain_deadline=20.0 if args.smoke else 120.0,
            probe_deadline=20.0 if args.smoke else 30.0,
            paced_2core=not args.smoke,
            only=tuple(args.only.split(",")) if args.only else (),
            scale_out=scale_out,
        )
        print(f"machine: {machine()}")
        print(f"before the run: {background()}", flush=True)
        print(
            f"pinning: {PINNING if pin else 'none (trackd-2core is trackd)'}; "
            f"{args.seconds:g} s per measurement, soak {args.soak} s",
            flush=True,
        )
        if args.request_log:
            results = run_request_log(opts)
            print()
            print(table(results))
            print(LEGEND)
            print()
            print("request log (issue 13):")
            print("\n".join(f"  {line}" for line in request_log_report(results)))
            clean = all(r.non_2xx == 0 and r.socket_errors == 0 for r in results)
            return 0 if clean and all(r.all_durable for r in results if r.server != "nginx") else 1
        results = run(opts)
        soaked = soak(opts, args.soak) if args.soak > 0 and not opts.only else None
        profiles = (
            [profile(opts, body, args.profile, args.profile_server) for body in BODIES]
            if args.profile
            else []
        )
    print()
    print(table(results))
    print(LEGEND)
    print()
    print("durability (trackd):")
    print("\n".join(durability(results)))
    if opts.only:  # a partial run: its rows and their durability, nothing that needs the rest
        print_profiles(profiles)
        if args.json:
            args.json.write_text(json.dumps(to_json(results, None), indent=2))
        if lines := scale_out_targets(results):
            print()
            print("targets:")
            print("\n".join(f"  {line}" for line in lines))
        clean = all(r.non_2xx == 0 and r.socket_errors == 0 for r in results)
        durable = all(r.all_durable for r in results if r.server.startswith("trackd"))
        return 0 if clean and durable else 1
    print()
    print("memory (trackd's processes, the most over each row's samples, one a second):")
    print("\n".join(memory(results)))
    print()
    print("freshness (a probe beside wrk's load; see bench/freshness.py):")
    print("\n".join(freshness(results)))
    print()
    print("lag after the burst of each max-rate row (the stats route's lag_events):")
    print("\n".join(drains(results)))
    if soaked is not None:
        print()
        print("memory soak (trackd's processes, RSS summed, sampled each second):")
        print("\n".join(f"  {line}" for line in soak_report(soaked)))
    print()
    print("targets:")
    print("\n".join(f"  {line}" for line in targets(results, soaked)))
    print_profiles(profiles)
    if args.json:
        args.json.write_text(json.dumps(to_json(results, soaked), indent=2))
    rows = [*results, soaked.row] if soaked else results
    clean = all(r.non_2xx == 0 and r.socket_errors == 0 for r in rows)
    durable = all(r.all_durable for r in rows if r.server.startswith("trackd"))
    return 0 if clean and durable else 1


def print_profiles(profiles: list[Profile]) -> None:
    for prof in profiles:
        print(f"\nprofile of {prof.server}, {prof.body} (CPU of each thread, % of one core):")
        for name, cpu in prof.threads:
            print(f"  {cpu:5.1f}  {name}")
        print(f"where the thread holding the GIL was ({prof.raw.name}; self %, inclusive %):")
        for frame, own, incl in top_frames(prof.raw):
            print(f"  {own:5.1f} {incl:5.1f}  {frame}")


def to_json(results: list[Result], soaked: Soak | None) -> dict[str, Any]:
    return {
        "rows": [asdict(r) for r in results],
        "soak": soak_json(soaked) if soaked else None,
    }
