"""A scale-out deployment for tests: N `trackd serve` edges and M `trackd worker` processes on the
real NATS JetStream, PostgreSQL and Redis of this machine, each run in isolation (its own stream,
database schema and key prefix), plus the means to stop and restart those engines."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.contracts import postgres_db
from tests.services import port_open

LISTENING = re.compile(r"trackd listening on (http://\S+)")
ENGINE_WAIT_SECONDS = 30.0


class Node:
    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._out,
            text=True,
            start_new_session=True,
        )
        self.url = ""

    def wait_for_line(self, pattern: re.Pattern[str], seconds: float = 60) -> re.Match[str]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            match = pattern.search(line)
            if match:
                return match
        raise AssertionError(f"{self.log.name}: no {pattern.pattern!r}:\n{self.log.read_text()}")

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._out.close()


class Deployment:
    def __init__(self, base: Path) -> None:
        self.base = base
        tag = uuid.uuid4().hex[:10]
        self.env = {
            **os.environ,
            "TRACKD_QUEUE": f"nats://127.0.0.1:4222/TRACKDTESTSO{tag.upper()}",
            "TRACKD_STORE": postgres_db.store_url(),
            "TRACKD_LIMITER": f"redis://127.0.0.1:6379/0?prefix=trackd-test-{tag}:",
            "TRACKD_DATA_DIR": str(base / "data"),
            "TRACKD_LOG_LEVEL": "warning",
        }
        self.nodes: list[Node] = []

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "trackd", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"trackd {' '.join(args)}: {done.stderr}"
        return done.stdout

    def edge(self) -> Node:
        node = self._start(["serve", "--port", "0"])
        node.url = node.wait_for_line(LISTENING).group(1)
        _wait_ready(node.url)
        return node

    def worker(self) -> Node:
        node = self._start(["worker"])
        node.wait_for_line(re.compile("trackd worker processing"))
        return node

    def _start(self, args: list[str]) -> Node:
        log = self.base / f"{args[0]}-{len(self.nodes)}.log"
        node = Node([sys.executable, "-m", "trackd", *args], self.env, log)
        self.nodes.append(node)
        return node

    def close(self) -> None:
        for node in self.nodes:
            node.close()

    def wait_for_a_batch_in_hand(self, seconds: float = 5.0) -> int:
        """Until some envelopes are delivered to a worker and not yet acknowledged (a batch in
        hand); returns how many (0 if none was seen within `seconds`). JetStream's consumer
        info, read with its own connection: nothing of trackd's code answers it."""
        return asyncio.run(self._ack_pending(seconds))

    @property
    def stream(self) -> str:
        return self.env["TRACKD_QUEUE"].rsplit("/", 1)[1]

    def delete_stream(self) -> None:
        """The deployment's JetStream stream and idempotency bucket, once every node is gone."""
        asyncio.run(self._delete_stream())

    async def _delete_stream(self) -> None:
        import nats
        from nats.js.errors import NotFoundError

        nc = await nats.connect("nats://127.0.0.1:4222")
        try:
            for name in (self.stream, f"KV_{self.stream}_idempotency"):
                with contextlib.suppress(NotFoundError):
                    await nc.jetstream().delete_stream(name)
        finally:
            await nc.close()

    async def _ack_pending(self, seconds: float) -> int:
        import nats

        stream = self.stream
        nc = await nats.connect("nats://127.0.0.1:4222")
        try:
            js = nc.jetstream()
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                info = await js.consumer_info(stream, "processor")
                if info.num_ack_pending:
                    return int(info.num_ack_pending)
            return 0
        finally:
            await nc.close()


def _wait_ready(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=5) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if client.get("/readyz").status_code == 200:
                    return
            time.sleep(0.05)
    raise AssertionError(f"{url} never became ready")


# -- the engines of this machine, stopped and started as its image does ----------------------


def _run(command: str) -> None:
    subprocess.run(command, shell=True, check=False, timeout=60, capture_output=True)


def _pg_version() -> str:
    return sorted(os.listdir("/etc/postgresql"))[0]


_PG_CTL = "pg_ctlcluster --skip-systemctl-redirect"

ENGINES: dict[str, dict[str, Any]] = {
    "postgresql": {
        "port": 5432,
        "stop": lambda: _run(
            f"pg_ctlcluster --skip-systemctl-redirect {_pg_version()} main stop -m fast"
        ),
        "start": lambda: _run(
            f"pg_ctlcluster --skip-systemctl-redirect {_pg_version()} main start"
        ),
    },
    "nats": {
        "port": 4222,
        # a clean stop: JetStream flushes what it acknowledged (a kill -9 of a single node
        # may lose acknowledged writes unless the stream has replicas or sync_interval: always)
        "stop": lambda: _run(
            "pkill -TERM -x nats-server; for i in $(seq 100); do pgrep -x nats-server || break;"
            " sleep 0.1; done; pkill -KILL -x nats-server"
        ),
        "start": lambda: _run(
            "start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- "
            "-a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log"
        ),
    },
    "redis": {
        "port": 6379,
        "stop": lambda: _run("redis-cli -p 6379 shutdown nosave"),
        "start": lambda: _run(
            'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" '
            "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log"
        ),
    },
}


def stop_engine(name: str) -> None:
    engine = ENGINES[name]
    engine["stop"]()
    _until(lambda: not port_open(engine["port"]), f"{name} to stop")


def start_engine(name: str) -> None:
    engine = ENGINES[name]
    engine["start"]()
    _until(lambda: port_open(engine["port"]), f"{name} to start")


def _until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + ENGINE_WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {ENGINE_WAIT_SECONDS} s for {what}")
        time.sleep(0.1)
