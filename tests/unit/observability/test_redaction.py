"""Secrets never reach a log line: the exact credentials of the config, and anything
shaped like a credential, masked by the filter on every handler."""

from __future__ import annotations

import io
import logging

from llm_gateway.observability.redaction import MASK, RedactingFilter, Redactor, config_secrets
from tests.stubs import mock_config

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXBhcnQ"


def test_credential_shapes_are_masked() -> None:
    redact = Redactor()
    for secret, text in [
        ("sk-gw-AbCdEfGh0123456789abcdef", "key sk-gw-AbCdEfGh0123456789abcdef refused"),
        ("sk-proj-0123456789abcdefXYZ", "upstream said: bad key sk-proj-0123456789abcdefXYZ"),
        ("tok3n-value-xyz", "Authorization: Bearer tok3n-value-xyz"),
        (JWT, f"jwt {JWT} expired"),
        ("user:hunter2pass", "connecting to postgresql://user:hunter2pass@db:5432/x"),
        ("AKIAABCDEFGHIJKLMNOP", "aws key AKIAABCDEFGHIJKLMNOP"),
    ]:
        masked = redact(text)
        assert secret not in masked and MASK in masked, text


def test_ordinary_text_is_left_alone() -> None:
    text = 'model=gpt-4o prompt_tokens=12 "cached_tokens": 3 https://api.example.com/v1 task-key'
    assert Redactor()(text) == text


def test_the_configs_own_secrets_are_masked_whatever_their_shape() -> None:
    config = mock_config(master_key="plain-master-value-42", metrics={"token": "metric-token-99"})
    found = set(config_secrets(config))
    assert {"plain-master-value-42", "metric-token-99"} <= found
    redact = Redactor(found)
    assert redact("x plain-master-value-42 y metric-token-99") == f"x {MASK} y {MASK}"


def test_the_filter_masks_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(Redactor(["canary-secret-123"])))
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("calling with %s", "canary-secret-123")
        try:
            raise ValueError("the key canary-secret-123 was bad")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "canary-secret-123" not in output
    assert output.count(MASK) >= 2 and "ValueError: the key" in output
