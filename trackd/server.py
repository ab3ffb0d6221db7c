"""`trackd serve`: bind, say where, run the ASGI app on uvicorn, drain on SIGTERM.

Lifecycle (uvicorn's serve -> startup -> main_loop -> shutdown): the socket is bound here so the
URL printed is the one listening (also with ``--port 0``); with ``--workers N`` every worker
process accepts on that one socket. On SIGTERM uvicorn stops accepting, finishes in-flight
requests (each already durable or rejected), then runs the app's shutdown, and we exit 0.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import sys
from typing import NoReturn

import uvicorn
from uvicorn.supervisors import Multiprocess

from trackd import admin, services
from trackd.edge.app import TrackdApp
from trackd.edge.protocol import ClientLimits, Config, TrackdHttpProtocol
from trackd.embedded import private_dir
from trackd.processor.child import ProcessorChild
from trackd.services import ProcessorMode, Services, WorkerServices
from trackd.settings import SETTINGS_ENV, Settings

log = logging.getLogger(__name__)

DEMO_WORKSPACE = "DEMO"


def serve(settings: Settings) -> int:
    signal.signal(signal.SIGTERM, _exit_cleanly)
    private_dir(settings.data_path)  # 0700 from birth: the data dir holds every event
    sock = _bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"  # the bound port, also with --port 0
    asyncio.run(_ensure_demo(settings, base))
    print(f"trackd listening on {base}", flush=True)
    config = Config(
        create_app(settings) if settings.workers == 1 else "trackd.server:from_environment",
        factory=settings.workers > 1,
        workers=settings.workers,
        loop="uvloop",
        http=TrackdHttpProtocol,  # httptools, plus header/body deadlines and head size caps
        client_limits=ClientLimits(
            header_timeout=settings.header_timeout_seconds,
            body_timeout=settings.body_timeout_seconds,
        ),
        lifespan="on",
        access_log=False,
        log_config=None,
        log_level=settings.log_level,
        timeout_graceful_shutdown=int(settings.graceful_timeout_seconds),
        backlog=4096,
    )
    child = None
    if services.processor_mode(settings) is ProcessorMode.CHILD:
        child = ProcessorChild(settings)
        child.start()
    try:
        if settings.workers > 1:
            os.environ[SETTINGS_ENV] = settings.to_json().decode()
            Multiprocess(config, sockets=[sock]).run()
            return 0
        server = uvicorn.Server(config)
        tune_gc()
        server.run(sockets=[sock])
        return 0 if server.started else 3
    finally:  # the edge has drained: now the processor
        if child is not None:
            child.stop(settings.graceful_timeout_seconds)


def create_app(settings: Settings) -> TrackdApp:
    return TrackdApp(Services(settings))


def from_environment() -> TrackdApp:
    """The factory each `--workers` process calls: `serve` hands settings down by env var."""
    app = create_app(Settings.from_json(os.environ[SETTINGS_ENV]))
    tune_gc()
    return app


#: Allocations between young-generation collections (CPython's default is 700). An accepted
#: 100-event request allocates a few thousand container objects, almost none of them in cycles
#: (reference counting frees them), so the default collects dozens of times per request.
#: Measured on the edge alone with 100-event requests: 20% less CPU per request (1,650 -> 1,350
#: us); single-event requests 2-3%. See BENCHMARKS.md.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """For a serving process: what is loaded now lives as long as the process (frozen out of
    every collection), and young collections run far less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _exit_cleanly(signum: int, frame: object) -> NoReturn:
    """SIGTERM outside uvicorn's own handling (before start, or re-raised after a drain)."""
    sys.exit(0)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


async def _ensure_demo(settings: Settings, base: str) -> None:
    """First start on an empty data dir: a demo workspace, its key and a curl line to paste."""
    store = services.workspace_store(settings)
    await store.open()
    try:
        if await store.list():
            return
        workspace, key = await admin.create_workspace(
            store, workspace_id=DEMO_WORKSPACE, name="Demo workspace"
        )
    finally:
        await store.aclose()
    print(
        f"Created a demo workspace.\n  workspace id: {workspace.id}\n  Data API key: {key}\n"
        "  (the key is shown once; `trackd key regenerate DEMO` makes a new one)\n"
        "Try it:\n"
        f"  curl -u '{workspace.id}:{key}' -H 'Content-Type: application/json' "
        f'{base}/v1/event/{workspace.id} -d \'{{"type": "event", "customer_id": "u1", '
        f'"actions": [{{"action": "Signed Up", "attributes": {{"plan": "pro"}}}}]}}\'',
        flush=True,
    )


def work(settings: Settings) -> int:
    """`trackd worker`: the processor alone, until SIGTERM or SIGINT (then it drains, exits 0)."""
    import uvloop

    return uvloop.run(_work(settings))


async def _work(settings: Settings) -> int:
    worker = WorkerServices(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await worker.open()
    print("trackd worker processing", flush=True)
    await stop.wait()
    # Shutdown: finish the batch in hand (bounded), leave the rest unacknowledged, close.
    await worker.aclose()
    return 0
