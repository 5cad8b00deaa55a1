"""One configured guardrail each: what it looks at and what it finds.

A check is given the texts of one stage (the request's, or the answer's) and says whether
it is flagged and, for `action: redact`, the texts rewritten. It never decides what
happens next (block, redact, warn, fail closed): the hook does, from the settings.
A check that cannot run raises `CheckFailed`; nothing else escapes it.

The span-finding checks (`TextCheck`: PII, secrets, words, regexes, Presidio) also run on
streams through the hold-back scanner (`redactor.py`); the others see whole texts only.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from llm_gateway.core.context import Call, Operation
from llm_gateway.core.guardrail_config import (
    Guardrail,
    HttpGuardrail,
    JsonSchemaGuardrail,
    MaxSizeGuardrail,
    PiiGuardrail,
    PresidioGuardrail,
    RegexGuardrail,
    SecretsGuardrail,
    WordsGuardrail,
)
from llm_gateway.services.guardrails.credentials import secret_detectors
from llm_gateway.services.guardrails.detectors import (
    Detector,
    Span,
    find_all,
    pii_detectors,
    redact,
    regex_detectors,
    word_detector,
)


class CheckFailed(Exception):
    """The check could not give a verdict (its service is down, its answer is unreadable)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    flagged: bool
    texts: list[str] | None = None
    """The texts redacted, when the check can redact and something was flagged."""
    reason: str | None = None
    """What was found (labels such as `credit_card`, never the matched text)."""


PASSED = Verdict(False)


@dataclass(frozen=True, slots=True)
class Subject:
    """What a check may need besides the texts: the call, and which stage this is."""

    call: Call
    stage: str
    request_id: str
    answer: Any = None


class Check:
    def __init__(self, name: str, settings: Guardrail) -> None:
        self.name = name
        self.settings = settings

    async def run(self, texts: Sequence[str], subject: Subject) -> Verdict:
        raise NotImplementedError

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class TextCheck(Check):
    """Finders of spans: flagged when any matches; redaction replaces each match by its label."""

    def __init__(self, name: str, settings: Guardrail, detectors: list[Detector]) -> None:
        super().__init__(name, settings)
        self.detectors = detectors

    def spans(self, text: str) -> list[Span]:
        return find_all(self.detectors, text)

    def opened(self, text: str) -> Span | None:
        """The earliest match still arriving at the end of `text` (a PEM block), if any."""
        found = [span for detector in self.detectors if (span := detector.opened(text)) is not None]
        return min(found, key=lambda span: span.start) if found else None

    async def run(self, texts: Sequence[str], subject: Subject) -> Verdict:
        found = [self.spans(text) for text in texts]
        if not any(found):
            return PASSED
        labels = sorted({span.label for spans in found for span in spans})
        return Verdict(
            True, [redact(text, spans) for text, spans in zip(texts, found, strict=True)], ",".join(labels)
        )


class SizeCheck(Check):
    def __init__(self, name: str, settings: MaxSizeGuardrail) -> None:
        super().__init__(name, settings)
        self.max_chars = settings.max_chars

    async def run(self, texts: Sequence[str], subject: Subject) -> Verdict:
        size = sum(len(text) for text in texts)
        if size <= self.max_chars:
            return PASSED
        return Verdict(True, reason=f"{size} characters, over the limit of {self.max_chars}")


def requested_schema(call: Call) -> dict[str, Any] | None:
    """The JSON schema a request asked its answer to follow, if any: chat's
    `response_format: {type: json_schema, json_schema: {schema}}`, Responses'
    `text.format: {type: json_schema, schema}`."""
    body = call.body
    if call.operation is Operation.CHAT:
        form = body.get("response_format")
        spec = (
            form.get("json_schema") if isinstance(form, dict) and form.get("type") == "json_schema" else None
        )
        schema = spec.get("schema") if isinstance(spec, dict) else None
    elif call.operation is Operation.RESPONSES:
        text = body.get("text")
        form = text.get("format") if isinstance(text, dict) else None
        schema = form.get("schema") if isinstance(form, dict) and form.get("type") == "json_schema" else None
    else:
        schema = None
    return schema if isinstance(schema, dict) else None


class SchemaCheck(Check):
    """The answer's JSON against the schema the request asked for (jsonschema, imported on
    first use so a gateway without this guardrail never loads it)."""

    async def run(self, texts: Sequence[str], subject: Subject) -> Verdict:
        schema = requested_schema(subject.call)
        if schema is None or subject.stage != "output":
            return PASSED
        import jsonschema

        text = "".join(texts)
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError:
            return Verdict(True, reason="the answer is not JSON")
        try:
            validator = jsonschema.validators.validator_for(schema)(schema)
            error = jsonschema.exceptions.best_match(validator.iter_errors(document))
        except jsonschema.exceptions.SchemaError as exc:
            raise CheckFailed(f"the request's schema is invalid: {exc.message}") from None
        if error is None:
            return PASSED
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        return Verdict(True, reason=f"the answer does not match the requested schema at {where}")


