"""`responses` and `responses_input_tokens`: the `/v1/responses` front door, native or
translated per deployment, with the conversation state `store` and `previous_response_id` need.

The model resolves to a group like any chat request, and the executor picks a deployment.
If it serves the Responses API natively (`native_responses`: an OpenAI or Azure deployment
whose `responses_api` is `native`), the body goes upstream as sent but for `model`, and the
answer or event stream comes back as is. Otherwise the body is translated to a chat request
(services/responses_request.py), and the answer translated back into a Response object or
typed event stream (services/responses_events.py). Deciding per deployment keeps failover
working across mixed groups; a request with a built-in tool (`web_search`, ...) is routed
to native deployments only, and is a 400 naming the tool when the model has none.

Conversation state is the gateway's own (store/responses.py; in the database by default,
store/responses_db.py), per caller: a response is recorded unless the request says
`store: false`, as the client gets it: after the output guardrails (a redacted answer is
stored redacted, a refused one not at all), just before its terminal event is sent.
`previous_response_id` names one of the caller's records (else a 404), loaded once by
`prepare` before routing. A translated deployment gets the whole conversation rebuilt (the
record's items, then the new input); a native one gets `previous_response_id` passed
through when the same deployment served and stored the previous response, and the rebuilt
conversation otherwise (item ids dropped, reasoning without `encrypted_content` left out:
that upstream could not resolve them).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any, cast

from llm_gateway.core.capabilities import Capability
from llm_gateway.core.context import Call, Operation, Principal, RequestContext
from llm_gateway.core.errors import InvalidRequest, NotFound
from llm_gateway.core.types import JSON, ChatChunk, ChatRequest, Usage
from llm_gateway.providers.base import native_responses
from llm_gateway.routing.deployments import Group, ModelCatalog, Target
from llm_gateway.services.hooks import Meter
from llm_gateway.services.responses_events import (
    TERMINAL,
    ResponseEvents,
    base_response,
    chat_usage,
    new_id,
    to_response,
)
from llm_gateway.services.responses_request import (
    ToolIndex,
    builtin_message,
    builtin_tools,
    input_items,
    to_chat_request,
)
from llm_gateway.services.service import Attempt, Service, StreamAttempt
from llm_gateway.services.tokens import count_prompt_tokens
from llm_gateway.services.usage import ResponseEventMeter
from llm_gateway.store.responses import ResponseStore, StoredResponse

OWNER = "owner"
REQUEST = "responses.request"
"""`call.options` key of the call's `ResponsesRequest`, read by `delivered` once the hooks are done."""
PREVIOUS = "previous_response"
"""`call.options` key of the stored response `previous_response_id` names, loaded by `prepare`."""
TRANSLATABLE_HISTORY = frozenset(
    {"message", "function_call", "function_call_output", "custom_tool_call", "custom_tool_call_output"}
)
"""Items of a stored conversation a chat model can take back; built-in tools' calls made by
a native deployment are left out when a translated one continues the conversation."""


def owner_of(principal: Principal) -> str:
    """Whose stored responses a caller sees: its key's id, or `master` / `open`."""
    return principal.key_id or principal.kind


def not_found(response_id: str, param: str | None = None) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.", param=param, code=None)


