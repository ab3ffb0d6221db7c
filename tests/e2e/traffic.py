"""Load on a running server and who serves it: `Traffic` sends the seed request from many
concurrent clients and keeps every `Outcome`; `expected_response` and `broken_promises` hold the
answers and the queue to the contract; `server_socket_inode` and `group_members` find, through
Linux's /proc, which process of a server's group holds a connection."""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

import anyio
import anyio.abc
import httpx

from tests.conftest import SEED_BODY
from tests.e2e.helpers import START_SECONDS, STOP_SECONDS, SUCCESS_MESSAGE, auth
from trackd.models import Envelope


class Outcome(NamedTuple):
    """One request sent during a run, and what (if anything) came back."""

    marker: str  # the request's customer_id, unique across a test
    valid: bool  # sent with the workspace's right key
    status: int | None  # None: no response (connection refused, reset or closed)
    request_id: str | None
    body: Any


class Traffic:
    """`clients` concurrent clients, each on its own connection, sending the seed request with a
    distinct customer_id until stopped; every `wrong_key_every`-th request carries a wrong key."""

    def __init__(
        self,
        url: str,
        workspace_id: str,
        key: str,
        *,
        clients: int,
        tag: str,
        wrong_key_every: int = 0,
    ) -> None:
        self.url = url
        self.workspace_id = workspace_id
        self.key = key
        self.clients = clients
        self.tag = tag
        self.wrong_key_every = wrong_key_every
        self.outcomes: list[Outcome] = []
        self._stopped = False

    def start(self, group: anyio.abc.TaskGroup) -> None:
        for n in range(self.clients):
            group.start_soon(self._client, n)

    def stop(self) -> None:
        self._stopped = True

    def accepted(self) -> int:
        return sum(1 for o in self.outcomes if o.status == 200)

    async def wait_for_accepted(self, count: int) -> None:
        with anyio.fail_after(START_SECONDS):
            while self.accepted() < count:
                await anyio.sleep(0.01)

    async def _client(self, n: int) -> None:
        path = f"/v1/event/{self.workspace_id}"
        async with httpx.AsyncClient(base_url=self.url, timeout=STOP_SECONDS) as client:
            i = 0
            while not self._stopped:
                marker = f"{self.tag}-c{n}-r{i}"
                valid = not self.wrong_key_every or i % self.wrong_key_every != 1
                key = self.key if valid else "not-the-key"
                body = {**SEED_BODY, "customer_id": marker}
                try:
                    response = await client.post(
                        path, json=body, headers=auth(self.workspace_id, key)
                    )
                except httpx.TransportError:
                    self.outcomes.append(Outcome(marker, valid, None, None, None))
                    await anyio.sleep(0.01)  # the server is gone: do not spin
                else:
                    request_id = response.headers.get("x-request-id")
                    answer = response.json()
                    self.outcomes.append(
                        Outcome(marker, valid, response.status_code, request_id, answer)
                    )
                i += 1


WRONG_KEY_BODY_ERROR = {
    "message": "App Secret key mismatch. Please login to the dashboard to verify key",
    "type": "Authentication required",
}


def expected_response(outcome: Outcome) -> tuple[int, dict[str, Any]]:
    """What the contract owes a request that got a response: the 200 if its key was right,
    else the wrong-key 401 (row 10)."""
    request_id = outcome.request_id
    if outcome.valid:
        return 200, {"status": "success", "message": SUCCESS_MESSAGE, "request_id": request_id}
    return 401, {"status": "fail", "error": {**WRONG_KEY_BODY_ERROR, "request_id": request_id}}


def broken_promises(outcomes: list[Outcome], envelopes: list[Envelope]) -> dict[str, list[str]]:
    """What the queue gets wrong against the responses; every list is empty when it keeps
    its word: each 200 is there exactly once under its request id, nothing rejected is there,
    and nothing is there twice or from nowhere."""
    by_request = Counter(e.request_id for e in envelopes)
    by_marker = Counter(e.customer_id for e in envelopes)
    marker_of = {e.request_id: e.customer_id for e in envelopes}
    sent = {o.marker for o in outcomes if o.valid and o.status in (200, None)}
    accepted = [o for o in outcomes if o.status == 200]
    rejected = [o for o in outcomes if o.status not in (200, None)]
    return {
        "accepted but not queued exactly once": [
            o.marker
            for o in accepted
            if by_request[o.request_id] != 1 or marker_of[o.request_id] != o.marker
        ],
        "rejected but queued": [o.marker for o in rejected if by_marker[o.marker]],
        "queued twice": sorted(str(m) for m, n in by_marker.items() if n > 1),
        "queued but never sent": sorted(str(m) for m in by_marker if m not in sent),
    }


# -- /proc -----------------------------------------------------------------------------------


def server_socket_inode(server_port: int, client_port: int) -> int:
    """The inode of the accepted socket of 127.0.0.1:server_port <- 127.0.0.1:client_port."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return int(fields[9])
    raise LookupError(f"no accepted connection from port {client_port}")


def group_members(pgid: int) -> list[int]:
    """Pids of the processes in process group `pgid` (the server and its workers)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            after_name = stat.read_text().rsplit(")", 1)[1].split()
            if int(after_name[2]) == pgid:  # state, ppid, pgrp
                members.append(int(stat.parent.name))
    return members
