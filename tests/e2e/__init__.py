import pytest

# the helpers assert what the tests expect: rewritten, a failure shows both sides
pytest.register_assert_rewrite("tests.e2e.helpers", "tests.e2e.server")
