"""`serve`'s embedded processor as a `trackd worker` child process.

On two cores the edge and the processor each get one (BENCHMARKS.md: the processor inline in
the edge's event loop took ~40% of its core and stretched its tail latency). The child is
started before the edge accepts, restarted if it dies, and stopped (SIGTERM, a bounded wait,
then SIGKILL) after the edge has drained. It holds the data dir's processor lease like any
`trackd worker`, and on Linux it is sent SIGTERM if `serve` itself dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import sys
import threading

from trackd.settings import Settings

log = logging.getLogger(__name__)

RESTART_PAUSE_SECONDS = 1.0
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class ProcessorChild:
    def __init__(self, settings: Settings) -> None:
        self.command = [sys.executable, "-m", "trackd", "worker", "--data-dir", settings.data_dir]
        for flag, value in (("--queue", settings.queue), ("--store", settings.store)):
            if value:
                self.command += [flag, value]
        self.command += ["--log-level", settings.log_level]
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="trackd-processor", daemon=True)
        self._watcher.start()

    def _spawn(self) -> None:
        self._proc = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )

    def _watch(self) -> None:
        while not self._stopping.is_set():
            proc = self._proc
            code = proc.wait() if proc is not None else None
            if self._stopping.wait(RESTART_PAUSE_SECONDS):
                return
            log.warning("the processor exited with %s; starting it again", code)
            self._spawn()

    def stop(self, timeout: float) -> None:
        """After the edge: let the batch in hand finish; what is not acknowledged comes again."""
        self._stopping.set()
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
