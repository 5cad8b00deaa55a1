"""A provider's own credentials, scrubbed from everything its upstream sends back to a client.

An upstream may echo what it was sent (a key in an error message, in `code`, in `param`, in a
field of its own), and a hostile one does so on purpose. Every string that leaves the gateway
from an upstream error therefore passes `Secrets` first: the raw body before it is parsed or
cut (so a key straddling a cut is still whole when it is replaced), and every field of the
mapped error after (so a key spelled with JSON escapes is caught once decoded).

A provider builds one `Secrets` from all of its credentials (`Provider.secrets()`): API keys
and tokens, the values of its `headers:` block, the userinfo and query values of its URLs,
AWS keys and session token. Upstream `code` values pass only as plain identifiers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import orjson

from llm_gateway.core.errors import ProviderError

MASK = "[redacted]"
MIN_SECRET = 4
"""Shorter values are not credentials worth the damage of replacing them everywhere."""
CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def url_secrets(url: str) -> list[str]:
    """The userinfo and query values of `url`: where a base URL carries credentials."""
    try:
        parts = urlsplit(url)
        found = [parts.username or "", parts.password or ""]
    except ValueError:
        return []
    found += [value for _, value in parse_qsl(parts.query, keep_blank_values=True)]
    return found


class Secrets:
    """The credentials of one provider, and the scrubbing of upstream text against them."""

    __slots__ = ("_bytes", "values")

    def __init__(self, values: Iterable[str | None]) -> None:
        found: set[str] = set()
        for value in values:
            if not value:
                continue
            # "Bearer <token>" in a header: the token alone is the secret too.
            for variant in (value, *value.split()):
                if len(variant) >= MIN_SECRET:
                    found.update((variant, quote(variant, safe=""), unquote(variant)))
        # Longest first, so a secret that contains another is replaced whole.
        self.values: tuple[str, ...] = tuple(
            sorted((v for v in found if len(v) >= MIN_SECRET), key=len, reverse=True)
        )
        self._bytes = tuple(value.encode() for value in self.values)

    def __bool__(self) -> bool:
        return bool(self.values)

    def text(self, text: str) -> str:
        for secret in self.values:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def body(self, body: bytes) -> bytes:
        """A raw upstream body with every credential replaced, before anything parses or cuts it."""
        for secret in self._bytes:
            if secret in body:
                body = body.replace(secret, MASK.encode())
        return body

    def code(self, value: str | None) -> str | None:
        """An upstream `code`, kept only when it is a plain identifier that carries no secret."""
        if value is None or not CODE.fullmatch(value) or self.text(value) != value:
            return None
        return value

    def error(self, error: ProviderError) -> ProviderError:
        """`error` (just mapped, not yet raised) with every upstream-derived field scrubbed."""
        error.message = self.text(error.message)
        error.args = (error.message,)
        error.code = self.code(error.code) or type(error).default_code
        error.param = self.text(error.param) if error.param is not None else None
        if isinstance(error.error_type, str) and self.text(error.error_type) != error.error_type:
            error.error_type = "upstream_error"
        error.headers = {name: self.text(value) for name, value in error.headers.items()}
        return error

    def event(self, data: bytes) -> bytes:
        """A relayed event's JSON data with every credential removed, escaped spellings included."""
        data = self.body(data)
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            return data
        scrubbed = self._scrub(parsed)
        return data if scrubbed == parsed else orjson.dumps(scrubbed)

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self._scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scrub(v) for v in value]
        return value
