"""`trackd workspace …`, `key …` and `project …` as a user types them (no server needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.helpers import cli, cli_json

pytestmark = pytest.mark.e2e


def described(workspace_id: str, **changes: object) -> dict[str, object]:
    """What `workspace show --json` prints for a workspace created with default options."""
    return {
        "workspace_id": workspace_id,
        "name": workspace_id,
        "suspended": False,
        "has_key": True,
        "rate_limit": 30000,
        "portfolio": False,
        "projects": [],
        "strict": False,
        "identity_resolution": [],
        "delete_buffer": 86400,
        **changes,
    }


def test_workspace_create_json_prints_a_new_id_and_its_key(tmp_path: Path) -> None:
    first = cli_json(tmp_path, "workspace", "create")
    second = cli_json(tmp_path, "workspace", "create")
    assert sorted(first) == sorted(second) == ["api_key", "workspace_id"]
    assert re.fullmatch(r"[A-Z0-9]{20}", first["workspace_id"])
    assert len(first["api_key"]) >= 32
    assert first["workspace_id"] != second["workspace_id"]
    assert first["api_key"] != second["api_key"]
    listed = cli_json(tmp_path, "workspace", "list")
    assert listed == sorted(
        (described(first["workspace_id"]), described(second["workspace_id"])),
        key=lambda w: str(w["workspace_id"]),
    )


def test_workspace_options_show_in_list_and_show(tmp_path: Path) -> None:
    made = cli_json(
        tmp_path,
        "workspace",
        "create",
        "--id",
        "ACME",
        "--name",
        "Acme Inc",
        "--rate-limit",
        "500",
        "--portfolio",
        "--strict",
        "--identity-resolution",
        "email, mobile",
    )
    assert made == {"workspace_id": "ACME", "api_key": made["api_key"]}
    expected = described(
        "ACME",
        name="Acme Inc",
        rate_limit=500,
        portfolio=True,
        strict=True,
        identity_resolution=["email", "mobile"],
    )
    assert cli_json(tmp_path, "workspace", "show", "ACME") == expected
    assert cli_json(tmp_path, "workspace", "list") == [expected]


def test_project_create_adds_the_code_once(tmp_path: Path) -> None:
    cli_json(tmp_path, "workspace", "create", "--id", "P1", "--portfolio")
    cli(tmp_path, "project", "create", "P1", "web")
    assert cli_json(tmp_path, "workspace", "show", "P1") == described(
        "P1", portfolio=True, projects=["web"]
    )

    again = cli(tmp_path, "project", "create", "P1", "web", check=False)
    assert (again.returncode, again.stderr) == (2, "trackd: project 'web' already exists in 'P1'\n")


def test_suspend_resume_revoke_and_regenerate_change_what_show_prints(tmp_path: Path) -> None:
    made = cli_json(tmp_path, "workspace", "create", "--id", "S1")
    assert cli_json(tmp_path, "workspace", "suspend", "S1") == described("S1", suspended=True)
    assert cli_json(tmp_path, "workspace", "resume", "S1") == described("S1")
    assert cli_json(tmp_path, "key", "revoke", "S1") == described("S1", has_key=False)
    regenerated = cli_json(tmp_path, "key", "regenerate", "S1")
    assert regenerated == {"workspace_id": "S1", "api_key": regenerated["api_key"]}
    assert regenerated["api_key"] != made["api_key"]
    assert cli_json(tmp_path, "workspace", "show", "S1") == described("S1")


def test_unknown_workspace_exits_1_and_a_taken_id_exits_2(tmp_path: Path) -> None:
    missing = cli(tmp_path, "workspace", "show", "NOPE", check=False)
    assert (missing.returncode, missing.stdout, missing.stderr) == (
        1,
        "",
        "trackd: no workspace 'NOPE'\n",
    )
    cli(tmp_path, "workspace", "create", "--id", "TAKEN")
    taken = cli(tmp_path, "workspace", "create", "--id", "TAKEN", check=False)
    assert (taken.returncode, taken.stdout, taken.stderr) == (
        2,
        "",
        "trackd: workspace 'TAKEN' already exists\n",
    )
