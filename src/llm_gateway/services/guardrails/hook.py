"""The guardrail hook: which guardrails apply to a request, input checks in `before`,
output checks in `after` and on streams (`wrap_stream`).

    applies    `always: true` ones, then the model's (`models.<m>.guardrails`), the team's
               and the key's (`metadata.guardrails`), each once, in that order
    before     input texts → each input check in turn (a redaction is what the next one
               sees) → block: 400 naming the guardrail, upstream never called
    after      the answer's texts → each output check → block: 403 naming the guardrail
    streams    span checks through the hold-back scanner; whole-text checks at the end
    on error   a check that cannot run blocks (503, `on_error: block`, the default) or is
               skipped (`on_error: allow`); either way the header says so

Results go to `ctx.extras["guardrails"]` (an `Outcomes`) and the `x-llm-gateway-guardrails`
response header (on streams, as they stood when the stream began). Built only when
`guardrails:` is configured; a request no guardrail applies to costs one dict lookup.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal

from llm_gateway.core.config import GatewayConfig, is_pattern
from llm_gateway.core.context import Call, RequestContext
from llm_gateway.core.errors import GuardrailBlocked, GuardrailUnavailable
from llm_gateway.services.guardrails.checks import (
    Check,
    SchemaCheck,
    Subject,
    TextCheck,
    Verdict,
    build_check,
)
from llm_gateway.services.guardrails.outcomes import EXTRAS_KEY, HEADER, Outcomes
from llm_gateway.services.guardrails.redactor import Blocked
from llm_gateway.services.guardrails.streams import STREAMS, StreamGuard
from llm_gateway.services.guardrails.texts import input_slots, output_json_text, output_slots
from llm_gateway.services.hooks import Answer, Hook

log = logging.getLogger("llm_gateway.guardrails")
Stage = Literal["input", "output"]
APPLIED_KEY = "guardrails.applied"
"""Where `before` leaves the `Applied` for `after` and `wrap_stream` (`EXTRAS_KEY` holds the
`Outcomes`, for whoever reports on the request)."""


@dataclass(slots=True)
class Applied:
    """What `before` leaves for `after` and `wrap_stream`."""

    checks: tuple[Check, ...]
    outcomes: Outcomes


class GuardrailHook(Hook):
    name = "guardrails"

    def __init__(self, checks: Mapping[str, Check], models: Mapping[str, Sequence[str]]) -> None:
        self.checks = dict(checks)
        self._always = tuple(name for name, check in self.checks.items() if check.settings.always)
        self._models = {name: tuple(names) for name, names in models.items() if not is_pattern(name)}
        self._patterns = [(name, tuple(names)) for name, names in models.items() if is_pattern(name)]
        self._outputs_here = True
        """False once `output_stage` handed the output checks to a hook of their own."""

    def output_stage(self) -> GuardrailOutputs:
        """The output checks as a hook of their own, for the innermost place in the chain:
        every hook between the two (the response cache) then sees only checked, redacted
        answers. This hook keeps the input checks."""
        self._outputs_here = False
        return GuardrailOutputs(self)

    async def start(self) -> None:
        for check in self.checks.values():
            await check.start()

    async def aclose(self) -> None:
        for check in self.checks.values():
            await check.aclose()

    def applicable(self, ctx: RequestContext, call: Call) -> tuple[Check, ...]:
        names = list(self._always)
        model = call.model or ""
        found = self._models.get(model)
        if found is None:
            found = next((names for pattern, names in self._patterns if fnmatchcase(model, pattern)), ())
        names.extend(found)
        for scope in reversed(ctx.principal.scopes):  # team, then key
            names.extend(scope.guardrails)
        if not names:
            return ()
        checks = []
        for name in dict.fromkeys(names):
            check = self.checks.get(name)
            if check is None:  # attached through the admin API but not configured: fail closed
                raise GuardrailUnavailable(
                    f"guardrail {name!r} is attached but not configured", guardrail=name
                )
            checks.append(check)
        return tuple(checks)

    async def before(self, ctx: RequestContext, call: Call) -> Answer | None:
        checks = self.applicable(ctx, call)
        if not checks:
            return None
        applied = Applied(checks, Outcomes())
        ctx.extras[APPLIED_KEY] = applied
        ctx.extras[EXTRAS_KEY] = applied.outcomes
        inputs = [check for check in checks if check.settings.runs_on("input")]
        if inputs:
            slots = input_slots(call.operation, call.body)
            texts = [slot.get() for slot in slots]
            changed = await self._stage(ctx, call, inputs, texts, applied.outcomes, "input")
            if changed is not None:
                for slot, text in zip(slots, changed, strict=True):
                    slot.set(text)
        publish(ctx, applied.outcomes)
        return None

    async def after(self, ctx: RequestContext, call: Call, value: Any) -> Any:
        return await self.check_output(ctx, call, value) if self._outputs_here else value

    async def check_output(self, ctx: RequestContext, call: Call, value: Any) -> Any:
        """Output checks on a whole answer; redactions are made in place."""
        applied = ctx.extras.get(APPLIED_KEY)
        if not isinstance(applied, Applied):
            return value
        outputs = [check for check in applied.checks if check.settings.runs_on("output")]
        if outputs:
            slots = output_slots(call.operation, value)
            texts = [slot.get() for slot in slots]
            changed = await self._stage(ctx, call, outputs, texts, applied.outcomes, "output", value)
            if changed is not None:
                for slot, text in zip(slots, changed, strict=True):
                    slot.set(text)
        publish(ctx, applied.outcomes)
        return value

    async def _stage(
        self,
        ctx: RequestContext,
        call: Call,
        checks: Sequence[Check],
        texts: list[str],
        outcomes: Outcomes,
        stage: Stage,
        answer: Any = None,
    ) -> list[str] | None:
        """Each check over `texts` in turn; the texts redacted (None when unchanged)."""
        subject = Subject(call, stage, ctx.request_id, answer)
        changed = False
        for check in checks:
            given = texts
            if isinstance(check, SchemaCheck):
                text = output_json_text(call.operation, answer) if stage == "output" else None
                if text is None:
                    outcomes.record(check.name, "passed")
                    continue
                given = [text]
            verdict = await self._run(ctx, check, given, subject, outcomes)
            action = check.settings.action
            if not verdict.flagged:
                outcomes.record(check.name, "passed")
            elif action == "block":
                self._refuse(ctx, check, outcomes, stage, verdict.reason)
            elif action == "warn":
                outcomes.record(check.name, "warned")
                log.info("guardrail %s flagged the %s of request %s", check.name, stage, ctx.request_id)
            elif verdict.texts is not None and len(verdict.texts) == len(texts):
                outcomes.record(check.name, "redacted")
                changed = changed or verdict.texts != texts
                texts = verdict.texts
            else:  # flagged for redaction with nothing to put back: safer refused than sent
                self._refuse(ctx, check, outcomes, stage, verdict.reason)
        return texts if changed else None

    async def _run(
        self, ctx: RequestContext, check: Check, texts: list[str], subject: Subject, outcomes: Outcomes
    ) -> Verdict:
        try:
            return await check.run(texts, subject)
        except Exception as exc:  # a check's failure, whatever it is, is decided by on_error
            if check.settings.on_error == "allow":
                log.warning("guardrail %s could not run (%s); let through (on_error: allow)", check.name, exc)
                outcomes.record(check.name, "skipped")
                return Verdict(False)
            log.warning(
                "guardrail %s could not run (%s); request %s refused", check.name, exc, ctx.request_id
            )
            outcomes.record(check.name, "failed")
            publish(ctx, outcomes)
            raise GuardrailUnavailable(
                f"guardrail {check.name!r} could not check the {subject.stage}; the request is refused "
                "(on_error: block)",
                guardrail=check.name,
            ) from None

    @staticmethod
    def _refuse(
        ctx: RequestContext, check: Check, outcomes: Outcomes, stage: Stage, reason: str | None
    ) -> None:
        outcomes.record(check.name, "blocked")
        publish(ctx, outcomes)
        log.info("guardrail %s blocked the %s of request %s", check.name, stage, ctx.request_id)
        raise blocked_error(check.name, stage, reason)

    def wrap_stream(self, ctx: RequestContext, call: Call, chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
        return self.guard_stream(ctx, call, chunks) if self._outputs_here else chunks

    def guard_stream(self, ctx: RequestContext, call: Call, chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """Output checks on a stream, with the bounded hold-back for matches split over chunks."""
        applied = ctx.extras.get(APPLIED_KEY)
        streamer = STREAMS.get(call.operation)
        if not isinstance(applied, Applied) or streamer is None:
            return chunks
        outputs = [check for check in applied.checks if check.settings.runs_on("output")]
        if not outputs:
            return chunks
        outcomes = applied.outcomes
        spans = [check for check in outputs if isinstance(check, TextCheck)]
        whole = [check for check in outputs if not isinstance(check, TextCheck)]
        for check in outputs:
            outcomes.record(check.name, "passed")

        async def end(text: str) -> None:
            await self._stage(ctx, call, whole, [text], outcomes, "output", _streamed_answer(call, text))

        hold = max((check.settings.stream_buffer_chars for check in spans), default=64)
        guard = StreamGuard(spans, hold, outcomes, end if whole else None)
        return _guarded(streamer(chunks, guard), chunks)


class GuardrailOutputs(Hook):
    """The output half of `GuardrailHook` (see `output_stage`): the checks it chose for the
    request in `before` run on the answer or the stream here."""

    name = "guardrails.output"

    def __init__(self, guardrails: GuardrailHook) -> None:
        self.guardrails = guardrails

    async def after(self, ctx: RequestContext, call: Call, value: Any) -> Any:
        return await self.guardrails.check_output(ctx, call, value)

    def wrap_stream(self, ctx: RequestContext, call: Call, chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
        return self.guardrails.guard_stream(ctx, call, chunks)


def _streamed_answer(call: Call, text: str) -> Any:
    """The streamed text in the shape `output_json_text` reads, for the schema check."""
    return {
        "choices": [{"message": {"content": text}}],
        "output": [{"content": [{"type": "output_text", "text": text}]}],
    }


async def _guarded(guarded: AsyncIterator[Any], chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
    try:
        async for chunk in guarded:
            yield chunk
    except Blocked as exc:
        raise blocked_error(exc.check.name, "output", exc.reason) from None
    finally:
        for iterator in (guarded, chunks):
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()


def blocked_error(name: str, stage: Stage, reason: str | None) -> GuardrailBlocked:
    found = f": {reason}" if reason else ""
    return GuardrailBlocked(
        f"guardrail {name!r} blocked the {'request' if stage == 'input' else 'response'}{found}",
        guardrail=name,
        status=400 if stage == "input" else 403,
    )


def publish(ctx: RequestContext, outcomes: Outcomes) -> None:
    """The `x-llm-gateway-guardrails` header, replacing an earlier one."""
    ctx.headers[:] = [(name, value) for name, value in ctx.headers if name != HEADER]
    if outcomes.results:
        ctx.headers.append((HEADER, outcomes.header()))


def build_guardrails(config: GatewayConfig) -> GuardrailHook | None:
    """The hook, when `guardrails:` is configured (None otherwise: nothing is installed)."""
    if not config.guardrails:
        return None
    checks = {name: build_check(name, settings) for name, settings in config.guardrails.items()}
    return GuardrailHook(checks, {name: group.guardrails for name, group in config.models.items()})
