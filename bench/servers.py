"""Starting the servers under test, each fresh, and reading trackd's disk after SIGKILL."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from bench.engines import Engines
from bench.machine import pinned, process_tree
from bench.model import BENCH, CLIENT_CORE, ROOT, SERVER_CORE, WORKSPACE, Options

START_SECONDS = 60.0  # a cold interpreter on a busy 2-core machine
LISTENING = re.compile(r"^trackd listening on (http://\S+)$")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, deadline: float) -> None:
    """Poll until ``url`` answers at all (any status): the server is accepting."""
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {START_SECONDS} s") from None
            time.sleep(0.05)


def wait_ready(url: str, deadline: float) -> None:
    """Poll until ``url`` answers 200."""
    while True:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} was not 200 within {START_SECONDS} s")
        time.sleep(0.05)


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    url: str
    authorization: str
    data_dir: Path | None = None
    lease: int | None = None  # trackd-edge: the processor's lease, held by the bench
    child_core: str | None = None  # trackd-2core: the core of the server's child processes
    engines: Engines | None = None  # trackd-edge-js: its stream, schema and key prefix

    def children(self) -> list[int]:
        return process_tree(self.proc.pid)[1:]

    def pin_children(self) -> None:
        """trackd-2core: every thread of every descendant onto ``child_core`` (``taskset -a -p``;
        one thread at a time, since a pid names only the main thread to sched_setaffinity).
        Called again before each wrk run and at every memory sample, for a restarted child."""
        if self.child_core is None:
            return
        for pid in self.children():
            with contextlib.suppress(OSError):
                for task in Path(f"/proc/{pid}/task").iterdir():
                    with contextlib.suppress(OSError):
                        os.sched_setaffinity(int(task.name), {int(self.child_core)})

    def stop(self, hard: bool = False) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.lease is not None:
            os.close(self.lease)
            self.lease = None

    def release(self) -> None:
        """After the durability check: a scale-out run's stream, schema and keys removed."""
        if self.engines is not None:
            self.engines.drop()
            self.engines = None


def abandon(proc: subprocess.Popen[bytes], log: Path, what: str) -> NoReturn:
    """A server that did not come up: kill it, and say why with the end of its log."""
    proc.kill()
    proc.wait()
    tail = log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"{what} did not start (exit {proc.returncode}); {log} ends with:\n{tail}")


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{WORKSPACE}:{key}".encode()).decode()


def start_nginx(opts: Options, tag: str) -> Server:
    prefix = opts.scratch / f"nginx-{tag}"
    (prefix / "tmp").mkdir(parents=True)
    port = free_port()
    conf = (BENCH / "nginx.conf").read_text().replace("@PORT@", str(port))
    (prefix / "nginx.conf").write_text(conf)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    command = pinned(SERVER_CORE, [nginx, "-p", str(prefix), "-c", "nginx.conf"], opts.pin)
    log = (prefix / "nginx.log").open("wb")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/", time.monotonic() + START_SECONDS)
    except RuntimeError:
        abandon(proc, Path(log.name), "nginx")
    return Server("nginx", proc, url, basic("static"))


