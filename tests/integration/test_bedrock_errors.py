"""Every Bedrock error class through the gateway, before and during a stream."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.fakes.bedrock import CONFIG_KEYS

HI: Any = [{"role": "user", "content": "one two three"}]


@pytest.mark.parametrize(
    ("model", "status", "code"),
    [
        ("br-error-ValidationException", 400, "validation_error"),
        ("br-error-context", 400, "context_length_exceeded"),
        ("br-error-AccessDeniedException", 403, None),
        ("br-error-ResourceNotFoundException", 404, None),
        ("br-error-ModelTimeoutException", 408, "model_timeout"),
        ("br-error-ThrottlingException", 429, "rate_limit_exceeded"),
        ("br-error-ServiceQuotaExceededException", 429, "rate_limit_exceeded"),
        ("br-error-ModelNotReadyException", 503, "upstream_overloaded"),
        ("br-error-ServiceUnavailableException", 503, "upstream_overloaded"),
        ("br-error-InternalServerException", 502, "upstream_unavailable"),
        ("br-error-ModelErrorException", 502, "upstream_unavailable"),
    ],
)
def test_errors_map_to_openai_errors(
    bedrock_client: openai.OpenAI, model: str, status: int, code: str | None
) -> None:
    for stream in (False, True):
        name = f"{model}-stream" if stream else model  # each has its own circuit breaker
        with pytest.raises(openai.APIStatusError) as caught:
            bedrock_client.chat.completions.create(model=name, messages=HI, stream=stream)
        assert (caught.value.status_code, caught.value.code) == (status, code)
        assert CONFIG_KEYS[1] not in str(caught.value.body)


def test_context_errors_say_what_bedrock_said(bedrock_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        bedrock_client.chat.completions.create(model="br-error-context", messages=HI)
    assert caught.value.body == {
        "message": "Input is too long for requested model.",
        "type": "invalid_request_error",
        "param": None,
        "code": "context_length_exceeded",
    }


@pytest.mark.parametrize(
    ("model", "code"),
    [
        ("br-midstream-throttlingException", "rate_limit_exceeded"),
        ("br-midstream-modelStreamErrorException", "upstream_unavailable"),
        ("br-midstream-internalServerException", "upstream_unavailable"),
        ("br-midstream-serviceUnavailableException", "upstream_overloaded"),
        ("br-midstream-validationException", "validation_error"),
        ("br-cut", "upstream_connection_error"),
    ],
)
def test_failures_after_the_first_chunk_end_the_stream_with_an_error_event(
    bedrock_client: openai.OpenAI, model: str, code: str
) -> None:
    stream = bedrock_client.chat.completions.create(model=model, messages=HI, stream=True)
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk)
    assert "".join(c.choices[0].delta.content or "" for c in received) == "echo: "
    assert caught.value.code == code