class ResponsesRequest:
    """A Responses body, the stored conversation it continues, and its chat translation
    (made once, on first need: a native deployment never needs it)."""

    def __init__(self, call: Call, store: ResponseStore) -> None:
        self.body = call.body
        self.model = call.model
        self.owner: str = call.options.get(OWNER, "open")
        self.store = store
        self.items = input_items(call.body)
        self.previous: StoredResponse | None = call.options.get(PREVIOUS)
        previous_id = call.body.get("previous_response_id")
        if previous_id and self.previous is None:
            raise not_found(previous_id, "previous_response_id")
        self._tools: ToolIndex | None = None
        self._chat: ChatRequest | None = None
        self.served: dict[str, tuple[Target, bool]] = {}
        """Response id → the deployment that answered it and whether natively; by id, so a
        hedge's losing attempt cannot claim the answer."""

    @property
    def history(self) -> tuple[JSON, ...]:
        return self.previous.conversation if self.previous is not None else ()

    @property
    def tools(self) -> ToolIndex:
        if self._tools is None:
            self._tools = ToolIndex(self.body.get("tools"))
        return self._tools

    @property
    def chat(self) -> ChatRequest:
        if self._chat is None:
            history = [i for i in self.history if (i.get("type") or "message") in TRANSLATABLE_HISTORY]
            self._chat = to_chat_request(self.body, history, self.tools)
        return self._chat

    def native_body(self, target: Target) -> JSON:
        previous = self.previous
        if previous is None or (previous.deployment == target.key and previous.upstream_stored):
            return self.body
        body = {k: v for k, v in self.body.items() if k != "previous_response_id"}
        body["input"] = [*replayable(previous.conversation), *self.items]
        return body

    def base(self, target: Target) -> JSON:
        return base_response(self.body, new_id("resp"), self.model or target.model, int(time.time()))

    def answered(self, response: Any, target: Target, *, native: bool) -> None:
        """Note who answered `response`; it is stored once the client gets it (`record`)."""
        response_id = response.get("id") if isinstance(response, dict) else None
        if isinstance(response_id, str):
            self.served[response_id] = (target, native)

    async def record(self, response: Any) -> None:
        """Keep `response`, as the client gets it, for `GET` and follow-ups, unless the
        request said `store: false` or no attempt of this call answered it."""
        if self.body.get("store") is False or not isinstance(response, dict):
            return
        response_id = response.get("id")
        served = self.served.get(response_id) if isinstance(response_id, str) else None
        if served is None or not isinstance(response_id, str):
            return
        target, native = served
        output = response.get("output")
        conversation = (*self.history, *self.items, *(output if isinstance(output, list) else ()))
        deployment = target.key if native else None
        await self.store.put(
            StoredResponse(response_id, self.owner, response, conversation, deployment, native)
        )


def replayable(items: tuple[JSON, ...]) -> list[JSON]:
    """Stored items as input for an upstream that did not store them: without their ids, and
    without reasoning it cannot decrypt."""
    kept = []
    for item in items:
        if item.get("type") == "reasoning" and not item.get("encrypted_content"):
            continue
        kept.append({k: v for k, v in item.items() if k != "id"})
    return kept


async def load_previous(call: Call, store: ResponseStore) -> None:
    """Put the stored response `previous_response_id` names into `call.options` (a 404 when
    it is missing, expired or another caller's): the one await the store needs, made once
    per call before routing."""
    previous_id = call.body.get("previous_response_id")
    if not previous_id or PREVIOUS in call.options:
        return
    previous = await store.get(call.options.get(OWNER, "open"), str(previous_id))
    if previous is None:
        raise not_found(str(previous_id), "previous_response_id")
    call.options[PREVIOUS] = previous


