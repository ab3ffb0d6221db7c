"""`trackd send`, `trackd tail` and `trackd events export` as a user types them, beside a real
`trackd serve` on the same data dir."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import pytest

from tests.e2e.helpers import SETTLE_SECONDS, ServerWorkspace, cli, cli_json, success
from tests.e2e.server import Launcher, TrackdProcess, queued

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]


class Workspace(ServerWorkspace):
    """A workspace of the running server, with its key and read API."""

    async def poll(self, path: str, done: Callable[[Any], bool], **params: Any) -> Any:
        """The read API's answer once `done` accepts it (or the last one at the deadline)."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            response = await self.get(path, **params)
            if response.status_code == 200 and done(response.json()):
                return response.json()
            if time.monotonic() > deadline:
                pytest.fail(f"GET {path}: {response.status_code} {response.text}")
            await anyio.sleep(0.01)

    async def send(self, body: Any) -> httpx.Response:
        response = await self.client.post(f"/v1/event/{self.id}", json=body, headers=self.headers())
        assert (response.status_code, response.json()) == (200, success(response))
        return response

    async def events(self, count: int) -> list[dict[str, Any]]:
        """The newest 1000 events once `count` are there."""
        page = await self.poll("events", lambda p: len(p["events"]) >= count, limit=1000)
        events: list[dict[str, Any]] = page["events"]
        return events


def event(customer_id: str, seq: int, **fields: Any) -> dict[str, Any]:
    """One line of a `trackd send` file: a single event with its user."""
    return {"customer_id": customer_id, "action": "Sent", "attributes": {"seq": seq}, **fields}


def body(customer_id: str, *seqs: int) -> dict[str, Any]:
    """One line of a `trackd send` file: a whole Track Event body."""
    return {
        "type": "event",
        "customer_id": customer_id,
        "actions": [{"action": "Sent", "attributes": {"seq": s}} for s in seqs],
    }


def write_ndjson(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join("\n" if line is None else json.dumps(line) + "\n" for line in lines))
    return path


