"""The streaming scanner: span-finding guardrails over text that arrives in pieces.

A card number can arrive as `41111111`, `1111` and `1111`: no single chunk matches. The
scanner keeps the tail of what it was fed unsent, scans what is held together with what
arrives, and sends only what lies before the held tail, so every match up to half of
`hold` characters long is seen whole before any of it leaves. The stream still flows: at
most `hold` characters ever wait. Text is scanned once `hold` characters are held, and
sent down to `hold // 2`, so a scan happens every `hold // 2` characters rather than on
every chunk (scanning dominates the cost). A match running across the cut is sent
redacted up to its end, so the wait never grows; `flush` sends the rest when the text ends.

It also keeps the last few characters it sent, as left context, so a pattern's
look-behind (`not after a digit`) judges the held text the way it would the whole text.

    feed(text) -> what may be sent now        flush() -> the rest, at the end
    a `block` guardrail that matches raises `Blocked` before any of the match is sent
"""

from __future__ import annotations

from collections.abc import Sequence

from llm_gateway.services.guardrails.checks import TextCheck
from llm_gateway.services.guardrails.detectors import Span, merged, redact
from llm_gateway.services.guardrails.outcomes import Outcomes

CONTEXT = 16
"""Characters already sent that are scanned again as left context."""


class Blocked(Exception):
    def __init__(self, check: TextCheck, reason: str) -> None:
        super().__init__(reason)
        self.check = check
        self.reason = reason


class StreamScanner:
    __slots__ = ("_checks", "_hold", "_outcomes", "_pending", "_tail")

    def __init__(self, checks: Sequence[TextCheck], hold: int, outcomes: Outcomes) -> None:
        self._checks = checks
        self._hold = hold
        self._outcomes = outcomes
        self._pending = ""
        self._tail = ""

    @property
    def held(self) -> int:
        """How many characters are waiting (never more than `hold` after a `feed`)."""
        return len(self._pending)

    def feed(self, text: str) -> str:
        if not text:
            return ""
        self._pending += text
        if len(self._pending) <= self._hold:
            return ""
        return self._scan(final=False)

    def flush(self) -> str:
        if not self._pending:
            return ""
        return self._scan(final=True)

    def _scan(self, *, final: bool) -> str:
        window = self._tail + self._pending
        offset = len(self._tail)
        spans = self._redactions(window, offset)
        cut = len(window) if final else len(window) - self._hold // 2
        for span in spans:
            if span.start < cut < span.end:
                cut = span.end
        sent = redact(
            window[offset:cut],
            [Span(s.start - offset, s.end - offset, s.label) for s in spans if s.end <= cut],
        )
        self._pending = window[cut:]
        self._tail = (self._tail + sent)[-CONTEXT:]
        return sent

    def _redactions(self, window: str, offset: int) -> list[Span]:
        """The spans to redact in the unsent part of `window`; raises on a blocking match
        and records warnings and redactions."""
        found: list[Span] = []
        for check in self._checks:
            spans = [
                Span(max(span.start, offset), span.end, span.label)
                for span in check.spans(window)
                if span.end > offset
            ]
            if not spans:
                continue
            action = check.settings.action
            reason = ",".join(sorted({span.label for span in spans}))
            if action == "block":
                self._outcomes.record(check.name, "blocked")
                raise Blocked(check, reason)
            if action == "warn":
                self._outcomes.record(check.name, "warned")
                continue
            self._outcomes.record(check.name, "redacted")
            found.extend(spans)
        found.sort(key=lambda span: (span.start, -span.end))
        return merged(found)
