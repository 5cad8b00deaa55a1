"""The streaming scanner: span-finding guardrails over text that arrives in pieces.

A card number can arrive as `41111111`, `1111` and `1111`: no single chunk matches. The
scanner keeps the tail of what it was fed unsent, scans what is held together with what
arrives, and sends only what lies before the held tail, so every match up to half of
`hold` characters long is seen whole before any of it leaves. The stream still flows: at
most `hold` characters ever wait. Text is scanned once `hold` characters are held, and
sent down to `hold // 2`, so a scan happens every `hold // 2` characters rather than on
every chunk (scanning dominates the cost). A match running across the cut is sent
redacted up to its end, so the wait never grows; `flush` sends the rest when the text ends.

A secret between a begin and an end marker (a PEM private key, `DelimitedDetector`) can
be far longer than the hold-back: the scanner holds from its begin marker (or from what may
still become one) until its end marker comes, and then redacts it whole, or up to the
guardrail's `stream_block_max_chars`; past that it raises `Blocked` (fail closed) and none
of the block has been sent. While a block is held, every `hold // 2` characters only its
own detector looks again (is it still open, within its cap?), which is cheap; everything is
scanned again once it has closed, so the text after it flows at once.

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
    __slots__ = ("_block", "_checks", "_hold", "_limit", "_outcomes", "_pending", "_tail")

    def __init__(self, checks: Sequence[TextCheck], hold: int, outcomes: Outcomes) -> None:
        self._checks = checks
        self._hold = hold
        self._limit = hold
        """Scan once more than this is held: `hold`, or more while a block is held whole."""
        self._block: int | None = None
        """Where in `_pending` the block held whole begins, while one is."""
        self._outcomes = outcomes
        self._pending = ""
        self._tail = ""

    @property
    def held(self) -> int:
        """How many characters are waiting: never more than `hold` after a `feed`, but
        for a begun block (a PEM key), held whole up to its guardrail's cap."""
        return len(self._pending)

    def feed(self, text: str) -> str:
        if not text:
            return ""
        self._pending += text
        if len(self._pending) <= self._limit:
            return ""
        if self._block is not None and self._still_held():
            return ""
        return self._scan(final=False)

    def _still_held(self) -> bool:
        """Whether the held block is still open (and within its cap): then only that is
        checked, which is cheap, rather than every check over all the held text."""
        window = self._tail + self._pending
        offset = len(self._tail)
        start, room = self._opened(window, offset)
        if start is None or start - offset != self._block:
            return False
        self._limit = len(self._pending) + min(self._hold // 2, room)
        return True

    def flush(self) -> str:
        if not self._pending:
            return ""
        return self._scan(final=True)

    def _scan(self, *, final: bool) -> str:
        window = self._tail + self._pending
        offset = len(self._tail)
        spans = self._redactions(window, offset)
        opened, room = (None, 0) if final else self._opened(window, offset)
        cut = len(window) if final else len(window) - self._hold // 2
        if opened is not None:
            cut = min(cut, opened)
        for span in spans:
            if span.start < cut < span.end:
                # Sent redacted to its end, unless it runs into a held block: then held too.
                cut = span.end if opened is None or span.end <= opened else span.start
        sent = redact(
            window[offset:cut],
            [Span(s.start - offset, s.end - offset, s.label) for s in spans if s.end <= cut],
        )
        self._pending = window[cut:]
        self._tail = (self._tail + sent)[-CONTEXT:]
        if opened is None:
            self._block = None
            self._limit = self._hold
        else:
            self._block = opened - cut
            self._limit = max(self._hold, len(self._pending) + min(self._hold // 2, room))
        return sent

    def _opened(self, window: str, offset: int) -> tuple[int | None, int]:
        """Where the earliest block still arriving in the unsent text begins (None: none),
        and how many more characters the open blocks may grow by before a cap is passed;
        raises `Blocked` when one is over its guardrail's cap."""
        start: int | None = None
        room = 0
        for check in self._checks:
            if check.settings.action == "warn":
                continue
            span = check.opened(window)
            if span is None:
                continue
            begun = max(span.start, offset)
            cap = check.settings.stream_block_max_chars
            if len(window) - begun > cap:
                self._outcomes.record(check.name, "blocked")
                raise Blocked(check, f"{span.label} longer than {cap} characters, not sent")
            left = cap - (len(window) - begun)
            room = left if start is None else min(room, left)
            start = begun if start is None else min(start, begun)
        return start, room

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
