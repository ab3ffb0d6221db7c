"""`trackd workspace list` without --json: a table, every value as text."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from trackd.cli import build_parser, workspaces
from trackd.settings import Settings


def main(argv: list[str]) -> int:
    """`trackd.cli.main` without its logging set-up (global: it would reach other tests)."""
    args = build_parser().parse_args(argv)
    return asyncio.run(workspaces.run(args, Settings.load(vars(args), env={})))


def test_workspace_list_is_a_table_of_every_workspace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: one line per row
    data = ["--data-dir", str(tmp_path)]
    assert main(["workspace", "list", *data]) == 0
    assert capsys.readouterr().out == ""  # no workspaces: no table
    assert main(["workspace", "create", "--id", "ACME", "--name", "[red]Acme", *data]) == 0
    assert main(["workspace", "create", "--id", "B2", "--rate-limit", "500", *data]) == 0
    capsys.readouterr()
    assert main(["workspace", "list", *data]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert lines[0][:3] == ["workspace", "id", "name"]
    assert lines[1][:3] == ["ACME", "[red]Acme", "no"]
    assert lines[2][:5] == ["B2", "B2", "no", "yes", "500"]
