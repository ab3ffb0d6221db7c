"""Fault suites: the real `trackd serve` under a full disk, SIGTERM under load, and overload.

Their load is tests/e2e/load.py's; tests/faults/figures.py prints what docs/reliability.md
quotes, tests/faults/disk.py makes a small disk and fills it."""

import pytest

# the helpers assert what the tests expect: rewritten, a failure shows both sides
pytest.register_assert_rewrite("tests.faults.disk")