class ResponsesService(Service):
    def __init__(self, store: ResponseStore) -> None:
        self.store = store
        self._native: dict[str, tuple[tuple[Target, ...], Group]] = {}

    async def prepare(self, call: Call) -> None:
        await load_previous(call, self.store)

    def group(self, catalog: ModelCatalog, call: Call) -> Group:
        """Every deployment of the model; only the native ones for a built-in tool."""
        builtins = builtin_tools(call.body)
        if not builtins:
            return catalog.resolve(call.model)
        try:
            group = catalog.resolve(call.model, Capability.RESPONSES)
        except InvalidRequest:
            group = None
        native = self._natives(group) if group is not None else None
        if native is None:
            raise InvalidRequest(builtin_message(builtins), param="tools", code="unsupported_tool")
        return native

    def _natives(self, group: Group) -> Group | None:
        """`group` narrowed to deployments configured to serve natively, made once per group."""
        cached = self._native.get(group.name)
        if cached is not None and cached[0] is group.targets:
            return cached[1]
        targets = tuple(t for t in group.targets if native_responses(t.provider) is not None)
        if not targets:
            return None
        narrowed = replace(group, targets=targets)
        self._native[group.name] = (group.targets, narrowed)
        return narrowed

    def attempt(self, call: Call) -> Attempt:
        request = call.options[REQUEST] = ResponsesRequest(call, self.store)

        async def attempt(target: Target) -> JSON:
            provider = native_responses(target.provider)
            if provider is not None:
                body = request.native_body(target)
                response = await provider.responses(body, target.model, timeout=target.timeout)
            else:
                completion = await target.provider.complete(
                    request.chat, target.model, timeout=target.timeout
                )
                response = to_response(completion, request.base(target), request.tools)
            request.answered(response, target, native=provider is not None)
            return response

        return attempt

    def stream_attempt(self, call: Call) -> StreamAttempt:
        request = call.options[REQUEST] = ResponsesRequest(call, self.store)

        def attempt(target: Target) -> AsyncIterator[JSON]:
            provider = native_responses(target.provider)
            if provider is not None:
                body = request.native_body(target)
                events = provider.responses_stream(body, target.model, timeout=target.timeout)
                return answered(events, lambda response: request.answered(response, target, native=True))
            chunks = target.provider.stream(request.chat, target.model, timeout=target.timeout)
            machine = ResponseEvents(request.base(target), request.tools)
            return translated(
                chunks, machine, lambda: request.answered(machine.response, target, native=False)
            )

        return attempt

    async def delivered(self, call: Call, value: Any) -> None:
        request = call.options.get(REQUEST)
        if isinstance(request, ResponsesRequest):
            await request.record(value)

    def delivered_stream(self, call: Call, chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
        request = call.options.get(REQUEST)
        return RecordedStream(chunks, request) if isinstance(request, ResponsesRequest) else chunks

    def usage(self, value: Any) -> Usage | None:
        return chat_usage(value.get("usage")) if isinstance(value, dict) else None

    def meter(self, ctx: RequestContext) -> Meter:
        return ResponseEventMeter(ctx)


class InputTokensService(Service):
    """`POST /v1/responses/input_tokens`: counted here, offline, on the request as it would
    be translated (previous conversation included), never routed (`attempts` is 0)."""

    def __init__(self, store: ResponseStore) -> None:
        self.store = store

    async def prepare(self, call: Call) -> None:
        await load_previous(call, self.store)

    def local_answer(self, call: Call, group: Group) -> Any | None:
        body = {k: v for k, v in call.body.items() if k not in ("stream", "tool_choice")}
        tools = body.get("tools")
        if isinstance(tools, list):  # a built-in tool's definition costs what the upstream says
            body["tools"] = [t for t in tools if not (isinstance(t, dict) and builtin_tools({"tools": [t]}))]
        request = ResponsesRequest(replace(call, body=body), self.store)
        model = group.targets[0].model if group.targets else group.name
        return {
            "object": "response.input_tokens",
            "input_tokens": count_prompt_tokens(Operation.CHAT, cast(JSON, request.chat), model),
        }


async def translated(
    chunks: AsyncIterator[ChatChunk], machine: ResponseEvents, answered: Callable[[], None]
) -> AsyncIterator[JSON]:
    """A chat chunk stream as Responses events, `answered()` before its terminal event is
    sent; closing this closes the upstream stream."""
    try:
        async for chunk in chunks:
            for event in machine.feed(chunk):
                yield event
        closing = machine.finish()
        answered()
        for event in closing:
            yield event
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


def final_response(event: Any) -> JSON | None:
    """The response a completed or incomplete terminal event carries (None for any other)."""
    if not isinstance(event, dict) or event.get("type") not in TERMINAL or event["type"] == "response.failed":
        return None
    response = event.get("response")
    return response if isinstance(response, dict) else None


async def answered(events: AsyncIterator[JSON], note: Callable[[JSON], None]) -> AsyncIterator[JSON]:
    """A native event stream, its final response noted before its terminal event is sent."""
    try:
        async for event in events:
            response = final_response(event)
            if response is not None:
                note(response)
            yield event
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


class RecordedStream(AsyncIterator[Any]):
    """The events as the client reads them (after the output guardrails), the final
    response recorded just before its terminal event is handed on. A class, not a
    generator, so that closing it unread still closes the stream inside."""

    __slots__ = ("_events", "_request")

    def __init__(self, events: AsyncIterator[Any], request: ResponsesRequest) -> None:
        self._events = events
        self._request = request

    def __aiter__(self) -> RecordedStream:
        return self

    async def __anext__(self) -> Any:
        event = await self._events.__anext__()
        response = final_response(event)
        if response is not None:
            await self._request.record(response)
        return event

    async def aclose(self) -> None:
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()
