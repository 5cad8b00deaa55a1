"""Pure finders of sensitive text: each returns the spans it matched, nothing else.

Validated where a format has a check digit, so ordinary numbers are not taken for PII:
card numbers must pass Luhn and start like a card network's numbers, IBANs must pass
ISO 13616's mod-97 check, SSNs need their dashes and exclude the never-issued areas,
phone numbers need separators or a `+` country prefix, IPv6 addresses must parse.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    label: str


class Detector:
    """Finds one kind of text (`label`) in a string."""

    label: str = "text"

    def find(self, text: str) -> list[Span]:
        raise NotImplementedError

    def opened(self, text: str) -> Span | None:
        """A match begun but not finished at the end of `text` (from its start to the end),
        which a stream must hold back until it ends; None for kinds found in one short span."""
        return None


class PatternDetector(Detector):
    """Matches of a regular expression, each kept when `valid(matched text)` says so;
    `group` picks the part of a match that is the secret (a key after its name)."""

    __slots__ = ("_group", "_regex", "_valid", "label")

    def __init__(
        self,
        label: str,
        regex: re.Pattern[str],
        valid: Callable[[str], bool] | None = None,
        group: int = 0,
    ) -> None:
        self.label = label
        self._regex = regex
        self._valid = valid
        self._group = group

    def find(self, text: str) -> list[Span]:
        spans = []
        for match in self._regex.finditer(text):
            start, end = match.span(self._group)
            if start < 0 or (self._valid is not None and not self._valid(text[start:end])):
                continue
            spans.append(Span(start, end, self.label))
        return spans


class DelimitedDetector(PatternDetector):
    """A secret between a begin and an end marker (a PEM private key), which can be far
    longer than a stream's hold-back. Found whole as `begin … end`, or, with no end marker,
    as `begin` and the `body` run after it (a key cut short is still a key). `opened` says
    where one is still arriving: a begin marker (or what could still become one, `partial`)
    whose end marker has not come while its body runs to the end of the text."""

    __slots__ = ("_begins", "_body", "_closed")

    def __init__(self, label: str, begin: str, end: str, body: str, partial: str) -> None:
        super().__init__(label, re.compile(rf"{begin}(?:[\s\S]*?{end}|{body})"))
        self._begins = re.compile(rf"{begin}|{partial}\Z")
        self._closed = re.compile(rf"{begin}[\s\S]*?{end}")
        self._body = re.compile(body)

    def opened(self, text: str) -> Span | None:
        for match in self._begins.finditer(text):
            if match.end() == len(text):
                return Span(match.start(), len(text), self.label)
            if self._closed.match(text, match.start()) is not None:
                continue
            run = self._body.match(text, match.end())
            if run is not None and run.end() == len(text):
                return Span(match.start(), len(text), self.label)
        return None


def luhn(digits: str) -> bool:
    """The Luhn check digit test (ISO/IEC 7812) over a string of digits."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


_NETWORKS = re.compile(
    r"4\d{12}(?:\d{3}){0,2}"  # Visa: 13, 16 or 19
    r"|(?:5[1-5]\d{2}|222[1-9]|22[3-9]\d|2[3-6]\d{2}|27[01]\d|2720)\d{12}"  # Mastercard
    r"|3[47]\d{13}"  # American Express
    r"|3(?:0[0-5]|[68]\d)\d{11}"  # Diners Club
    r"|(?:6011|65\d{2}|64[4-9]\d)\d{12,15}"  # Discover
    r"|35(?:2[89]|[3-8]\d)\d{12,15}"  # JCB
    r"|62\d{14,17}"  # UnionPay
)


def is_card_number(digits: str) -> bool:
    """A card network's number (by its prefix and length) whose Luhn check passes."""
    return _NETWORKS.fullmatch(digits) is not None and luhn(digits)


_DIGIT_RUN = re.compile(r"(?<![\d.])\d(?:[ -]?\d)+(?![\d])")
_GROUP_SEPARATOR = re.compile(r"[ -]")


class CardDetector(Detector):
    """Card numbers written whole or grouped by single spaces or dashes. A run of digit
    groups longer than a card (a phone number before it) is searched for a card inside it."""

    label = "credit_card"

    def find(self, text: str) -> list[Span]:
        spans = []
        for match in _DIGIT_RUN.finditer(text):
            spans.extend(self._in_run(match.group(), match.start()))
        return spans

    def _in_run(self, run: str, offset: int) -> list[Span]:
        digits = _GROUP_SEPARATOR.sub("", run)
        if 13 <= len(digits) <= 19 and is_card_number(digits):
            return [Span(offset, offset + len(run), self.label)]
        if len(digits) < 13:
            return []
        groups = [(m.start(), m.end()) for m in re.finditer(r"\d+", run)]
        for first in range(len(groups)):
            for last in range(len(groups) - 1, first - 1, -1):
                start, end = groups[first][0], groups[last][1]
                candidate = _GROUP_SEPARATOR.sub("", run[start:end])
                if 13 <= len(candidate) <= 19 and is_card_number(candidate):
                    rest = self._in_run(run[end:], offset + end) if end < len(run) else []
                    return [Span(offset + start, offset + end, self.label), *rest]
        return []