def start_fastapi(opts: Options, tag: str) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "BASELINE_DB": str(opts.scratch / f"baseline-{tag}.db"),
        "BASELINE_WORKSPACE": WORKSPACE,
        "BASELINE_KEY": "baseline-key",
    }
    command = [sys.executable, "-m", "uvicorn", "bench.baseline_fastapi:app", "--app-dir"]
    command += [str(ROOT), "--port", str(port), "--workers", "1", "--no-access-log"]
    command += ["--log-level", "warning"]
    log = (opts.scratch / f"fastapi-{tag}.log").open("wb")
    proc = subprocess.Popen(
        pinned(SERVER_CORE, command, opts.pin), stdout=log, stderr=subprocess.STDOUT, env=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/docs", time.monotonic() + START_SECONDS)
    except RuntimeError:
        abandon(proc, Path(log.name), "the FastAPI baseline")
    return Server("fastapi", proc, url, basic("baseline-key"))


def start_trackd(
    opts: Options,
    tag: str,
    edge_only: bool = False,
    two_cores: bool = False,
    fast_path: bool = True,
    request_log: bool = True,
    engines: Engines | None = None,
) -> Server:
    """``edge_only``: the bench holds the data dir's processor lease (as a `trackd worker` on
    another core would), so the server only answers and queues; envelopes stay in the queue.
    ``two_cores``: the edge stays on the server's core, and its processor child (`trackd
    worker`) is moved to wrk's core once the server is ready. ``fast_path``: False sends `/v1`
    through ASGI too (`TRACKD_FAST_PATH=0`), the road every request took before issue 14.
    ``request_log=False``: the request log is off (``TRACKD_REQUEST_LOG_SIZE=0``;
    `bench/run.py --request-log`). ``engines``: the queue on JetStream, the limiter on Redis
    and the store on PostgreSQL (`bench.engines`); with a shared queue `serve` runs no processor
    (that is `trackd worker`'s), so the edge only answers and publishes."""
    data_dir = opts.scratch / f"trackd-{tag}"
    trackd = [sys.executable, "-m", "trackd"]
    env = {**os.environ, "TRACKD_FAST_PATH": "1" if fast_path else "0"}
    if engines is not None:
        env.update(engines.env())
    create = ["workspace", "create", "--data-dir", str(data_dir), "--id", WORKSPACE]
    create += ["--rate-limit", str(10**9), "--json"]
    created = subprocess.run([*trackd, *create], check=True, capture_output=True, cwd=ROOT, env=env)
    key = json.loads(created.stdout)["api_key"]
    lease = None
    if edge_only and engines is None:
        lease = os.open(data_dir / "processor.lease", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(lease, fcntl.LOCK_EX | fcntl.LOCK_NB)
    command = [*trackd, "serve", "--data-dir", str(data_dir), "--port", "0"]
    log = (opts.scratch / f"trackd-{tag}.log").open("wb")
    if not request_log:
        env["TRACKD_REQUEST_LOG_SIZE"] = "0"
    proc = subprocess.Popen(
        pinned(SERVER_CORE, command, opts.pin),
        stdout=subprocess.PIPE,
        stderr=log,
        cwd=ROOT,
        env=env,
    )
    assert proc.stdout is not None
    url = ""
    for raw in proc.stdout:  # the banner, then the line saying where it listens
        match = LISTENING.match(raw.decode().rstrip("\n"))
        if match:
            url = match.group(1)
            break
    try:
        if not url:
            raise RuntimeError("no listening line")
        wait_ready(url + "/readyz", time.monotonic() + START_SECONDS)
    except RuntimeError:
        abandon(proc, Path(log.name), "trackd")
    name = "trackd-edge" if edge_only else "trackd-2core" if two_cores else "trackd"
    name += "-js" if engines is not None else ""
    name = name if request_log else "trackd-nolog"
    if not fast_path:
        name += "-asgi"
    server = Server(name, proc, url, basic(key), data_dir, lease, engines=engines)
    if two_cores and opts.pin:
        server.child_core = CLIENT_CORE
        wait_child(server, log.name)
        server.pin_children()
    return server


def wait_child(server: Server, log: str) -> None:
    """The processor child is started before the edge accepts; this only guards against
    reading /proc in the instant of a restart."""
    deadline = time.monotonic() + START_SECONDS
    while not server.children():
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"trackd has no processor child; see {log}")
        time.sleep(0.05)


def start_trackd_edge(opts: Options, tag: str) -> Server:
    return start_trackd(opts, tag, edge_only=True)


def start_trackd_2core(opts: Options, tag: str) -> Server:
    return start_trackd(opts, tag, two_cores=True)


def start_trackd_edge_asgi(opts: Options, tag: str) -> Server:
    return start_trackd(opts, tag, edge_only=True, fast_path=False)


def start_trackd_edge_js(opts: Options, tag: str) -> Server:
    """The edge on JetStream + Redis (+ PostgreSQL for workspaces), no worker: issue 14 item 4."""
    engines = Engines()
    try:
        return start_trackd(opts, tag, edge_only=True, engines=engines)
    except BaseException:
        engines.drop()
        raise


def start_trackd_nolog(opts: Options, tag: str) -> Server:
    return start_trackd(opts, tag, request_log=False)


STARTERS = {
    "trackd-nolog": start_trackd_nolog,
    "nginx": start_nginx,
    "trackd": start_trackd,
    "fastapi": start_fastapi,
    "trackd-edge": start_trackd_edge,
    "trackd-2core": start_trackd_2core,
    # -- the /v1 fast path off (issue 14 item 1): the ASGI road, for the ratio --
    "trackd-edge-asgi": start_trackd_edge_asgi,
    # -- scale-out (issue 14 item 4): the edge publishing to JetStream, limits in Redis --
    "trackd-edge-js": start_trackd_edge_js,
}


@contextlib.contextmanager
def running(opts: Options, name: str, tag: str) -> Iterator[Server]:
    server = STARTERS[name](opts, tag)
    try:
        yield server
    finally:
        server.stop()
        server.release()


def lost_ids(data_dir: Path, answered: set[str]) -> int:
    """After SIGKILL: request_ids answered 200 that are neither queued nor processed.

    Exact: the queue deletes a row only once the store has committed it as processed."""
    found: set[str] = set()
    for db, table in (("queue.db", "log"), ("trackd.db", "processed")):
        conn = sqlite3.connect(data_dir / db)
        try:
            found.update(r for (r,) in conn.execute(f"SELECT request_id FROM {table}"))
        finally:
            conn.close()
    return len(answered - found)


def lost_in_stream(engines: Engines, answered: set[str]) -> tuple[int, int]:
    """After SIGKILL of a JetStream edge: the messages its stream holds, and how many request_ids
    answered 200 are not among their ``Nats-Msg-Id``s (no worker ran: nothing left it)."""
    held, ids = engines.stream_request_ids()
    return held, len(answered - ids)


def durable_envelopes(data_dir: Path) -> tuple[int, int]:
    """After SIGKILL: envelopes ever committed to the queue, and those not yet processed."""
    conn = sqlite3.connect(data_dir / "queue.db")
    try:
        (seq,) = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'log'").fetchone()
        (done,) = conn.execute("SELECT coalesce(min(position), 0) FROM consumers").fetchone()
    finally:
        conn.close()
    return int(seq), int(seq) - int(done)
