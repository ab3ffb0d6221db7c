"""The edge's per-event work on a 100-event Track Event body, step by step (issue 14 item 2).

    python3 bench/decode.py                      # every step, µs per event, best of --repeat
    python3 bench/decode.py --step decode_event --loops 200    # one step only, for callgrind:
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \\
        python3 bench/decode.py --step decode_event --loops 200

The body is bench/track.lua's (the same names, attributes, platforms and time forms: each
`current_time` an epoch in seconds, in milliseconds or ISO 8601, each `user_time` ISO 8601),
built here with a fixed seed so every run decodes the same bytes. Steps:

- ``typed_decode``: msgspec's typed decode of the body (`trackd.wire.event._decode_typed`);
- ``times``: row 25 over its actions as the typed path checks them (`_typed_times`: epochs
  msgspec already bounded, ISO text parsed or remembered);
- ``decode_event``: the whole typed path (the two above, plus normalising each action);
- ``envelope``: the envelope built from the result and encoded (`Envelope.encode`, once, as
  the queue's `put` does).

Wall-clock numbers on a loaded machine are noise: compare the steps' ratios within one run, or
count instructions with callgrind (repeatable): `callgrind_annotate` of two runs of one step.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `trackd` from any directory

import msgspec

from trackd.models import Envelope, Kind, Workspace
from trackd.wire.event import _decode_typed, _typed_times, decode_event

ACTIONS = ["Viewed Product", "Added To Cart", "Purchased", "Searched", "Opened App"]
CATEGORIES = ["Shoes", "Accessories", "Electronics", "Books", "Grocery", "Toys"]
PLATFORMS = ["ANDROID", "iOS", "web"]
CURRENCIES = ["INR", "USD", "EUR"]


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def body(actions: int, now: int, rng: random.Random) -> bytes:
    """bench/track.lua's body_json, in Python."""
    parts = []
    for _ in range(actions):
        when = now - rng.randint(0, 60)
        style = rng.randint(1, 3)
        current: object = (
            when if style == 1 else when * 1000 + rng.randint(0, 999) if style == 2 else iso(when)
        )
        parts.append(
            {
                "action": rng.choice(ACTIONS),
                "attributes": {
                    "product_id": f"SKU-{rng.randint(1, 999999):06d}",
                    "category": rng.choice(CATEGORIES),
                    "price": round(rng.random() * 500, 2),
                    "currency": rng.choice(CURRENCIES),
                    "quantity": rng.randint(1, 5),
                    "in_stock": rng.random() < 0.5,
                    "tags": ["sale", rng.choice(CATEGORIES)],
                    "viewed_at": iso(when - rng.randint(0, 3600)),
                },
                "platform": rng.choice(PLATFORMS),
                "app_version": f"5.{rng.randint(0, 9)}.{rng.randint(0, 20)}",
                "current_time": current,
                "user_time": iso(when),
                "user_timezone_offset": 19800,
            }
        )
    customer = f"cust-{rng.randint(1, 200000):06d}"
    return msgspec.json.encode(
        {"type": "event", "customer_id": customer, "device_id": f"dev-{customer}", "actions": parts}
    )


def steps(actions: int) -> dict[str, Callable[[], object]]:
    now = int(time.time())
    raw = body(actions, now, random.Random(14))
    workspace = Workspace(id="BENCH", name="bench", key_hash="", created_at=0)
    received_ms = now * 1000
    decoded = _decode_typed(raw)
    validated = decode_event(raw, workspace, None, received_ms)
    assert validated is not None and len(validated.actions) == actions, "not the typed path"

    def times() -> object:
        return [_typed_times(a) for a in decoded.actions]

    def envelope() -> object:
        return Envelope(
            request_id="r" * 16,
            workspace_id=workspace.id,
            received_at=received_ms,
            project_code=None,
            client_ip="198.51.100.7",
            customer_id=validated.customer_id,
            device_id=validated.device_id,
            user_identifiers=validated.user_identifiers,
            actions=validated.actions,
            warnings=validated.warnings,
            event_count=validated.event_count,
            kind=Kind.EVENT,
        ).encode()

    return {
        "typed_decode": lambda: _decode_typed(raw),
        "times": times,
        "decode_event": lambda: decode_event(raw, workspace, None, received_ms),
        "envelope": envelope,
    }


def best_us(step: Callable[[], object], loops: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        for _ in range(loops):
            step()
        best = min(best, time.perf_counter() - began)
    return best / loops * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/decode.py", description=__doc__.split("\n")[0])
    parser.add_argument("--actions", type=int, default=100, help="events per body (100)")
    parser.add_argument("--loops", type=int, default=200, help="calls per timing (200)")
    parser.add_argument("--repeat", type=int, default=7, help="timings per step, best kept (7)")
    parser.add_argument("--step", help="run only this step --loops times (for callgrind)")
    args = parser.parse_args(argv)
    table = steps(args.actions)
    if args.step:
        for _ in range(args.loops):
            table[args.step]()
        return 0
    total = best_us(table["decode_event"], args.loops, args.repeat)
    print(f"{args.actions} events per body; µs per body (per event), best of {args.repeat}:")
    for name, step in table.items():
        us = total if name == "decode_event" else best_us(step, args.loops, args.repeat)
        print(
            f"  {name:<14}{us:>10.1f}{us / args.actions:>9.2f}   {us / total:>6.2f} x decode_event"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
