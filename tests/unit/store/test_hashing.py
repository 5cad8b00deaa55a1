"""Key secrets: random, prefixed, long enough, hashed the same way every time, never reversible."""

from __future__ import annotations

import base64
import hashlib

from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.store.hashing import PREFIX, hash_secret, key_hint, new_id, new_secret, same_hash


def test_secrets_are_prefixed_random_and_carry_at_least_128_bits() -> None:
    secrets = {new_secret() for _ in range(1000)}
    assert len(secrets) == 1000
    for secret in secrets:
        assert secret.startswith(PREFIX)
        body = secret.removeprefix(PREFIX)
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        assert len(raw) * 8 >= 128


def test_the_hash_is_sha256_hex_and_the_hint_shows_four_characters() -> None:
    secret = new_secret()
    assert hash_secret(secret) == hashlib.sha256(secret.encode()).hexdigest()
    assert key_hint(secret) == f"sk-gw-…{secret[-4:]}"
    assert secret[6:-4] not in key_hint(secret)
    assert same_hash(hash_secret(secret), hash_secret(secret))
    assert not same_hash(hash_secret(secret), hash_secret(secret + "x"))


@given(st.text())
def test_any_presented_text_hashes_without_raising(text: str) -> None:
    assert len(hash_secret(text)) == 64


def test_ids_are_not_secrets_and_do_not_repeat() -> None:
    ids = {new_id("key") for _ in range(1000)}
    assert len(ids) == 1000 and all(i.startswith("key_") and not i.startswith(PREFIX) for i in ids)
