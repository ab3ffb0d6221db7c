"""`Settings.load`: flags over `TRACKD_*` variables over defaults, every value checked, and a bad
one is a `ConfigError` of one line naming where it came from, the value, and what is accepted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from trackd.errors import ConfigError
from trackd.limiter import open_limiter
from trackd.queue import open_queue
from trackd.settings import (
    LIMITER_SCHEMES,
    QUEUE_SCHEMES,
    STORE_SCHEMES,
    Settings,
)
from trackd.store import open_event_store, open_workspace_store

PORT = "an integer from 0 to 65535"
COUNT = "an integer of at least 1"
SECONDS = "a number above 0, up to 86400"
WAIT = "a number from 0 to 86400"
QUEUE = "a sqlite://, memory:// or nats:// URL, or empty for the embedded SQLite queue"
STORE = (
    "a sqlite://, memory://, postgresql:// or postgres:// URL,"
    " or empty for the embedded SQLite store"
)
LIMITER = (
    "a memory://, sqlite://, redis:// or rediss:// URL,"
    " or empty for memory:// (a shared SQLite file with --workers)"
)
LOG_LEVEL = "one of debug, info, warning or error"
PROCESSOR = "one of process, inline or off"

#: Every field with a constraint, what it accepts, and text it must refuse.
BAD = {
    "port": (PORT, ["abc", "", "8080.5", " 8080", "-1", "65536", "1e9", "true"]),
    "workers": (COUNT, ["two", "0", "-3", "1.5"]),
    "max_body_bytes": (COUNT, ["128k", "0", "-1"]),
    "max_pending_writes": (COUNT, ["many", "0"]),
    "max_in_flight_requests": (COUNT, ["x", "0"]),
    "idempotency_ttl_seconds": (COUNT, ["1d", "0", "0.5"]),
    "max_wait_seconds": (SECONDS, ["half", "0", "-0.5", "inf", "nan", "86401"]),
    "registry_refresh_seconds": (SECONDS, ["soon", "0", "-1"]),
    "header_timeout_seconds": (SECONDS, ["10s", "0", "inf"]),
    "body_timeout_seconds": (SECONDS, ["", "0", "1e6"]),
    "shed_hold_seconds": (WAIT, ["2s", "-0.1", "inf"]),
    "graceful_timeout_seconds": (WAIT, ["ten", "-1", "inf", "nan"]),
    "log_level": (LOG_LEVEL, ["verbose", "", "critical"]),
    "processor": (PROCESSOR, ["bogus", "", "Process", "on"]),
    "queue": (QUEUE, ["kafka://x", "sqlite", "/tmp/q.db", "SQLITE:///q.db", "postgresql://h/d"]),
    "store": (STORE, ["ftp://x", "mysql://h/d", "sqlite:/x.db", "nats://h"]),
    "limiter": (LIMITER, ["memcached://h", "redis:/h", "nats://h", " memory://"]),
    # -- the /v1 fast path --
    "fast_path": ("true, false, 1 or 0", ["maybe", "", "2"]),
}
BAD_CASES = [(field, text, accepts) for field, (accepts, texts) in BAD.items() for text in texts]

#: Text from the environment and the value it becomes.
GOOD = [
    ("host", "0.0.0.0", "0.0.0.0"),
    ("port", "0", 0),
    ("port", "65535", 65535),
    ("workers", "4", 4),
    ("data_dir", "/var/lib/trackd", "/var/lib/trackd"),
    ("max_body_bytes", "1024", 1024),
    ("max_pending_writes", "50", 50),
    ("max_in_flight_requests", "1", 1),
    ("idempotency_ttl_seconds", "3600", 3600),
    ("max_wait_seconds", "0.25", 0.25),
    ("registry_refresh_seconds", "1e-3", 0.001),
    ("header_timeout_seconds", "3", 3.0),
    ("body_timeout_seconds", "86400", 86400.0),
    ("shed_hold_seconds", "0", 0.0),
    ("graceful_timeout_seconds", "0", 0.0),
    ("admin_token", "s3cret", "s3cret"),
    ("log_level", "warning", "warning"),
    ("log_level", "WARNING", "warning"),
    ("processor", "inline", "inline"),
    ("processor", "off", "off"),
    ("queue", "", ""),
    ("queue", "nats://127.0.0.1:4222/EVENTS", "nats://127.0.0.1:4222/EVENTS"),
    ("store", "postgres://u@h/d", "postgres://u@h/d"),
    ("store", "memory://", "memory://"),
    ("limiter", "rediss://h:6380/0?prefix=t:", "rediss://h:6380/0?prefix=t:"),
    # -- the /v1 fast path --
    ("fast_path", "0", False),
    ("fast_path", "false", False),
    ("fast_path", "1", True),
]


def env_name(field: str) -> str:
    return "TRACKD_" + field.upper()


def flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def refusal(load: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        load()
    return str(caught.value)


def test_nothing_given_is_the_defaults() -> None:
    assert Settings.load({}, {}) == Settings()
    assert Settings.load({"port": None, "command": "serve", "json": True}, {}) == Settings()


def test_defaults_are_what_the_docs_say() -> None:
    defaults = Settings.load({}, {})
    assert (defaults.host, defaults.port, defaults.workers) == ("127.0.0.1", 8080, 1)
    assert (defaults.processor, defaults.log_level) == ("process", "info")
    assert (defaults.queue, defaults.store, defaults.limiter) == ("", "", "")


@pytest.mark.parametrize(("field", "text", "value"), GOOD)
def test_a_variable_s_text_becomes_the_field_s_type(field: str, text: str, value: object) -> None:
    loaded = getattr(Settings.load({}, {env_name(field): text}), field)
    assert (type(loaded), loaded) == (type(value), value)


@pytest.mark.parametrize(("field", "text", "value"), GOOD)
def test_a_flag_s_text_becomes_the_field_s_type(field: str, text: str, value: object) -> None:
    loaded = getattr(Settings.load({field: text}, {}), field)
    assert (type(loaded), loaded) == (type(value), value)


@pytest.mark.parametrize(("field", "text", "accepts"), BAD_CASES)
def test_a_bad_variable_is_one_line_naming_it_its_value_and_what_it_accepts(
    field: str, text: str, accepts: str
) -> None:
    message = refusal(lambda: Settings.load({}, {env_name(field): text}))
    assert message == f"{env_name(field)}={text!r}: expected {accepts}"


@pytest.mark.parametrize(("field", "text", "accepts"), BAD_CASES)
def test_a_bad_flag_is_one_line_naming_it_its_value_and_what_it_accepts(
    field: str, text: str, accepts: str
) -> None:
    message = refusal(lambda: Settings.load({field: text}, {}))
    assert message == f"{flag(field)} {text!r}: expected {accepts}"


def test_the_exact_lines_of_the_usual_mistakes() -> None:
    assert refusal(lambda: Settings.load({}, {"TRACKD_PORT": "abc"})) == (
        "TRACKD_PORT='abc': expected an integer from 0 to 65535"
    )
    assert refusal(lambda: Settings.load({}, {"TRACKD_PROCESSOR": "bogus"})) == (
        "TRACKD_PROCESSOR='bogus': expected one of process, inline or off"
    )
    assert refusal(lambda: Settings.load({"store": "ftp://x"}, {})) == (
        "--store 'ftp://x': expected a sqlite://, memory://, postgresql:// or postgres:// URL,"
        " or empty for the embedded SQLite store"
    )
    assert refusal(lambda: Settings.load({"port": 70000}, {})) == (
        "--port 70000: expected an integer from 0 to 65535"
    )


def test_flags_win_over_variables_which_win_over_defaults() -> None:
    env = {"TRACKD_PORT": "9000", "TRACKD_HOST": "0.0.0.0", "TRACKD_WORKERS": "3"}
    loaded = Settings.load({"port": "9100", "workers": None}, env)
    assert (loaded.port, loaded.host, loaded.workers, loaded.data_dir) == (
        9100,
        "0.0.0.0",
        3,
        "./trackd-data",
    )


def test_a_bad_variable_that_a_flag_overrides_is_not_read() -> None:
    loaded = Settings.load({"port": "9100", "processor": "off"}, {"TRACKD_PORT": "abc"})
    assert (loaded.port, loaded.processor) == (9100, "off")
    loaded = Settings.load({"processor": "off"}, {"TRACKD_PROCESSOR": "bogus"})
    assert loaded.processor == "off"


def test_a_bad_flag_is_refused_even_beside_a_good_variable() -> None:
    message = refusal(lambda: Settings.load({"workers": "0"}, {"TRACKD_WORKERS": "2"}))
    assert message == "--workers '0': expected an integer of at least 1"


def test_variables_that_name_no_setting_are_ignored() -> None:
    env = {"TRACKD_SETTINGS_JSON": "{", "TRACKD_TEST_POSTGRES": "x", "PORT": "abc"}
    assert Settings.load({}, env) == Settings()


def test_loaded_settings_travel_to_a_worker_as_json_unchanged() -> None:
    env = {"TRACKD_PROCESSOR": "inline", "TRACKD_MAX_WAIT_SECONDS": "0.1"}
    loaded = Settings.load({"port": "0", "store": "memory://"}, env)
    assert Settings.from_json(loaded.to_json()) == loaded


def test_json_that_breaks_a_constraint_is_refused_too() -> None:
    with pytest.raises(msgspec.ValidationError):
        Settings.from_json(b'{"processor": "bogus"}')


def schemes(open_: Any, tmp_path: Path) -> dict[str, bool]:
    """For each scheme, whether the registry `open_` takes a URL of it."""
    names = {*QUEUE_SCHEMES, *STORE_SCHEMES, *LIMITER_SCHEMES, "kafka", "ftp", "mysql"}
    taken = {}
    for scheme in sorted(names):
        rest = f"/{tmp_path / scheme}.db" if scheme == "sqlite" else "127.0.0.1/x"
        try:
            open_(f"{scheme}://{rest}")
        except ConfigError as exc:
            assert "unknown" in str(exc), exc
            taken[scheme] = False
        else:
            taken[scheme] = True
    return taken


def test_the_schemes_settings_accept_are_the_ones_each_registry_opens(tmp_path: Path) -> None:
    def accepted(schemes_: tuple[str, ...], taken: dict[str, bool]) -> None:
        assert {s for s, ok in taken.items() if ok} == set(schemes_)

    accepted(QUEUE_SCHEMES, schemes(lambda url: open_queue(url, Settings()), tmp_path))
    accepted(STORE_SCHEMES, schemes(open_workspace_store, tmp_path))
    accepted(STORE_SCHEMES, schemes(open_event_store, tmp_path))
    accepted(LIMITER_SCHEMES, schemes(open_limiter, tmp_path))
