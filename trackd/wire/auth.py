"""Basic credentials (contract rows 2-5) and key hashing."""

from __future__ import annotations

import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable

from trackd.errors import ContractError
from trackd.wire import contract

KEY_BYTES = 32


def parse_basic(header: bytes | None) -> tuple[str, str]:
    """Return (username, password) of an `Authorization` header, or raise rows 2-5."""
    if header is None:
        raise contract.auth_header_required()
    scheme, _, token = header.strip().partition(b" ")
    if scheme.lower() != b"basic":
        raise contract.not_basic()
    try:
        decoded = binascii.a2b_base64(token.strip(), strict_mode=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise contract.undecodable_credentials() from exc
    username, colon, password = decoded.partition(":")
    if not colon:
        raise contract.undecodable_credentials()
    if not username:
        raise contract.app_key_missing()
    if not password:
        raise contract.app_secret_missing()
    return username, password


def new_key() -> str:
    """A Data API key: 32 bytes from `secrets`, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(KEY_BYTES)


def hash_key(key: str) -> str:
    """Keys are stored only as this hash; 256 bits of entropy need no slow KDF."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_matches(presented: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented key against the stored hash."""
    return hmac.compare_digest(hash_key(presented), stored_hash)


def check_key(
    presented: str,
    stored_hash: str | None,
    matches: Callable[[str, str], bool] = key_matches,
) -> None:
    """Rows 9 and 10 (`matches`: `key_matches`, or a memo of it)."""
    if stored_hash is None:
        raise contract.key_not_set()
    if not matches(presented, stored_hash):
        raise contract.wrong_key()


__all__ = [
    "ContractError",
    "admin_bearer",
    "check_key",
    "hash_key",
    "key_matches",
    "new_key",
    "parse_basic",
]


def admin_bearer(header: bytes | None, token: str) -> bool | None:
    """Whether an `Authorization` header carries trackd's admin token: None when it is not a
    bearer header or no token is configured, else whether the token matches (constant time)."""
    if not token or header is None or header[:7].lower() != b"bearer ":
        return None
    return hmac.compare_digest(header[7:].strip(), token.encode())
