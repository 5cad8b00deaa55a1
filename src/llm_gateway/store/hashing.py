"""Virtual key secrets: made once, shown once, kept only as a hash.

A secret is `sk-gw-` and 32 random bytes (`secrets.token_urlsafe`, 256 bits). With that
much entropy a single SHA-256 is the right hash: there is nothing to brute-force, so a
slow password hash would only cost CPU on every request. The hash is hex, so it is
also the in-memory index key; comparisons of hashes are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX = "sk-gw-"
SECRET_BYTES = 32


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str) -> str:
    """Hex SHA-256 of the secret's UTF-8 bytes (lone surrogates passed through, so any str hashes)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def same_hash(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode(), right.encode())


def key_hint(secret: str) -> str:
    """A short, non-secret label for display: the prefix and the last four characters."""
    return f"{PREFIX}…{secret[-4:]}"


def new_id(kind: str) -> str:
    """`key_…` or `team_…`: random, not secret, safe in URLs and logs."""
    return f"{kind}_{secrets.token_hex(8)}"
