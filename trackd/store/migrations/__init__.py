"""The stores' versioned migrations: ``<engine>/NNNN_name.sql``, one folder per SQL engine."""

from __future__ import annotations

from importlib import resources


def migrations(engine: str) -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every migration of `engine` ("sqlite", "postgres"), in
    order."""
    folder = resources.files(__name__) / engine
    found = [
        (int(f.name.split("_", 1)[0]), f.name, f.read_text())
        for f in folder.iterdir()
        if f.name.endswith(".sql")
    ]
    return sorted(found)
