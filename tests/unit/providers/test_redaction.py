"""`Secrets`: what a provider scrubs from upstream errors, and the limits' defaults."""

from __future__ import annotations

from llm_gateway.core.config import ProviderSettings, RoutingSettings
from llm_gateway.core.errors import UpstreamStatusError
from llm_gateway.providers.redaction import Secrets, url_secrets

KEY = "sk-abcdefghijklmnop"


def test_bearer_values_url_secrets_and_encodings_are_all_secrets() -> None:
    in_url = url_secrets("https://user:pa%2Fss@host/v1?key=q-secret")
    secrets = Secrets([f"Bearer {KEY}", *in_url, None, "ab"])
    text = f"{KEY} pa/ss pa%2Fss q-secret ab"
    assert secrets.text(text) == "[redacted] [redacted] [redacted] [redacted] ab"
    assert secrets.body(text.encode()) == b"[redacted] [redacted] [redacted] [redacted] ab"


def test_every_field_of_an_error_is_scrubbed_and_a_bad_code_dropped() -> None:
    secrets = Secrets([KEY])
    error = UpstreamStatusError(f"bad {KEY}", status=400, code=KEY, param=f"p {KEY}")
    scrubbed = secrets.error(error)
    assert KEY not in str(scrubbed.to_body()) and KEY not in str(scrubbed)
    assert scrubbed.code is None
    assert secrets.code("context_length_exceeded") == "context_length_exceeded"
    assert secrets.code("has space") is None and secrets.code("x" * 65) is None


def test_an_event_with_an_escaped_key_is_rewritten() -> None:
    data = b'{"error": {"message": "\\u0073k-abcdefghijklmnop"}}'
    assert KEY.encode() not in Secrets([KEY]).event(data)
    assert b"redacted" in Secrets([KEY]).event(data)


def test_limit_defaults() -> None:
    settings = ProviderSettings(type="x")
    assert settings.max_response_bytes == 32 * 1024 * 1024
    assert settings.max_event_bytes == 1024 * 1024
    assert RoutingSettings().stream_idle_timeout == 60.0
