"""Span attributes from what a request left behind: GenAI names, the closed error vocabulary,
finish reasons, opt-in content in the conventions' role-and-parts shape, and no secrets."""

from __future__ import annotations

import orjson

from llm_gateway.core import errors
from llm_gateway.core.context import Call, Operation, Principal, RequestContext, Route
from llm_gateway.core.secrets import SecretUrl
from llm_gateway.observability.record import error_type
from llm_gateway.observability.spans import (
    STREAMED,
    StreamedAnswer,
    finish_reasons,
    input_messages,
    output_messages,
    server_address,
    server_attributes,
    span_name,
)

SECRET = "sk-live-canary-0000"


def test_error_types_come_from_the_hierarchy() -> None:
    assert error_type(None) is None
    assert error_type(errors.UpstreamTimeout("slow")) == "upstream_timeout"
    assert error_type(errors.LimitExceeded("slow down")) == "limit_exceeded"
    assert error_type(errors.UpstreamStatusError("no", status=404)) == "upstream_status_error"
    assert error_type(ValueError("bug")) == "internal"
    failed = errors.AllDeploymentsFailed(errors.UpstreamRateLimited("busy"), attempts=3)
    assert error_type(failed) == "upstream_rate_limited"

    class OwnRefusal(errors.PermissionDenied):
        pass

    assert error_type(OwnRefusal("no")) == "permission_denied"


def test_server_address_is_host_and_port_only() -> None:
    assert server_address(SecretUrl(f"https://user:{SECRET}@api.example.com/v1?key={SECRET}")) == (
        "api.example.com",
        443,
    )
    assert server_address(SecretUrl("http://127.0.0.1:8080/v1")) == ("127.0.0.1", 8080)
    assert server_address(None) is None


def test_span_names_follow_the_conventions() -> None:
    assert span_name("chat", "gpt-4o") == "chat gpt-4o"
    assert span_name("embeddings", None) == "embeddings"


def test_server_attributes_carry_route_usage_and_principal_without_secrets() -> None:
    principal = Principal("key", key_id="k1", name="ci", team_id="t1", metadata={"token": SECRET})
    ctx = RequestContext("req-1", principal, "openai.chat")
    ctx.route = Route("gpt#0", "openai-main", "gpt-4o-2024", attempts=2, fallback=None, hedged=False)
    ctx.usage = {
        "prompt_tokens": 120,
        "completion_tokens": 30,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_creation_tokens": 7},
        "completion_tokens_details": {"reasoning_tokens": 12},
    }
    call = Call(Operation.CHAT, {"model": "gpt", "max_tokens": 64, "messages": []}, model="gpt")
    answer = {"id": "chatcmpl-1", "choices": [{"finish_reason": "length"}]}
    attributes = server_attributes(ctx, call, answer, None, 200, {"openai-main": "openai"})
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "gpt"
    assert attributes["gen_ai.response.model"] == "gpt-4o-2024"
    assert attributes["gen_ai.request.max_tokens"] == 64
    assert attributes["gen_ai.usage.input_tokens"] == 120
    assert attributes["gen_ai.usage.output_tokens"] == 30
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 100
    assert attributes["gen_ai.usage.cache_write.input_tokens"] == 7
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 12
    assert attributes["gen_ai.response.finish_reasons"] == ["length"]
    assert attributes["gen_ai.response.id"] == "chatcmpl-1"
    assert attributes["llm_gateway.attempts"] == 2
    assert (attributes["llm_gateway.key_id"], attributes["llm_gateway.team_id"]) == ("k1", "t1")
    assert SECRET not in str(attributes)


def test_guardrail_results_and_cache_status_are_on_the_server_span() -> None:
    from llm_gateway.services.guardrails.outcomes import Outcomes

    ctx = RequestContext("req-2", Principal("master"), "openai.chat")
    ctx.cache = "miss"
    outcomes = Outcomes()
    outcomes.record("pii-guard", "redacted")
    outcomes.record("words", "passed")
    ctx.extras["guardrails"] = outcomes
    attributes = server_attributes(ctx, None, None, None, 200, {})
    assert attributes["llm_gateway.cache"] == "miss"
    assert attributes["llm_gateway.guardrails"] == ["pii-guard=redacted", "words=passed"]


def test_a_streamed_answer_gives_the_server_span_its_id_and_finish_reasons() -> None:
    ctx = RequestContext("req-3", Principal("master"), "openai.chat")
    streamed = ctx.extras[STREAMED] = StreamedAnswer()
    streamed.chat_chunk({"id": "chatcmpl-9", "choices": [{"index": 0, "finish_reason": "stop"}]})
    call = Call(Operation.CHAT, {"model": "gpt", "stream": True, "messages": []}, model="gpt", stream=True)
    attributes = server_attributes(ctx, call, None, None, 200, {})
    assert attributes["gen_ai.response.id"] == "chatcmpl-9"
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]


def test_a_stream_cut_before_it_said_anything_has_no_finish_reasons() -> None:
    ctx = RequestContext("req-4", Principal("master"), "openai.chat")
    ctx.extras[STREAMED] = StreamedAnswer()
    attributes = server_attributes(ctx, None, None, None, 200, {})
    assert "gen_ai.response.finish_reasons" not in attributes and "gen_ai.response.id" not in attributes


def test_an_unanswered_request_has_only_what_is_known() -> None:
    attributes = server_attributes(None, None, None, errors.AuthenticationFailed("no key"), 401, {})
    assert attributes == {"http.response.status_code": 401, "error.type": "authentication_failed"}


def test_finish_reasons_of_each_shape() -> None:
    assert finish_reasons({"choices": [{"finish_reason": "stop"}, {"finish_reason": "tool_calls"}]}) == [
        "stop",
        "tool_calls",
    ]
    assert finish_reasons({"type": "message", "stop_reason": "end_turn"}) == ["end_turn"]
    assert finish_reasons({"object": "response", "status": "completed"}) == ["completed"]
    incomplete = {
        "object": "response",
        "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
    }
    assert finish_reasons(incomplete) == ["max_output_tokens"]
    assert finish_reasons({"data": []}) == []
    assert finish_reasons(None) == []


def test_input_messages_in_role_and_parts_form() -> None:
    body = {
        "system": "be brief",
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": "x"}],
            },
            {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        ],
    }
    assert orjson.loads(input_messages(body) or "") == [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "look"}, {"type": "image_url"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "f", "arguments": "{}"}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "sunny"}]},
    ]
    assert orjson.loads(input_messages({"input": "embed me"}) or "") == [
        {"role": "user", "parts": [{"type": "text", "content": "embed me"}]}
    ]
    assert input_messages({}) is None


def test_output_messages_of_each_shape() -> None:
    chat = {"choices": [{"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}
    assert orjson.loads(output_messages(chat) or "") == [
        {"role": "assistant", "parts": [{"type": "text", "content": "hi"}], "finish_reason": "stop"}
    ]
    anthropic = {"content": [{"type": "text", "text": "yo"}], "stop_reason": "end_turn"}
    assert orjson.loads(output_messages(anthropic) or "") == [
        {"role": "assistant", "parts": [{"type": "text", "content": "yo"}], "finish_reason": "end_turn"}
    ]
    assert output_messages({"data": [{"embedding": [0.1]}]}) is None
