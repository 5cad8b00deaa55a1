"""Every request translator either translates a request or refuses it with `InvalidRequest`.

A client can send any JSON at any place of a request; the project's rule is that malformed
input is a 400 naming the field, never a 500. Each property below starts from a valid base
request and replaces one to three values, at any depth, with arbitrary JSON (or removes
them, or adds one of the field names the translators know to any object), then asks the
translator. Whatever it answers must serialize (it goes on the wire as JSON), and the
request must come out unchanged: routing reuses one request for every attempt.

Covered: the provider translators (`to_anthropic`, `to_gemini`, `to_converse`), and the
three front doors' checks and translations (`check_chat_request`, the Anthropic Messages
`to_chat_request` and its token estimate, `/api/chat`'s `to_chat_request`), each followed
by every provider translator, as routing would send the result on. A second property
holds every provider to the documented message keys: any other key is a 400 naming it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_gateway.api.body import check_chat_request
from llm_gateway.core.errors import InvalidRequest
from llm_gateway.core.types import ChatRequest
from llm_gateway.providers.anthropic.frontdoor import estimate_input_tokens
from llm_gateway.providers.anthropic.frontdoor import to_chat_request as from_messages
from llm_gateway.providers.anthropic.request import structured_tool, to_anthropic
from llm_gateway.providers.bedrock.request import to_converse
from llm_gateway.providers.gemini.request import to_gemini
from llm_gateway.services.simple import to_chat_request as from_simple

EXAMPLES = 100
PNG = "data:image/png;base64,iVBORw0KGgo="
PDF = "data:application/pdf;base64,JVBERi0x"

CHAT_KEYS = (
    # request fields
    "model", "messages", "stream", "stream_options", "include_usage", "max_tokens", "max_completion_tokens",
    "temperature", "top_p", "top_k", "stop", "user", "safety_identifier", "tools", "tool_choice",
    "parallel_tool_calls", "response_format", "json_schema", "schema", "strict", "reasoning_effort",
    "thinking", "n", "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty", "logit_bias",
    "seed", "store", "metadata", "service_tier", "prediction", "prompt_cache_key", "modalities", "audio",
    "verbosity", "additionalModelRequestFields", "guardrailConfig", "functions", "function_call",
    # message, part and tool fields
    "role", "content", "name", "tool_calls", "tool_call_id", "refusal", "reasoning_content", "annotations",
    "type", "text", "image_url", "url", "detail", "input_audio", "data", "format", "file", "file_data",
    "file_id", "id", "function", "arguments", "description", "parameters",
)  # fmt: skip
MESSAGES_KEYS = (
    "model", "max_tokens", "system", "messages", "stop_sequences", "temperature", "top_p", "top_k", "stream",
    "tools", "tool_choice", "metadata", "user_id", "output_config", "format", "schema", "effort", "thinking",
    "service_tier", "cache_control", "container", "role", "content", "type", "text", "source", "media_type",
    "data", "url", "id", "name", "input", "tool_use_id", "is_error", "input_schema", "description",
    "disable_parallel_tool_use", "signature", "citations",
)  # fmt: skip
SIMPLE_KEYS = (
    "message", "model", "system", "history", "temperature", "max_tokens", "stream", "role", "content",
)  # fmt: skip

WORDS = (
    "text", "image_url", "input_audio", "file", "refusal", "function", "auto", "none", "required", "any",
    "tool", "custom", "user", "assistant", "system", "developer", "json_schema", "json_object", "object",
    "low", "high", "max", "base64", "url", "image", "document", "tool_use", "tool_result", "thinking",
    "call_1", "tu_1", "f", "{}", "[]", '{"a": 1}', "null", "", PNG, PDF, "https://example.com/a.png",
    "data:,", "data:image/png;base64,@@", "wav",
)  # fmt: skip

LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(WORDS)
    | st.text(max_size=6)
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(CHAT_KEYS + MESSAGES_KEYS) | st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)

Path = tuple[str | int, ...]
DELETE = object()
"""A drawn value that removes the field instead of replacing it."""


def locations(value: Any, keys: tuple[str, ...], path: Path = ()) -> list[Path]:
    """Every place of `value` that can be replaced: each key and index at any depth, and each
    of `keys` on each object (which adds the field)."""
    found: list[Path] = []
    if isinstance(value, dict):
        found += [(*path, key) for key in sorted({*value, *keys})]
        for key, item in value.items():
            found += locations(item, keys, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.append((*path, index))
            found += locations(item, keys, (*path, index))
    return found


def replaced(value: Any, path: Path, new: Any) -> Any:
    """A copy of `value` with `new` at `path` (or without it, for `DELETE`); the rest is shared."""
    head, rest = path[0], path[1:]
    out: Any = dict(value) if isinstance(value, dict) else list(value)
    if rest:
        out[head] = replaced(value[head], rest, new)
    elif new is DELETE and isinstance(out, dict):
        out.pop(head, None)
    elif new is DELETE:
        del out[head]
    else:
        out[head] = new
    return out


@st.composite
def mutants(draw: st.DrawFn, base: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """`base` with one to three values replaced; the depth is drawn first, so that top-level
    fields are not outnumbered by the many places deep inside messages."""
    request = base
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        by_depth: dict[int, list[Path]] = {}
        for path in locations(request, keys):
            by_depth.setdefault(len(path), []).append(path)
        depth = draw(st.sampled_from(sorted(by_depth)))
        path = draw(st.sampled_from(by_depth[depth]))
        request = replaced(request, path, draw(VALUES | st.just(DELETE)))
    return request


def answer_or_400(translate: Callable[[Any], Any], request: Any) -> Any:
    """What `translate` answers, or None when it refuses with a 400 that names the field."""
    try:
        return translate(request)
    except InvalidRequest as error:
        assert error.status_code == 400
        assert error.param, f"a 400 must name the field: {error.message}"
        return None


def to_anthropic_upstream(request: Any) -> Any:
    return to_anthropic(request, "claude", default_max_tokens=64), structured_tool(request)


def through_providers(request: ChatRequest) -> Any:
    """A translated request sent on to each translating provider, as routing would."""
    translators = (to_anthropic_upstream, to_gemini, to_converse)
    return [answer_or_400(translate, request) for translate in translators]


def from_messages_everywhere(body: Any) -> Any:
    estimate = estimate_input_tokens(body)
    return estimate, through_providers(from_messages(body))


def from_simple_everywhere(body: Any) -> Any:
    return through_providers(from_simple(body))


def checked_then_translated(body: Any) -> Any:
    check_chat_request(body)
    return through_providers(body)


@dataclass(frozen=True)
class Case:
    name: str
    translate: Callable[[Any], Any]
    bases: tuple[dict[str, Any], ...]
    keys: tuple[str, ...]


def conversation() -> list[dict[str, Any]]:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    return [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Really."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
            ],
        },
        {"role": "assistant", "content": "Calling.", "tool_calls": [call], "refusal": None},
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "42"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "It is 42."}], "reasoning_content": "r"},
        {"role": "user", "content": "Thanks."},
    ]


TOOLS = [
    {"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}
]
WITH_TOOLS: dict[str, Any] = {
    "model": "m",
    "messages": conversation(),
    "max_tokens": 10,
    "temperature": 0.5,
    "top_p": 1,
    "stop": ["END"],
    "user": "u-1",
    "tools": TOOLS,
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "stream": True,
    "stream_options": {"include_usage": True},
}
SCHEMA = {"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True}}
WITH_FORMAT: dict[str, Any] = {
    "model": "m",
    "messages": [{"role": "user", "content": "Hi."}],
    "max_completion_tokens": 5,
    "response_format": SCHEMA,
    "reasoning_effort": "low",
    "n": 1,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "logprobs": False,
    "store": False,
    "metadata": {},
    "logit_bias": {},
    "top_k": 3,
}
ANTHROPIC_BODY: dict[str, Any] = {
    "model": "m",
    "max_tokens": 10,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hm", "signature": "s"},
                {"type": "text", "text": "Calling."},
                {"type": "tool_use", "id": "tu_1", "name": "f", "input": {"a": 1}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "tu_1", "content": [{"type": "text", "text": "42"}]},
                {"type": "text", "text": "Go on."},
            ],
        },
    ],
    "stop_sequences": ["END"],
    "temperature": 0.5,
    "top_p": 0.9,
    "top_k": 5,
    "metadata": {"user_id": "u-1"},
    "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "output_config": {"effort": "low", "format": {"type": "json_schema", "schema": {"type": "object"}}},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "stream": True,
}
SIMPLE_BODY: dict[str, Any] = {
    "message": "Hi.",
    "model": "m",
    "system": "Be brief.",
    "history": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
    "temperature": 0.2,
    "max_tokens": 10,
    "stream": True,
}

CASES = [
    Case("anthropic", to_anthropic_upstream, (WITH_TOOLS, WITH_FORMAT), CHAT_KEYS),
    Case("gemini", to_gemini, (WITH_TOOLS, WITH_FORMAT), CHAT_KEYS),
    Case("bedrock", to_converse, (WITH_TOOLS, WITH_FORMAT), CHAT_KEYS),
    Case("chat_body_check", checked_then_translated, (WITH_TOOLS, WITH_FORMAT), CHAT_KEYS),
    Case("messages_front_door", from_messages_everywhere, (ANTHROPIC_BODY,), MESSAGES_KEYS),
    Case("simple_api", from_simple_everywhere, (SIMPLE_BODY,), SIMPLE_KEYS),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_base_requests_translate(case: Case) -> None:
    """Otherwise every mutant would be refused and the property below would prove nothing."""
    for base in case.bases:
        case.translate(copy.deepcopy(base))  # a 400 here fails the test


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_json_anywhere_translates_or_is_a_400(case: Case, data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(case.bases), label="base")
    request = data.draw(mutants(base, case.keys), label="request")
    sent = copy.deepcopy(request)
    orjson.dumps(answer_or_400(case.translate, sent))
    assert sent == request, "the translator changed the request it was given"


_COMMON = {"role", "content", "name"}
DOCUMENTED_KEYS = {
    "system": _COMMON,
    "developer": _COMMON,
    "user": _COMMON,
    "assistant": _COMMON | {"tool_calls", "refusal", "reasoning_content", "annotations"},
    "tool": _COMMON | {"tool_call_id"},
}
"""The message keys docs/providers.md gives a meaning (bedrock refuses `name` as well)."""

PROVIDERS: dict[str, Callable[[Any], Any]] = {
    "anthropic": to_anthropic_upstream,
    "gemini": to_gemini,
    "bedrock": to_converse,
}


@pytest.mark.parametrize("provider", PROVIDERS)
@settings(max_examples=EXAMPLES, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=len(conversation()) - 1),
    key=st.sampled_from(CHAT_KEYS) | st.text(min_size=1, max_size=8),
    value=VALUES.filter(lambda value: value is not None),
)
def test_a_message_key_without_a_meaning_is_refused_by_name(
    provider: str, index: int, key: str, value: Any
) -> None:
    """Never silently dropped: a message key the role gives no meaning to is a 400 naming it."""
    messages = conversation()
    role = messages[index]["role"]
    allowed = DOCUMENTED_KEYS[role] - ({"name"} if provider == "bedrock" else set())
    if key in allowed:
        return
    messages[index] = {**messages[index], key: value}
    with pytest.raises(InvalidRequest) as caught:
        PROVIDERS[provider]({**WITH_TOOLS, "messages": messages})
    assert caught.value.param == f"messages[{index}].{key}"