def iban_valid(compact: str) -> bool:
    """ISO 13616: the country and check digits moved to the end, letters as 10-35, mod 97 is 1."""
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![a-z0-9])")


class IbanDetector(Detector):
    """IBANs, compact or in groups of four; the longest prefix of a candidate that passes
    the mod-97 check (a grouped IBAN followed by a capitalised word is still found)."""

    label = "iban"

    def find(self, text: str) -> list[Span]:
        spans = []
        for match in _IBAN.finditer(text):
            positions = [match.start() + i for i, char in enumerate(match.group()) if char != " "]
            compact = match.group().replace(" ", "")
            for length in range(len(compact), 14, -1):
                end = positions[length - 1] + 1
                if (end == len(text) or not text[end].isalnum()) and iban_valid(compact[:length]):
                    spans.append(Span(match.start(), end, self.label))
                    break
        return spans


def _ipv6(candidate: str) -> bool:
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return True


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
PII_DETECTORS: dict[str, Callable[[], list[Detector]]] = {
    "email": lambda: [
        PatternDetector(
            "email",
            re.compile(r"(?<![\w.%+-])[\w.%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*\.)+[A-Za-z]{2,}(?![\w-])"),
        )
    ],
    "phone": lambda: [
        PatternDetector(
            "phone",
            re.compile(
                r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"
                r"|\(\d{3}\) ?\d{3}[ .-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4})(?![\w-])"
            ),
            valid=lambda text: 7 <= sum(c.isdigit() for c in text) <= 15,
        )
    ],
    "credit_card": lambda: [CardDetector()],
    "iban": lambda: [IbanDetector()],
    "us_ssn": lambda: [
        PatternDetector(
            "us_ssn", re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
        )
    ],
    "ip_address": lambda: [
        PatternDetector("ip_address", re.compile(rf"(?<![\d.])(?:{_OCTET}\.){{3}}{_OCTET}(?![\d]|\.\d)")),
        PatternDetector(
            "ip_address",
            re.compile(
                r"(?<![\w:])(?=[0-9A-Fa-f:]*[0-9A-Fa-f])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])"
            ),
            valid=_ipv6,
        ),
    ],
}
"""Every PII entity's finders, made on demand (a guardrail builds only what it names)."""


def pii_detectors(entities: Iterable[str]) -> list[Detector]:
    return [detector for entity in entities for detector in PII_DETECTORS[entity]()]


def word_detector(words: Iterable[str], *, case_sensitive: bool) -> Detector:
    """Any of `words` as a whole word (or phrase): `class` does not match in `classic`."""
    alternatives = "|".join(re.escape(word) for word in sorted(set(words), key=len, reverse=True))
    flags = 0 if case_sensitive else re.IGNORECASE
    return PatternDetector("word", re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", flags))


def regex_detectors(patterns: Iterable[str], *, ignore_case: bool) -> list[Detector]:
    flags = re.IGNORECASE if ignore_case else 0
    return [PatternDetector("pattern", re.compile(pattern, flags)) for pattern in patterns]


def find_all(detectors: Iterable[Detector], text: str) -> list[Span]:
    """Every detector's spans, sorted by start."""
    spans = [span for detector in detectors for span in detector.find(text)]
    spans.sort(key=lambda span: (span.start, -span.end))
    return spans


def redact(text: str, spans: list[Span]) -> str:
    """`text` with each span (sorted by start; overlaps merged) replaced by its label."""
    if not spans:
        return text
    out: list[str] = []
    position = 0
    for span in merged(spans):
        out.append(text[position : span.start])
        out.append(f"[REDACTED:{span.label}]")
        position = span.end
    out.append(text[position:])
    return "".join(out)


def merged(spans: list[Span]) -> list[Span]:
    """Sorted spans with overlapping ones joined (the first one's label kept)."""
    result: list[Span] = []
    for span in spans:
        if result and span.start < result[-1].end:
            last = result[-1]
            result[-1] = Span(last.start, max(last.end, span.end), last.label)
        else:
            result.append(span)
    return result
