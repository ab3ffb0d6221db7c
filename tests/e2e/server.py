"""The real `trackd serve` process on a temporary data dir, spoken to over a socket.

`TrackdProcess` starts the server as a user would (``python -m trackd serve --port 0``), reads
the URL it prints once bound, and waits for ``/readyz``. It runs in its own session (process
group), so `kill` reaches every ``--workers`` process at once; whatever a test does, the whole
group is killed at teardown. `Launcher` starts servers on one data dir, first registering an
audit consumer on its queue, so that `queued` reads every envelope ever accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, NoReturn

import httpx
import pytest

from tests.e2e.helpers import START_SECONDS, STOP_SECONDS
from tests.e2e.procfs import group_members, server_socket_inode
from trackd.models import Envelope
from trackd.queue.sqlite import SQLiteQueue

LISTENING = re.compile(r"^trackd listening on (http://\S+)$")
DEMO_KEY = re.compile(r"^  Data API key: (\S+)$")


class TrackdProcess:
    """One `trackd serve` process (and its workers) on `data_dir`."""

    def __init__(self, data_dir: Path, log_dir: Path, *, workers: int = 1) -> None:
        self.data_dir = data_dir
        self.workers = workers
        self.url = ""
        #: What the server printed on stdout before its listening line (the demo banner).
        self.banner: list[str] = []
        self._log_dir = log_dir
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None, "the server was never started"
        return self._proc.pid

    @property
    def demo_key(self) -> str | None:
        """The demo workspace's key, if this start printed one."""
        for line in self.banner:
            match = DEMO_KEY.match(line)
            if match:
                return match.group(1)
        return None

    def start(self) -> TrackdProcess:
        command = [
            sys.executable,
            "-m",
            "trackd",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--port",
            "0",
            "--workers",
            str(self.workers),
        ]
        self._stderr = open(self._log_path(), "wb")  # noqa: SIM115 (closed in close())
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + START_SECONDS
        self.url = self._wait_for_url(deadline)
        self._wait_until_ready(deadline)
        return self

    def _log_path(self) -> Path:
        n = len(list(self._log_dir.glob("trackd-*.stderr")))
        return self._log_dir / f"trackd-{n}.stderr"

    def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _wait_for_url(self, deadline: float) -> str:
        while True:
            try:
                line = self._lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                self._fail("printed no listening line in time")
            if line is None:
                self._fail("exited before printing its listening line")
            match = LISTENING.match(line)
            if match:
                return match.group(1)
            self.banner.append(line)

    def _wait_until_ready(self, deadline: float) -> None:
        with httpx.Client(base_url=self.url, timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.returncode is not None:
                    self._fail(f"exited with {self.returncode} before /readyz answered 200")
                try:
                    if client.get("/readyz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        self._fail("/readyz did not answer 200 in time")

    def _fail(self, what: str) -> NoReturn:
        self.close()
        pytest.fail(f"trackd serve {what}; stderr:\n{self.stderr()}")

    def stderr(self) -> str:
        if self._stderr is None:
            return ""
        return Path(self._stderr.name).read_text(errors="replace")

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def terminate(self) -> int:
        """SIGTERM to the server (as a service manager sends it), and its exit code."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)
        return self.wait()

    def kill(self) -> int:
        """``kill -9`` of the whole process group: the server and every worker."""
        assert self._proc is not None
        self._killpg()
        return self.wait()

    def wait(self) -> int:
        assert self._proc is not None
        try:
            return self._proc.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self._fail(f"did not exit within {STOP_SECONDS} s")

    def _killpg(self) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError):  # the group is already gone
            os.killpg(self._proc.pid, signal.SIGKILL)

    def close(self) -> None:
        """Kill whatever is left of the group and release pipes and files. Idempotent."""
        if self._proc is not None:
            self._killpg()
            self._proc.wait()
            if self._reader is not None:
                self._reader.join(STOP_SECONDS)
            if self._proc.stdout is not None:
                self._proc.stdout.close()
        if self._stderr is not None and not self._stderr.closed:
            self._stderr.close()

    # -- talking to it ----------------------------------------------------------------------

    def client(self, **options: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30.0, **options)

    def answered_by(self, response: httpx.Response) -> int:
        """The pid of the process holding the server end of the response's connection (still
        open: a keep-alive client), found through Linux's /proc."""
        client_port = response.extensions["network_stream"].get_extra_info("client_addr")[1]
        server_port = int(self.url.rsplit(":", 1)[1])
        socket_link = f"socket:[{server_socket_inode(server_port, client_port)}]"
        for pid in group_members(self.pid):
            with contextlib.suppress(OSError):  # a process or fd that went away meanwhile
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    with contextlib.suppress(OSError):
                        if os.readlink(fd) == socket_link:
                            return pid
        raise LookupError(f"no trackd process holds the connection from port {client_port}")

    async def pin_workers(self, per_worker: int = 1) -> list[httpx.AsyncClient]:
        """`per_worker` keep-alive clients per worker process, each connection answered by a
        known worker: the kernel hands a new connection to whichever worker accepts first, so
        connect until every worker has its share. Clients come worker by worker, interleaved."""
        pinned: dict[int, list[httpx.AsyncClient]] = {}
        try:
            for _ in range(200 * per_worker):
                client = self.client(limits=httpx.Limits(max_connections=1))
                pid = self.answered_by(await client.get("/healthz"))
                if len(pinned.setdefault(pid, [])) == per_worker:
                    await client.aclose()
                    continue
                pinned[pid].append(client)
                if len(pinned) == self.workers and all(
                    len(c) == per_worker for c in pinned.values()
                ):
                    return [c for row in zip(*pinned.values(), strict=True) for c in row]
            pytest.fail(f"could not reach {self.workers} workers {per_worker} times each")
        except BaseException:
            for clients in pinned.values():
                for client in clients:
                    await client.aclose()
            raise


class Launcher:
    """Starts servers on one data dir and kills every one of them at teardown."""

    def __init__(self, base: Path) -> None:
        self.data_dir = base / "data"
        self._base = base
        self._started: list[TrackdProcess] = []

    def start(self, *, workers: int = 1) -> TrackdProcess:
        if not self._started:
            register_audit_consumer(self.data_dir)
        server = TrackdProcess(self.data_dir, self._base, workers=workers)
        self._started.append(server)
        return server.start()

    def close(self) -> None:
        for server in self._started:
            server.close()


#: A consumer that reads and never acknowledges: registered before the first start, it keeps
#: the log from being reclaimed, so it sees every envelope ever accepted.
AUDIT_CONSUMER = "e2e-audit"


async def queued(data_dir: Path) -> list[Envelope]:
    """Every envelope in the server's queue file, read with the audit consumer."""
    log = SQLiteQueue(data_dir / "queue.db")
    await log.open()
    try:
        return [d.envelope for d in await log.get(AUDIT_CONSUMER, 10_000_000, 0)]
    finally:
        await log.aclose()


def register_audit_consumer(data_dir: Path) -> None:
    """Reads the (new, empty) queue once, from a thread of its own: callers may be inside an
    event loop."""
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, queued(data_dir)).result() == []
