"""Configuration of guardrails: named checks on a request's input and its model's output
(docs/policies.md, "Guardrails").

    guardrails:
      pii-guard: {type: pii, stage: input, action: redact}
      card-block: {type: pii, entities: [credit_card], stage: input, action: block}
      ext-check: {type: http, stage: input, url: "http://127.0.0.1:9000/check", timeout: 2}

A guardrail runs on a request when the model names it (`models.<name>.guardrails`), when
the caller's key or team names it (`metadata.guardrails` in the admin API), or always
(`always: true`). Every check says what it does when it cannot run: `on_error: block`
(the default: fail closed) or `allow`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args

from pydantic import Field, field_validator, model_validator

from llm_gateway.core.secrets import SecretUrl
from llm_gateway.core.strict import Seconds, StrictModel

Stage = Literal["input", "output", "both"]
Action = Literal["block", "redact", "warn"]
PiiEntity = Literal["email", "phone", "credit_card", "iban", "us_ssn", "ip_address"]
SecretKind = Literal[
    "openai_key",
    "anthropic_key",
    "aws_access_key",
    "aws_secret_key",
    "google_api_key",
    "github_token",
    "slack_token",
    "azure_storage_key",
    "private_key",
    "jwt",
]
GuardrailName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
"""A guardrail's name: it appears in the `x-llm-gateway-guardrails` header, so no `=`, `;` or space."""


class GuardrailBase(StrictModel):
    """What every guardrail type shares."""

    stage: Stage = "input"
    action: Action = "block"
    on_error: Literal["block", "allow"] = "block"
    """When the check itself fails (an external service down, a bad answer): refuse the
    request (fail closed) or let it through as if the check had passed."""
    always: bool = False
    """Run on every request, attached or not."""
    stream_buffer_chars: Annotated[int, Field(ge=8, le=4096)] = 64
    """Output streams: at most this much text is held back, so that a match split over
    chunks is still caught: every match up to half of it long is seen whole."""
    stream_block_max_chars: Annotated[int, Field(ge=256, le=1_048_576)] = 16_384
    """Output streams: a secret between a begin and an end marker (a PEM private key) is
    held back whole from its begin marker until its end marker, up to this many characters;
    a longer one ends the stream with an error (fail closed) rather than send any of it."""

    def runs_on(self, stage: Literal["input", "output"]) -> bool:
        return self.stage == stage or self.stage == "both"


class PiiGuardrail(GuardrailBase):
    type: Literal["pii"]
    entities: Annotated[list[PiiEntity], Field(min_length=1)] = [
        "email",
        "phone",
        "credit_card",
        "iban",
        "us_ssn",
        "ip_address",
    ]


class SecretsGuardrail(GuardrailBase):
    type: Literal["secrets"]
    kinds: Annotated[list[SecretKind], Field(min_length=1)] = list(get_args(SecretKind))


class RegexGuardrail(GuardrailBase):
    type: Literal["regex"]
    patterns: Annotated[list[str], Field(min_length=1)]
    ignore_case: bool = False

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None
            if compiled.match(""):
                raise ValueError(f"pattern {pattern!r} matches the empty string")
        return patterns


class WordsGuardrail(GuardrailBase):
    type: Literal["words"]
    words: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    case_sensitive: bool = False


class MaxSizeGuardrail(GuardrailBase):
    """Refuses an input whose text is longer than `max_chars` (all text fields together)."""

    type: Literal["max_size"]
    max_chars: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _blocks(self) -> MaxSizeGuardrail:
        if self.action == "redact":
            raise ValueError("a max_size guardrail can block or warn, not redact")
        return self


class JsonSchemaGuardrail(GuardrailBase):
    """Validates the output against the JSON schema the request asked for (`response_format`
    on chat, `text.format` on Responses); requests that asked for none pass."""

    type: Literal["json_schema"]
    stage: Stage = "output"

    @model_validator(mode="after")
    def _output_block_or_warn(self) -> JsonSchemaGuardrail:
        if self.stage != "output" or self.action == "redact":
            raise ValueError("a json_schema guardrail checks the output (stage: output) and blocks or warns")
        return self


class PresidioGuardrail(GuardrailBase):
    """Microsoft Presidio's pattern recognisers (no NLP model download); needs
    `presidio-analyzer` installed, else the gateway refuses to start."""

    type: Literal["presidio"]
    entities: list[str] = [
        "CREDIT_CARD",
        "EMAIL_ADDRESS",
        "IBAN_CODE",
        "US_SSN",
        "IP_ADDRESS",
        "PHONE_NUMBER",
    ]
    language: str = "en"
    score_threshold: Annotated[float, Field(ge=0, le=1)] = 0.5


class HttpGuardrail(GuardrailBase):
    """An external check: the texts are POSTed as JSON to `url`; the verdict is JSON
    (docs/policies.md documents both). `action: redact` takes the texts the service sends back."""

    type: Literal["http"]
    url: SecretUrl
    timeout: Seconds = 2.0


Guardrail = Annotated[
    PiiGuardrail
    | SecretsGuardrail
    | RegexGuardrail
    | WordsGuardrail
    | MaxSizeGuardrail
    | JsonSchemaGuardrail
    | PresidioGuardrail
    | HttpGuardrail,
    Field(discriminator="type"),
]
Guardrails = dict[GuardrailName, Guardrail]
