"""Secrets scrubbed from every log line, whoever logs it.

Two layers: the exact credentials the config holds (provider keys, header values, the
userinfo and query values of URLs, the master key, the metrics token), found by walking the
validated config for its secret types; and patterns for credentials the config cannot
know (callers' virtual keys, bearer tokens, JWTs, URL userinfo, AWS and Google key ids).
`RedactingFilter` applies both to a record's message, arguments, exception and stack text,
on the handler's side (the log-writer thread), not on the event loop.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from pydantic import BaseModel, SecretStr

from llm_gateway.core.secrets import SecretHeaders, SecretUrl

MASK = "[redacted]"
MIN_SECRET = 6

PATTERNS = re.compile(
    "|".join(
        (
            r"sk-[A-Za-z0-9_\-]{8,}",  # OpenAI-style keys, Anthropic's, our own sk-gw- keys
            r"(?<=[Bb]earer )[A-Za-z0-9._~+/=\-]{6,}",
            r"eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*",  # a JWT
            r"(?<=://)[^/\s:@]+:[^/\s@]*(?=@)",  # URL userinfo with a password
            r"(?:AKIA|ASIA)[0-9A-Z]{16}",
            r"AIza[0-9A-Za-z_\-]{30,}",
        )
    )
)

MARKERS = ("sk-", "earer ", "eyJ", "://", "AKIA", "ASIA", "AIza")
"""Every match of `PATTERNS` contains one of these (checked inline in `Redactor.__call__`)."""


def _url_values(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
        values = [parts.username or "", parts.password or ""]
    except ValueError:
        return []
    return values + [value for _, value in parse_qsl(parts.query, keep_blank_values=True)]


def config_secrets(value: Any) -> Iterator[str]:
    """Every credential in a validated config (a pydantic model tree)."""
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, SecretUrl):
        yield from _url_values(value.get_secret_value())
    elif isinstance(value, SecretHeaders):
        yield from value.values()
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from config_secrets(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from config_secrets(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from config_secrets(item)


class Redactor:
    """Masks known credentials and credential-shaped strings in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._values: tuple[str, ...] = ()
        self._known: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Mask these too (a reloaded config's new credentials); the old ones stay masked."""
        found: set[str] = set(self._values)
        for secret in secrets:
            for variant in (secret, *secret.split()):
                if len(variant) >= MIN_SECRET:
                    found.update((variant, quote(variant, safe="")))
        ordered = sorted(found, key=len, reverse=True)
        self._values = tuple(ordered)  # swapped whole: the writer thread reads them
        self._known = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        # Substring checks first: most lines hold nothing to mask, and a regex scan of a
        # whole access line cost more than the rest of writing it.
        if self._known is not None and any(value in text for value in self._values):
            text = self._known.sub(MASK, text)
        if _shaped(text):
            text = PATTERNS.sub(MASK, text)
        return text

    def needed(self, text: str) -> bool:
        """Whether `text` holds a known credential or the start of a credential-shaped string:
        False means `self(text)` would return it unchanged."""
        return (self._known is not None and any(value in text for value in self._values)) or _shaped(text)


def _shaped(text: str) -> bool:
    """Every pattern of `PATTERNS` starts with one of these (a cheap test before the regex)."""
    return (
        "sk-" in text
        or "earer " in text
        or "eyJ" in text
        or "://" in text
        or "AKIA" in text
        or "ASIA" in text
        or "AIza" in text
    )


class RedactingFilter(logging.Filter):
    """Renders a record's message (and traceback) once and redacts it; never drops a record."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: log what there is
            message = f"{record.msg!r} {record.args!r}"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        record.redacted = True
        return True
