"""`bench/run.py`'s command line: the measurements of one run, in order, then the report."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from bench.machine import background, machine
from bench.measure import measure
from bench.model import BODIES, Options, Result
from bench.profiling import profile, top_frames
from bench.report import LEGEND, durability, find, table, targets


def run(opts: Options) -> list[Result]:
    results = []
    for body in BODIES:
        for name in ("nginx", "trackd", "fastapi"):
            results.append(measure(opts, name, body))
        half = find(results, "trackd", body).rps / 2
        results.append(measure(opts, "trackd", body, rate=half))
        if opts.edge_only:  # where the time goes: the same server with processing held off
            results.append(measure(opts, "trackd-edge", body))
            half = find(results, "trackd-edge", body).rps / 2
            results.append(measure(opts, "trackd-edge", body, rate=half))
    return results


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
        "--no-edge-only", action="store_true", help="skip the trackd-edge rows (on unless --smoke)"
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
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.smoke:
        args.seconds, args.warmup = 2, 0
    missing = [tool for tool in ("wrk",) if shutil.which(tool) is None]
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        missing.append("nginx")
    if missing:
        print(f"bench: missing {', '.join(missing)} (apt-get install -y nginx-light wrk)")
        return 2
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
        )
        print(f"machine: {machine()}")
        print(f"before the run: {background()}", flush=True)
        print(
            f"pinning: {'server core 0, wrk core 1' if pin else 'none'}; "
            f"{args.seconds:g} s per measurement",
            flush=True,
        )
        results = run(opts)
        profiles = [profile(opts, body, args.profile) for body in BODIES] if args.profile else []
    print()
    print(table(results))
    print(LEGEND)
    print()
    print("durability (trackd):")
    print("\n".join(durability(results)))
    print()
    print("targets:")
    print("\n".join(f"  {line}" for line in targets(results)))
    for prof in profiles:
        print(f"\nprofile of trackd, {prof.body} (CPU of each thread, % of one core):")
        for name, cpu in prof.threads:
            print(f"  {cpu:5.1f}  {name}")
        print(f"where the thread holding the GIL was ({prof.raw.name}; self %, inclusive %):")
        for frame, own, incl in top_frames(prof.raw):
            print(f"  {own:5.1f} {incl:5.1f}  {frame}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    clean = all(r.non_2xx == 0 and r.socket_errors == 0 for r in results)
    durable = all(r.all_durable for r in results if r.server.startswith("trackd"))
    return 0 if clean and durable else 1
