"""Dependencies point one way (docs/architecture.md): the rules, as tables, that the imports of
every module under trackd/ keep (tests/import_graph.py reads them from the source: function-level
and ``TYPE_CHECKING`` imports count), then the checker caught on a package built to break them.

The composition root (trackd.services) and the CLI side (trackd.cli, trackd.server,
trackd.__main__) are in no row: they may import everything, and no layer imports them.
"""

from __future__ import annotations

from pathlib import Path

from tests.import_graph import Rule, broken_rules, cycles, graph, misplaced_drivers

PACKAGE = Path(__file__).resolve().parents[1] / "trackd"
TESTS = Path(__file__).resolve().parent

CORE = ("trackd.errors", "trackd.models")
#: What an adapter package may use besides its own modules.
ADAPTER_MAY = (*CORE, "trackd.settings", "trackd.embedded")
ENTRY_POINTS = ("trackd.services", "trackd.cli", "trackd.server", "trackd.__main__")
ADAPTERS = ("trackd.queue", "trackd.store", "trackd.limiter")
PROTOCOLS = ("trackd.queue.base", "trackd.store.base", "trackd.limiter.base")

#: importers (and their submodules) | may not import (nor submodules) | unless it is under
RULES = (
    Rule("trackd.wire", ("trackd",), (*CORE, "trackd.wire")),
    Rule("trackd.queue", ("trackd",), (*ADAPTER_MAY, "trackd.queue")),
    # the store's read views format times as the read API shows them (wire.times.iso, pure)
    Rule("trackd.store", ("trackd",), (*ADAPTER_MAY, "trackd.store", "trackd.wire.times")),
    Rule("trackd.limiter", ("trackd",), (*ADAPTER_MAY, "trackd.limiter")),
    Rule("trackd.processor", ("trackd.edge", *ENTRY_POINTS)),
    Rule("trackd.edge", (*ADAPTERS, *ENTRY_POINTS), PROTOCOLS),
)

#: driver package | the only modules that may import it (fnmatch patterns on dotted names)
DRIVERS = {
    "asyncpg": ("trackd.store.postgres*",),
    "redis": ("trackd.limiter.redis*",),
    "nats": ("trackd.queue.nats*",),
    "sqlite3": ("trackd.*sqlite*", "trackd.embedded"),
    "pyarrow": ("trackd.*export",),
}


def test_each_layer_imports_only_what_its_row_allows() -> None:
    imports = graph(PACKAGE)
    assert {"trackd.wire.event", "trackd.edge.track", "trackd.store.base"} <= set(imports)
    broken = broken_rules(imports, RULES)
    assert broken == [], "\n".join(broken)


def test_no_module_of_trackd_is_in_an_import_cycle() -> None:
    found = cycles(graph(PACKAGE))
    assert found == [], "\n".join(found)


def test_driver_packages_are_imported_only_by_their_adapters() -> None:
    misplaced = misplaced_drivers(graph(PACKAGE), DRIVERS)
    assert misplaced == [], "\n".join(misplaced)


def test_no_test_module_imports_a_conftest_or_another_test_module() -> None:
    """Shared helpers live in modules named after what they hold (tests/factories.py, …);
    conftest.py files hold fixtures, test modules hold tests."""
    found = [
        f"{importer}:{edge.line} imports {edge.target}"
        for importer, edges in sorted(graph(TESTS).items())
        for edge in edges
        if edge.target.startswith("tests.")
        and edge.target.rpartition(".")[2].startswith(("conftest", "test_"))
    ]
    assert found == [], "\n".join(found)


FAKE = {
    "__init__.py": "",
    "errors.py": "",
    "models.py": "from trackd.errors import TrackdError\n",
    "wire/__init__.py": "",
    "wire/event.py": (
        "from typing import TYPE_CHECKING\n"
        "from trackd import models\n"
        "from . import times\n"
        "if TYPE_CHECKING:\n"
        "    from trackd.store.base import WorkspaceStore\n"
    ),
    "wire/times.py": "import datetime\n",
    "store/__init__.py": "def open_store():\n    from trackd.store.sqlite import SQLiteStore\n",
    "store/base.py": "from ..models import Workspace\n",
    "store/sqlite.py": "import sqlite3\nfrom trackd.store import base\n",
    "store/memory.py": "import sqlite3\n",
    "edge/__init__.py": "",
    "edge/app.py": "from trackd.store.base import WorkspaceStore\nfrom trackd.edge import read\n",
    "edge/read.py": "def later():\n    import trackd.edge.app\n",
    "services.py": "from trackd.store import open_store\nfrom trackd.edge.app import App\n",
}


def test_the_checker_reports_a_wrong_import_a_cycle_and_a_misplaced_driver(
    tmp_path: Path,
) -> None:
    """A package named trackd with one forbidden import (the wire reaching a protocol, under
    TYPE_CHECKING), one cycle (closed by a function-level import) and one driver outside its
    adapter: exactly those are reported, and none of its allowed imports."""
    for name, source in FAKE.items():
        path = tmp_path / "trackd" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    imports = graph(tmp_path / "trackd")
    assert broken_rules(imports, RULES) == [
        "trackd.wire.event:5 imports trackd.store.base (rule: trackd.wire)"
    ]
    assert cycles(imports) == ["trackd.edge.app -> trackd.edge.read -> trackd.edge.app"]
    assert misplaced_drivers(imports, DRIVERS) == ["trackd.store.memory:1 imports sqlite3"]
