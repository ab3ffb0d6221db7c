"""Basic credentials (contract rows 2-5, 9-10) and the Data API key's hashing."""

from __future__ import annotations

import base64
import hmac
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trackd.errors import ContractError
from trackd.wire import auth
from trackd.wire.auth import check_key, hash_key, key_matches, new_key, parse_basic

AUTH = "Authentication required"


def b64(raw: bytes) -> bytes:
    return base64.b64encode(raw)


def rejection(header: bytes | None) -> tuple[int, str, str, str | None]:
    with pytest.raises(ContractError) as caught:
        parse_basic(header)
    exc = caught.value
    return exc.status, exc.type, exc.message, exc.attribute


def test_missing_header_is_rejected_with_401_header_required() -> None:
    assert rejection(None) == (401, AUTH, "Authentication Header Required", None)


@pytest.mark.parametrize(
    "header",
    [
        b"Bearer " + b64(b"WS1:key"),
        b"Digest username=WS1",
        b"Token abc",
        b64(b"WS1:key"),  # credentials without a scheme
        b"",
        b"Basicc " + b64(b"WS1:key"),
    ],
)
def test_a_scheme_other_than_basic_is_rejected_with_401(header: bytes) -> None:
    assert rejection(header) == (
        401,
        AUTH,
        "Invalid authorization used. Only 'Basic Auth' authorization is supported.",
        None,
    )


@pytest.mark.parametrize(
    "header",
    [
        b"Basic",
        b"Basic ",
        b"Basic !!!!",
        b"Basic " + b64(b"WS1:key")[:-1],  # padding cut off
        b"Basic " + base64.urlsafe_b64encode(b"\xfb\xff:\xfe\xff"),  # not the standard alphabet
        b"Basic " + b64(b"WS1 key"),  # no colon
        b"Basic " + b64(b"\xff\xfe:key"),  # not UTF-8
        b"Basic " + b64(b"WS1:key") + b"@",
    ],
)
def test_undecodable_credentials_are_rejected_with_401(header: bytes) -> None:
    assert rejection(header) == (401, AUTH, "Invalid identity information found", None)


@pytest.mark.parametrize("credentials", [b":key", b":", b"::"])
def test_an_empty_username_is_rejected_as_a_missing_app_key(credentials: bytes) -> None:
    assert rejection(b"Basic " + b64(credentials)) == (
        401,
        AUTH,
        "APP_KEY missing in the authentication header",
        None,
    )


def test_an_empty_password_is_rejected_as_a_missing_app_secret() -> None:
    assert rejection(b"Basic " + b64(b"WS1:")) == (
        401,
        AUTH,
        "APP_SECRET missing in the authentication header",
        None,
    )


@pytest.mark.parametrize(
    "header",
    [
        b"Basic " + b64(b"WS1:key"),
        b"basic " + b64(b"WS1:key"),
        b"BASIC " + b64(b"WS1:key"),
        b"  Basic   " + b64(b"WS1:key") + b"  ",
    ],
)
def test_the_basic_scheme_is_matched_case_insensitively(header: bytes) -> None:
    assert parse_basic(header) == ("WS1", "key")


def test_a_password_may_contain_colons() -> None:
    assert parse_basic(b"Basic " + b64(b"WS1:a:b:c")) == ("WS1", "a:b:c")


@given(
    username=st.text(min_size=1).filter(lambda u: ":" not in u),
    password=st.text(min_size=1),
)
def test_any_utf8_credentials_round_trip(username: str, password: str) -> None:
    header = b"Basic " + b64(f"{username}:{password}".encode())
    assert parse_basic(header) == (username, password)


@given(header=st.binary(max_size=80) | st.binary(max_size=60).map(lambda b: b"Basic " + b))
def test_any_header_gives_credentials_or_a_401(header: bytes) -> None:
    try:
        username, password = parse_basic(header)
    except ContractError as exc:
        assert exc.status == 401
        assert exc.type == AUTH
    else:
        assert username
        assert password


# Keys --------------------------------------------------------------------------------------


def test_hash_key_is_the_sha256_hex_digest() -> None:
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert hash_key("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@given(key=st.text())
def test_hash_key_is_64_lowercase_hex_characters(key: str) -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", hash_key(key))


@given(key=st.text(min_size=1), other=st.text(min_size=1))
def test_a_key_matches_only_its_own_hash(key: str, other: str) -> None:
    assert key_matches(key, hash_key(key))
    assert key_matches(other, hash_key(key)) == (other == key)


def test_key_comparison_is_constant_time_through_hmac(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, object]] = []
    compare_digest = hmac.compare_digest

    def recording_compare(a: str, b: str) -> bool:
        calls.append((a, b))
        return compare_digest(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", recording_compare)
    stored = hash_key("right")
    assert key_matches("right", stored) is True
    assert key_matches("wrong", stored) is False
    assert calls == [(stored, stored), (hash_key("wrong"), stored)]


def test_a_workspace_without_a_key_is_rejected_with_409() -> None:
    with pytest.raises(ContractError) as caught:
        check_key("anything", None)
    assert (caught.value.status, caught.value.type, caught.value.message) == (
        409,
        AUTH,
        "App Secret key is not set. Please login to the dashboard to set a key",
    )


def test_a_wrong_key_is_rejected_with_401() -> None:
    with pytest.raises(ContractError) as caught:
        check_key("wrong", hash_key("right"))
    assert (caught.value.status, caught.value.type, caught.value.message) == (
        401,
        AUTH,
        "App Secret key mismatch. Please login to the dashboard to verify key",
    )


def test_the_right_key_passes() -> None:
    assert check_key("right", hash_key("right")) is None


def test_new_keys_carry_at_least_32_random_bytes_in_url_safe_base64() -> None:
    keys = [new_key() for _ in range(2000)]
    assert len(set(keys)) == len(keys)
    for key in keys:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", key)
        assert len(base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))) >= 32
    assert len(set("".join(keys))) == 64  # the whole URL-safe alphabet shows up
