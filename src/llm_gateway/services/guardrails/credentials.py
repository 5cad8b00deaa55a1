"""Pure finders of credentials in text: provider API keys, private keys, JWTs, cloud keys.

Each pattern is the credential's published shape (a prefix and a length), so prose does
not match; the AWS secret key, which has no prefix, is only found next to its name. A
private key is a PEM block between its begin and end markers (`DelimitedDetector`), which a
stream holds back whole (services/guardrails/redactor.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from llm_gateway.services.guardrails.detectors import DelimitedDetector, Detector, PatternDetector

_END = r"(?![A-Za-z0-9_-])"
PATTERNS: dict[str, tuple[str, int]] = {
    "openai_key": (rf"(?<![\w-])sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{{20,}}{_END}", 0),
    "anthropic_key": (rf"(?<![\w-])sk-ant-[A-Za-z0-9_-]{{20,}}{_END}", 0),
    "aws_access_key": (r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}(?![A-Z0-9])", 0),
    "aws_secret_key": (
        r"(?i:aws)[\w.-]{0,20}?(?i:secret)[\w.-]{0,20}?[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
        1,
    ),
    "google_api_key": (rf"(?<![\w-])AIza[0-9A-Za-z_-]{{35}}{_END}", 0),
    "github_token": (r"(?<!\w)(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})(?!\w)", 0),
    "slack_token": (r"(?<![\w-])xox[abposr]-[A-Za-z0-9-]{10,}(?![\w-])", 0),
    "azure_storage_key": (r"AccountKey=([A-Za-z0-9+/]{40,}={0,2})", 1),
    "jwt": (r"(?<![\w-])eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}(?![\w-])", 0),
}
"""Kind → (pattern, the group that is the secret)."""
PEM_BEGIN = r"-----BEGIN (?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY-----"
"""`RSA`, `EC`, `DSA`, `OPENSSH`, `ENCRYPTED`, ...: a few words at most, so that what may
still become a begin marker is short (`PEM_PARTIAL`) and ordinary text is never held long."""
PEM_END = r"-----END (?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY-----"
PEM_BODY = r"[A-Za-z0-9+/=\s:,\\-]*"
"""Base64 lines, the `Proc-Type: 4,ENCRYPTED` / `DEK-Info: AES-128-CBC,…` headers, and
backslashes: a key inside JSON (tool-call arguments) has its line breaks escaped (`\\n`)."""
PEM_PARTIAL = r"-{1,5}(?:B(?:E(?:G(?:I(?:N(?: [A-Z0-9 ]{0,64}-{0,4})?)?)?)?)?)?"
"""What may still become a begin marker when more text comes."""
DELIMITED: dict[str, tuple[str, str, str, str]] = {
    "private_key": (PEM_BEGIN, PEM_END, PEM_BODY, PEM_PARTIAL),
}
"""Kinds between a begin and an end marker: (begin, end, body, partial begin); an
unterminated block matches as far as its body runs."""


def secret_detectors(kinds: Iterable[str]) -> list[Detector]:
    return [
        DelimitedDetector(kind, *DELIMITED[kind])
        if kind in DELIMITED
        else PatternDetector(kind, re.compile(PATTERNS[kind][0]), group=PATTERNS[kind][1])
        for kind in kinds
    ]