PRESIDIO_RECOGNISERS = {
    "CREDIT_CARD": "CreditCardRecognizer",
    "EMAIL_ADDRESS": "EmailRecognizer",
    "IBAN_CODE": "IbanRecognizer",
    "US_SSN": "UsSsnRecognizer",
    "IP_ADDRESS": "IpRecognizer",
    "PHONE_NUMBER": "PhoneRecognizer",
    "URL": "UrlRecognizer",
    "CRYPTO": "CryptoRecognizer",
    "US_BANK_NUMBER": "UsBankRecognizer",
    "US_PASSPORT": "UsPassportRecognizer",
    "UK_NHS": "NhsRecognizer",
}
"""Presidio's recognisers that work on patterns and checksums alone: no NLP model to download.
Untested here when `presidio-analyzer` is not installed (it is optional)."""


class PresidioDetector(Detector):
    def __init__(self, settings: PresidioGuardrail) -> None:
        try:
            module = importlib.import_module("presidio_analyzer.predefined_recognizers")
        except ImportError:
            raise CheckFailed("presidio-analyzer is not installed") from None
        self.label = "presidio"
        self._threshold = settings.score_threshold
        self._recognisers = []
        for entity in settings.entities:
            name = PRESIDIO_RECOGNISERS.get(entity)
            if name is None:
                raise CheckFailed(
                    f"presidio entity {entity!r} needs an NLP model; known: {sorted(PRESIDIO_RECOGNISERS)}"
                )
            self._recognisers.append((entity, getattr(module, name)(supported_language=settings.language)))

    def find(self, text: str) -> list[Span]:
        spans = []
        for entity, recogniser in self._recognisers:
            for result in recogniser.analyze(text, [entity], None):
                if result.score >= self._threshold:
                    spans.append(Span(result.start, result.end, entity.lower()))
        return spans


class HttpCheck(Check):
    """POSTs `{guardrail, stage, request_id, model, texts}` to the service; expects a 200 with
    `{"flagged": bool, "reason"?: str, "texts"?: [str]}` (`texts`: the redacted texts, one per
    text sent, for `action: redact`). Anything else, or no answer in `timeout`, is a failure."""

    def __init__(self, name: str, settings: HttpGuardrail) -> None:
        import aiohttp  # here, not at the top: only a config with an HTTP guardrail needs it

        super().__init__(name, settings)
        self._url = settings.url.get_secret_value()
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout)
        self._session: aiohttp.ClientSession | None = None
        self._failures = (TimeoutError, aiohttp.ClientError, orjson.JSONDecodeError)

    async def start(self) -> None:
        import aiohttp

        self._session = aiohttp.ClientSession(json_serialize=lambda o: orjson.dumps(o).decode())

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def run(self, texts: Sequence[str], subject: Subject) -> Verdict:
        if self._session is None:
            raise CheckFailed("not started")
        payload = {
            "guardrail": self.name,
            "stage": subject.stage,
            "request_id": subject.request_id,
            "model": subject.call.model,
            "texts": list(texts),
        }
        try:
            async with self._session.post(self._url, json=payload, timeout=self._timeout) as response:
                if response.status != 200:
                    raise CheckFailed(f"the guardrail service answered {response.status}")
                verdict = orjson.loads(await response.read())
        except self._failures as exc:
            raise CheckFailed(f"the guardrail service failed: {type(exc).__name__}") from None
        return _verdict(verdict, len(texts))


def _verdict(verdict: Any, count: int) -> Verdict:
    if not isinstance(verdict, dict) or not isinstance(verdict.get("flagged"), bool):
        raise CheckFailed("the guardrail service's answer has no boolean 'flagged'")
    reason = verdict.get("reason")
    texts = verdict.get("texts")
    if texts is not None and not (
        isinstance(texts, list) and len(texts) == count and all(isinstance(t, str) for t in texts)
    ):
        raise CheckFailed("the guardrail service's 'texts' is not one string per text sent")
    return Verdict(verdict["flagged"], texts, reason if isinstance(reason, str) else None)


class BrokenCheck(Check):
    """A guardrail that cannot run here (Presidio not installed): every run fails, and
    `on_error` decides, like any other failure."""

    def __init__(self, name: str, settings: Guardrail, problem: str) -> None:
        super().__init__(name, settings)
        self.problem = problem

    async def run(self, texts: Sequence[str], subject: Subject) -> Verdict:
        raise CheckFailed(self.problem)


def build_check(name: str, settings: Guardrail) -> Check:
    if isinstance(settings, PiiGuardrail):
        return TextCheck(name, settings, pii_detectors(settings.entities))
    if isinstance(settings, SecretsGuardrail):
        return TextCheck(name, settings, secret_detectors(settings.kinds))
    if isinstance(settings, WordsGuardrail):
        return TextCheck(
            name, settings, [word_detector(settings.words, case_sensitive=settings.case_sensitive)]
        )
    if isinstance(settings, RegexGuardrail):
        return TextCheck(name, settings, regex_detectors(settings.patterns, ignore_case=settings.ignore_case))
    if isinstance(settings, PresidioGuardrail):
        try:
            return TextCheck(name, settings, [PresidioDetector(settings)])
        except CheckFailed as exc:
            return BrokenCheck(name, settings, str(exc))
    if isinstance(settings, MaxSizeGuardrail):
        return SizeCheck(name, settings)
    if isinstance(settings, JsonSchemaGuardrail):
        return SchemaCheck(name, settings)
    return HttpCheck(name, settings)
