"""A small disk for a test: a fresh tmpfs mounted on a directory, and a file that fills it."""

from __future__ import annotations

import contextlib
import errno
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import IN_CI

#: Generous bound of an unmount on a busy 2-core machine.
UNMOUNT_SECONDS = 30.0


@contextlib.contextmanager
def tmpfs(directory: Path, size: str) -> Iterator[Path]:
    """`directory` as a fresh tmpfs of `size` (we run as root); skipped where mounting is not
    permitted, failed under CI."""
    directory.mkdir(exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs here: {mounted.stderr.strip()}"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield directory
    finally:
        unmount(directory)


def unmount(directory: Path) -> None:
    """Unmount once the server's last process (the processor child may outlive the killed
    server by a moment) has let go of its files."""
    deadline = time.monotonic() + UNMOUNT_SECONDS
    while subprocess.run(["umount", str(directory)], capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            subprocess.run(["umount", "--lazy", str(directory)], check=True)
            return
        time.sleep(0.1)


def fill(path: Path) -> None:
    """Write `path` until the disk has no byte left."""
    with path.open("wb", buffering=0) as ballast:
        while True:
            try:
                ballast.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                return
