"""What Linux's /proc says of a running server: the processes of its group, which of them holds
a connection, and how much memory they hold."""

from __future__ import annotations

import contextlib
from pathlib import Path


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


def process_rss_kb(pid: int) -> int:
    """The resident memory of one process (0 if /proc does not say)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def rss_kb(pgid: int) -> int:
    """The resident memory of the server's process group (the edge and its processor child)."""
    total = 0
    for pid in group_members(pgid):
        with contextlib.suppress(OSError):  # a process that went away meanwhile
            total += process_rss_kb(pid)
    return total
