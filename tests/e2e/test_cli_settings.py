"""Bad settings as a user gives them: `trackd` exits 2 with one line on stderr, before it binds,
opens or creates anything, whatever the command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

PORT = "TRACKD_PORT='abc': expected an integer from 0 to 65535"
PROCESSOR = "TRACKD_PROCESSOR='bogus': expected one of process, inline or off"
STORE = (
    "--store 'ftp://x': expected a sqlite://, memory://, postgresql:// or postgres:// URL,"
    " or empty for the embedded SQLite store"
)
QUEUE = (
    "TRACKD_QUEUE='kafka://x': expected a sqlite://, memory:// or nats:// URL,"
    " or empty for the embedded SQLite queue"
)


def trackd(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m trackd ARGS --data-dir DATA_DIR`` with exactly these ``TRACKD_*`` variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRACKD_")}
    return subprocess.run(
        [sys.executable, "-m", "trackd", *args, "--data-dir", str(data_dir)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("flags", "env", "line"),
    [
        ((), {"TRACKD_PORT": "abc"}, PORT),
        ((), {"TRACKD_PROCESSOR": "bogus"}, PROCESSOR),
        (("--store", "ftp://x"), {}, STORE),
        ((), {"TRACKD_QUEUE": "kafka://x"}, QUEUE),
    ],
    ids=["port", "processor", "store-flag", "queue-scheme"],
)
def test_serve_with_a_bad_setting_exits_2_with_one_line_and_starts_nothing(
    tmp_path: Path, flags: tuple[str, ...], env: dict[str, str], line: str
) -> None:
    data_dir = tmp_path / "data"
    port = () if "TRACKD_PORT" in env else ("--port", "0")  # were it to start: any free port
    result = trackd(data_dir, "serve", *port, *flags, **env)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", f"trackd: error: {line}\n")
    assert not data_dir.exists()  # nothing was opened


@pytest.mark.parametrize(
    "command",
    [
        ("worker",),
        ("migrate",),
        ("workspace", "list"),
        ("workspace", "create"),
        ("key", "revoke", "WS"),
        ("project", "create", "WS", "web"),
        ("events", "export", "WS"),
        ("tail", "WS"),
    ],
    ids=" ".join,
)
def test_every_command_refuses_a_bad_setting_the_same_way(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    data_dir = tmp_path / "data"
    result = trackd(data_dir, *command, TRACKD_STORE="mysql://db/trackd")
    line = (
        "TRACKD_STORE='mysql://db/trackd': expected a sqlite://, memory://, postgresql:// or"
        " postgres:// URL, or empty for the embedded SQLite store"
    )
    assert (result.returncode, result.stdout, result.stderr) == (2, "", f"trackd: error: {line}\n")
    assert not data_dir.exists()


def test_a_flag_overrides_a_bad_variable(tmp_path: Path) -> None:
    result = trackd(tmp_path, "workspace", "list", "--store", "memory://", TRACKD_STORE="ftp://x")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
