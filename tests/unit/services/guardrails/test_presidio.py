"""The optional Presidio guardrail: its pattern recognisers when `presidio-analyzer` is
installed; without it, a guardrail that cannot run (so `on_error` decides: block by default)."""

from __future__ import annotations

import importlib.util

import pytest

from llm_gateway.core.context import Call, Operation
from llm_gateway.core.guardrail_config import PresidioGuardrail
from llm_gateway.services.guardrails.checks import BrokenCheck, CheckFailed, Subject, TextCheck, build_check

INSTALLED = importlib.util.find_spec("presidio_analyzer") is not None
SUBJECT = Subject(Call(Operation.CHAT, {}), "input", "r")


@pytest.mark.skipif(not INSTALLED, reason="presidio-analyzer is optional and not installed")
async def test_presidio_finds_a_card_without_an_nlp_model() -> None:
    settings = PresidioGuardrail(type="presidio", entities=["CREDIT_CARD"], action="redact")
    check = build_check("presidio", settings)
    assert isinstance(check, TextCheck)
    verdict = await check.run(["pay with 4111 1111 1111 1111 today"], SUBJECT)
    assert verdict.flagged and verdict.texts == ["pay with [REDACTED:credit_card] today"]


@pytest.mark.skipif(INSTALLED, reason="presidio-analyzer is installed")
async def test_without_presidio_the_guardrail_cannot_run() -> None:
    check = build_check("presidio", PresidioGuardrail(type="presidio"))
    assert isinstance(check, BrokenCheck)
    with pytest.raises(CheckFailed, match="not installed"):
        await check.run(["text"], SUBJECT)
