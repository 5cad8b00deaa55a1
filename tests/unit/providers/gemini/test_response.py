"""Gemini response → OpenAI completion, Google error mapping, and embeddings translation."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llm_gateway.core.errors import (
    ContextLengthExceeded,
    InvalidRequest,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from llm_gateway.providers.gemini.embeddings import from_embed_response, to_embed_request
from llm_gateway.providers.gemini.errors import gemini_error, retry_delay
from llm_gateway.providers.gemini.request import function_call_part, model_path
from llm_gateway.providers.gemini.response import finish_reason, from_gemini, to_logprobs, to_usage, tool_call


def candidate(parts: list[dict[str, Any]], finish: str = "STOP", index: int = 0) -> dict[str, Any]:
    return {"content": {"parts": parts, "role": "model"}, "finishReason": finish, "index": index}


@pytest.mark.parametrize(
    ("reason", "calls", "expected"),
    [
        ("STOP", False, "stop"),
        ("STOP", True, "tool_calls"),
        (None, True, "tool_calls"),
        ("MAX_TOKENS", True, "length"),
        ("SAFETY", False, "content_filter"),
        ("RECITATION", False, "content_filter"),
        ("BLOCKLIST", False, "content_filter"),
        ("PROHIBITED_CONTENT", False, "content_filter"),
        ("SPII", False, "content_filter"),
        ("OTHER", False, "stop"),
        ("MALFORMED_FUNCTION_CALL", False, "stop"),
    ],
)
def test_finish_reasons(reason: str | None, calls: bool, expected: str) -> None:
    assert finish_reason(reason, calls) == expected


def test_text_thoughts_and_calls() -> None:
    response = {
        "responseId": "r9",
        "modelVersion": "gemini-2.5-pro",
        "candidates": [
            candidate(
                [
                    {"text": "Hmm.", "thought": True},
                    {"text": "Checking "},
                    {"text": "now."},
                    {"functionCall": {"name": "f", "args": {"q": "x"}}, "thoughtSignature": "sig+/=="},
                    {"functionCall": {"name": "g", "args": {}}},
                ]
            )
        ],
        "usageMetadata": {
            "promptTokenCount": 10,
            "toolUsePromptTokenCount": 1,
            "candidatesTokenCount": 5,
            "thoughtsTokenCount": 7,
            "cachedContentTokenCount": 4,
            "totalTokenCount": 23,
        },
    }
    completion = from_gemini(response, "asked")
    assert completion["id"] == "chatcmpl-r9"
    assert completion["model"] == "gemini-2.5-pro"
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message: dict[str, Any] = dict(choice["message"])
    assert message["content"] == "Checking now."
    assert message["reasoning_content"] == "Hmm."
    calls = message["tool_calls"]
    assert [c["function"] for c in calls] == [
        {"name": "f", "arguments": '{"q":"x"}'},
        {"name": "g", "arguments": "{}"},
    ]
    assert calls[0]["id"].endswith("_sig_sig-_") and calls[0]["id"] != calls[1]["id"]
    assert completion["usage"] == {
        "prompt_tokens": 11,
        "completion_tokens": 12,
        "total_tokens": 23,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 7},
    }
    assert from_gemini(response, "asked", max_calls=1)["choices"][0]["message"]["tool_calls"] == calls[:1]


def test_tool_call_ids_are_stable_and_carry_the_signature_back() -> None:
    part = {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "AbC+/9=="}
    first = tool_call(part, "r1", 0, 0)
    assert first == tool_call(part, "r1", 0, 0)
    assert first["id"] != tool_call(part, "r2", 0, 0)["id"]
    assert first["id"] != tool_call(part, "r1", 0, 1)["id"]
    names: dict[str, str] = {}
    restored = function_call_part(first, "messages[1].tool_calls[0]", names)
    assert restored == {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "AbC+/9=="}
    assert names == {first["id"]: "f"}


def test_only_calls_means_null_content() -> None:
    message = from_gemini({"candidates": [candidate([{"functionCall": {"name": "f"}}])]}, "m")["choices"][0][
        "message"
    ]
    assert message["content"] is None


def test_blocked_prompt_is_an_empty_content_filter_answer() -> None:
    completion = from_gemini({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}, "m")
    assert completion["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": ""},
            "finish_reason": "content_filter",
            "logprobs": None,
        }
    ]
    assert "usage" not in completion


def test_several_candidates_become_choices_in_order() -> None:
    response = {
        "candidates": [candidate([{"text": "b"}], index=1), candidate([{"text": "a"}], "MAX_TOKENS", 0)]
    }
    choices = from_gemini(response, "m")["choices"]
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in choices] == [
        (0, "a", "length"),
        (1, "b", "stop"),
    ]


def test_logprobs() -> None:
    result = {
        "chosenCandidates": [{"token": "Hi", "logProbability": -0.5}],
        "topCandidates": [
            {"candidates": [{"token": "Hi", "logProbability": -0.5}, {"token": "Yo", "logProbability": -1}]}
        ],
    }
    assert to_logprobs(result) == {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.5,
                "bytes": [72, 105],
                "top_logprobs": [
                    {"token": "Hi", "logprob": -0.5, "bytes": [72, 105]},
                    {"token": "Yo", "logprob": -1.0, "bytes": [89, 111]},
                ],
            }
        ],
        "refusal": None,
    }
    assert to_logprobs(None) is None


def test_usage_without_total() -> None:
    usage = to_usage({"promptTokenCount": 2, "candidatesTokenCount": 3})
    assert usage is not None and usage["total_tokens"] == 5


def google(status: int, message: str, google_status: str, details: list[Any] | None = None) -> bytes:
    error: dict[str, Any] = {"code": status, "message": message, "status": google_status}
    if details is not None:
        error["details"] = details
    return orjson.dumps({"error": error})


def mapped(status: int, body: bytes, headers: dict[str, str] | None = None) -> Any:
    return gemini_error(status, body, headers or {}, provider="g", secrets=("secret-key-123",))


def test_token_limit_is_context_length_exceeded() -> None:
    text = "The input token count (1300000) exceeds the maximum number of tokens allowed (1048576)."
    body = google(400, text, "INVALID_ARGUMENT")
    error = mapped(400, body)
    assert isinstance(error, ContextLengthExceeded) and error.code == "context_length_exceeded"


def test_rate_limit_keeps_retry_info() -> None:
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}]
    error = mapped(429, google(429, "quota", "RESOURCE_EXHAUSTED", details))
    assert isinstance(error, UpstreamRateLimited)
    assert error.retry_after == 12.0 and error.headers["retry-after"] == "12"
    fraction = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.25s"}]
    assert retry_delay({"details": fraction}) == 0.25
    assert mapped(429, google(429, "quota", "RESOURCE_EXHAUSTED"), {"retry-after": "3"}).retry_after == 3.0
    assert retry_delay({"details": [{"@type": "x.google.rpc.RetryInfo", "retryDelay": "soon"}]}) is None


def test_status_mapping() -> None:
    assert isinstance(mapped(503, google(503, "overloaded", "UNAVAILABLE")), UpstreamOverloaded)
    assert isinstance(mapped(504, google(504, "slow", "DEADLINE_EXCEEDED")), UpstreamTimeout)
    internal = mapped(500, google(500, "boom", "INTERNAL"))
    assert isinstance(internal, UpstreamUnavailable) and internal.status_code == 502
    denied = mapped(403, google(403, "no", "PERMISSION_DENIED"))
    assert isinstance(denied, UpstreamStatusError) and (denied.status_code, denied.code) == (
        403,
        "permission_denied",
    )
    bad_key = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]
    auth = mapped(
        400, google(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT", bad_key)
    )
    assert auth.status_code == 401 and auth.code == "invalid_api_key"


def test_wrapped_garbled_and_secret_bearing_bodies() -> None:
    listed = b"[" + google(404, "models/x is not found", "NOT_FOUND") + b"]"
    assert mapped(404, listed).status_code == 404
    assert mapped(502, b"<html>bad gateway</html>").message.endswith("<html>bad gateway</html>")
    leaked = mapped(400, google(400, "bad key secret-key-123", "INVALID_ARGUMENT"))
    assert "secret-key-123" not in leaked.message


def test_model_path() -> None:
    assert model_path("gemini-2.5-flash") == "models/gemini-2.5-flash"
    assert model_path("tunedModels/mine") == "tunedModels/mine"


def test_embed_requests() -> None:
    assert to_embed_request({"input": "a", "dimensions": 8, "encoding_format": "base64"}, "e") == (
        "embedContent",
        {"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 8},
    )
    method, body = to_embed_request({"input": ["a", "b"], "user": "u"}, "e")
    assert method == "batchEmbedContents"
    assert body == {
        "requests": [
            {"model": "models/e", "content": {"parts": [{"text": "a"}]}},
            {"model": "models/e", "content": {"parts": [{"text": "b"}]}},
        ]
    }
    with pytest.raises(InvalidRequest) as caught:
        to_embed_request({"input": [[1, 2]]}, "e")
    assert caught.value.param == "input"


def test_embed_responses() -> None:
    single = from_embed_response({"embedding": {"values": [0.5]}}, ["abcde"], "e", "g")
    assert single["data"] == [{"object": "embedding", "index": 0, "embedding": [0.5]}]
    assert single["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    batch = {"embeddings": [{"values": [1.0]}, {"values": [2.0]}], "usageMetadata": {"promptTokenCount": 9}}
    assert from_embed_response(batch, ["a", "b"], "e", "g")["usage"]["prompt_tokens"] == 9
    with pytest.raises(UpstreamUnavailable):
        from_embed_response({"embeddings": [{"values": [1.0]}]}, ["a", "b"], "e", "g")