async def run_send(url: str, path: Path, workspace_id: str, key: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `trackd send`, decoded as they are (the progress line
    is redrawn with carriage returns, which text mode would turn into newlines)."""
    command = [sys.executable, "-m", "trackd", "send", str(path), "--url", url]
    command += ["--workspace", workspace_id, "--key", key]
    result = await anyio.to_thread.run_sync(
        lambda: subprocess.run(command, capture_output=True, timeout=60, check=False)
    )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


async def test_send_stores_every_event_of_a_mixed_file_once_and_shows_its_progress(
    server: TrackdProcess, tmp_path: Path
) -> None:
    lines = [
        body("s-a", 0, 1, 2),
        event("s-b", 3),
        event("s-b", 4, current_time="2024-01-01T00:00:00Z"),
        event("s-b", 5, platform="iOS"),
        event("s-c", 6),
        event("s-c", 7, device_id="tablet"),  # another device of s-c: a request of its own
        None,  # a blank line is skipped
        event("s-b", 8),
        body("s-c", 9, 10),
        event("s-a", 11),
        event("s-a", 12),
    ]
    # whole bodies go as they are; runs of single events of one user and device are batched
    requests = 7
    path = write_ndjson(tmp_path / "events.ndjson", lines)
    async with server.client() as client:
        ws = await Workspace.create(server, client)
        returncode, stdout, stderr = await run_send(server.url, path, ws.id, ws.key)
        events = await ws.events(13)
        stats = await ws.poll("stats", lambda s: s["lag_events"] == 0)

    assert (returncode, stdout) == (0, "")
    progress = stderr.split("\r")
    assert progress[0] == ""
    assert progress[-1] == f"sent 13 events in {requests} requests (0 failed)\n"
    assert len(progress) - 1 == requests  # one update per request answered
    seqs = Counter(e["attributes"]["seq"] for e in events)
    assert seqs == Counter(range(13))  # every event exactly once
    owner = {e["attributes"]["seq"]: (e["customer_id"], e["device_id"]) for e in events}
    assert owner == {
        **{s: ("s-a", "s-a") for s in (0, 1, 2, 11, 12)},
        **{s: ("s-b", "s-b") for s in (3, 4, 5, 8)},
        **{s: ("s-c", "s-c") for s in (6, 9, 10)},
        7: ("s-c", "tablet"),
    }
    fields = {e["attributes"]["seq"]: (e["current_time"], e["platform"]) for e in events}
    assert fields[4] == ("2024-01-01T00:00:00.000Z", "unknown")
    assert fields[5][1] == "iOS"
    assert (stats["accepted_events"], stats["processed_events"]) == (13, 13)


async def test_send_with_a_wrong_key_exits_1_and_prints_every_failure(
    server: TrackdProcess, tmp_path: Path
) -> None:
    path = write_ndjson(tmp_path / "events.ndjson", [body("w-1", 0), body("w-2", 1, 2)])
    async with server.client() as client:
        ws = await Workspace.create(server, client)
        returncode, _, stderr = await run_send(server.url, path, ws.id, "not-the-key")
        stats = await ws.poll("stats", lambda s: s["rejected_requests"] == 2)

    assert returncode == 1
    progress, *failures = stderr.split("\r")[-1].splitlines()
    assert progress == "sent 0 events in 2 requests (2 failed)"
    assert [line.partition(" {")[0] for line in failures] == ["failed: 401"] * 2
    bodies = [json.loads(line[len("failed: 401 ") :]) for line in failures]
    assert bodies == [
        {
            "status": "fail",
            "error": {
                "message": "App Secret key mismatch. Please login to the dashboard to verify key",
                "type": "Authentication required",
                "request_id": b["error"]["request_id"],
            },
        }
        for b in bodies
    ]
    assert bodies[0]["error"]["request_id"] != bodies[1]["error"]["request_id"]
    assert (stats["accepted_events"], stats["processed_events"]) == (0, 0)


class Relay:
    """A fixed local port that forwards each connection to the current server (none while it
    restarts: then connections are closed at once), so a client keeps one URL across
    restarts while every `trackd serve` start binds a port of its own."""

    def __init__(self) -> None:
        self.target: str | None = None
        self.url = ""

    async def run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            self.url = f"http://127.0.0.1:{port}"
            task_status.started()
            await listener.serve(self._relay)

    async def _relay(self, client: anyio.abc.SocketStream) -> None:
        async with client:
            if self.target is None:
                return
            host, port = self.target.removeprefix("http://").rsplit(":", 1)
            try:
                upstream = await anyio.connect_tcp(host, int(port))
            except OSError:
                return
            async with upstream, anyio.create_task_group() as group:
                group.start_soon(self._pipe, client, upstream, group.cancel_scope)
                group.start_soon(self._pipe, upstream, client, group.cancel_scope)

    @staticmethod
    async def _pipe(
        source: anyio.abc.SocketStream, sink: anyio.abc.SocketStream, scope: anyio.CancelScope
    ) -> None:
        try:
            async for chunk in source:
                await sink.send(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        scope.cancel()  # either side gone: close both


async def test_send_stores_every_event_once_when_the_server_is_killed_and_restarted_meanwhile(
    trackd: Launcher, tmp_path: Path
) -> None:
    """`trackd send` retries what got no answer with the same Idempotency-Key, so a request
    that was kept but whose 200 was lost in the crash is not kept twice."""
    bodies, per_body = 100, 100
    lines = [
        {
            "type": "event",
            "customer_id": f"r-{b % 10}",
            "actions": [
                {"action": "Sent", "attributes": {"seq": b * per_body + i}} for i in range(per_body)
            ],
        }
        for b in range(bodies)
    ]
    total = bodies * per_body
    path = write_ndjson(tmp_path / "events.ndjson", lines)
    created = cli_json(trackd.data_dir, "workspace", "create", "--rate-limit", "100000000")
    workspace_id, key = created["workspace_id"], created["api_key"]
    relay = Relay()
    outcome: list[tuple[int, str, str]] = []

    async def send() -> None:  # `--url` names the relay: the one URL across the restart
        outcome.append(await run_send(relay.url, path, workspace_id, key))

    async with anyio.create_task_group() as group:
        await group.start(relay.run)  # the relay runs on while servers start and die
        first = await anyio.to_thread.run_sync(trackd.start)
        relay.target = first.url
        async with anyio.create_task_group() as sending:
            sending.start_soon(send)
            async with first.client() as client:  # kill it once it has kept something
                await Workspace(client, workspace_id, key).poll(
                    "stats", lambda s: s["accepted_events"] > 0
                )
            relay.target = None
            await anyio.to_thread.run_sync(first.kill)
            second = await anyio.to_thread.run_sync(trackd.start)
            relay.target = second.url
        group.cancel_scope.cancel()
    async with second.client() as client:
        stats = await Workspace(client, workspace_id, key).poll(
            "stats", lambda s: s["lag_events"] == 0
        )
    out = tmp_path / "stored.ndjson"
    cli(trackd.data_dir, "events", "export", workspace_id, "--out", str(out))
    envelopes = await queued(trackd.data_dir)

    [(returncode, _, stderr)] = outcome
    assert returncode == 0, stderr
    assert stderr.split("\r")[-1] == f"sent {total} events in {bodies} requests (0 failed)\n"
    seqs = Counter(
        msgspec.json.decode(line)["attributes"]["seq"] for line in out.read_bytes().splitlines()
    )
    assert seqs == Counter(range(total))  # every event of the file, each exactly once
    assert len({e.request_id for e in envelopes}) == len(envelopes) == bodies  # kept once each
    assert (stats["accepted_events"], stats["processed_events"]) == (total, total)


class Follower:
    """A running `trackd tail`, its stdout lines collected by a thread."""

    def __init__(self, url: str, workspace_id: str, key: str) -> None:
        command = [sys.executable, "-m", "trackd", "tail", workspace_id, "--json"]
        self.proc = subprocess.Popen(
            [*command, "--url", url, "--key", key],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    async def until(self, done: Callable[[list[dict[str, Any]]], bool], seconds: float) -> bool:
        """Collect lines until `done` accepts what was seen, or `seconds` pass."""
        deadline = time.monotonic() + seconds
        while not done(self.seen):
            if time.monotonic() > deadline:
                return False
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                await anyio.sleep(0.01)
            else:
                self.seen.append(msgspec.json.decode(line))
        return True

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _, stderr = self.proc.communicate(timeout=30)
        self._reader.join(30)
        return self.proc.returncode, stderr.decode()


async def test_tail_prints_the_events_processed_after_it_started_and_not_the_older_ones(
    server: TrackdProcess,
) -> None:
    def one(action: str, n: int) -> dict[str, Any]:
        return {
            "type": "event",
            "customer_id": "t-1",
            "actions": [{"action": action, "attributes": {"n": n}}],
        }

    async with server.client() as client:
        ws = await Workspace.create(server, client)
        for n in range(3):
            await ws.send(one("Old", n))
        await ws.events(3)  # processed before tail starts
        follower = Follower(server.url, ws.id, ws.key)
        try:
            # tail prints nothing until something new is processed: send probes until the
            # first one shows, so tail is known to be following before the real events go
            probes = 0
            while True:
                await ws.send(one("Probe", probes))
                probes += 1
                if await follower.until(lambda seen: bool(seen), 0.5):
                    break
                assert probes < 60, "tail printed nothing for 30 s"
            new = [await ws.send(one("New", n)) for n in range(4)]
            await follower.until(lambda seen: sum(e["action"] == "New" for e in seen) == 4, 30)
            stored = {e["event_id"]: e for e in await ws.events(3 + probes + 4)}
        finally:
            returncode, stderr = follower.stop()

    assert (returncode, stderr) == (0, "")
    printed = follower.seen
    assert [e["action"] for e in printed if e["action"] != "Probe"] == ["New"] * 4
    first_probe = printed[0]["attributes"]["n"]
    assert [(e["action"], e["attributes"]["n"]) for e in printed] == [
        ("Probe", n) for n in range(first_probe, probes)
    ] + [("New", n) for n in range(4)]
    assert [e["request_id"] for e in printed[-4:]] == [r.headers["x-request-id"] for r in new]
    # the read API's event, as is, with its position and its request's warnings (the live stream)
    assert [{k: v for k, v in e.items() if k not in ("seq", "warnings")} for e in printed] == [
        stored[e["event_id"]] for e in printed
    ]
    assert [e["warnings"] for e in printed] == [[]] * len(printed)
    assert [e["seq"] for e in printed] == sorted({e["seq"] for e in printed})


async def test_events_export_keeps_the_events_from_since_until_before_until(
    server: TrackdProcess,
) -> None:
    async with server.client() as client:
        ws = await Workspace.create(server, client)
        await ws.send(
            {
                "type": "event",
                "customer_id": "x-1",
                "actions": [
                    {"action": f"Hour {h}", "current_time": f"2024-01-01T0{h}:00:00Z"}
                    for h in range(5)
                ],
            }
        )
        await ws.events(5)

    def export(*args: str) -> subprocess.CompletedProcess[str]:
        return cli(server.data_dir, "events", "export", ws.id, *args, check=False)

    # since is inclusive, until exclusive; either may be ISO 8601 or epoch seconds
    window = export("--since", "2024-01-01T01:00:00Z", "--until", "1704078000")
    since = export("--since", "1704074400000")  # 02:00 in epoch milliseconds
    until_csv = export("--until", "2024-01-01T01:00:00Z", "--format", "csv")
    everything = export()
    bad = export("--since", "yesterday")
    unknown = cli(server.data_dir, "events", "export", "NOPE", check=False)

    def actions(result: subprocess.CompletedProcess[str]) -> list[str]:
        return [json.loads(line)["action"] for line in result.stdout.splitlines()]

    assert (window.returncode, window.stderr) == (0, "exported 2 events\n")
    assert actions(window) == ["Hour 2", "Hour 1"]  # newest first
    assert (since.returncode, actions(since)) == (0, ["Hour 4", "Hour 3", "Hour 2"])
    assert (until_csv.returncode, until_csv.stderr) == (0, "exported 1 events\n")
    header, row = until_csv.stdout.splitlines()
    assert header.startswith("event_id,request_id,customer_id,action,")
    assert ",x-1,Hour 0," in row
    assert (everything.returncode, len(actions(everything))) == (0, 5)
    assert (bad.returncode, bad.stdout, bad.stderr) == (
        2,
        "",
        "trackd: --since is expected to be an epoch timestamp or an ISO 8601 date-time\n",
    )
    assert (unknown.returncode, unknown.stderr) == (1, "trackd: no workspace 'NOPE'\n")
