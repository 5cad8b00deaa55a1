"""What agents and SDKs call besides chat, in-process: the models API in both shapes,
unsupported endpoints, `thread`, Claude Code's fields, and legacy completions (translated
onto the mock provider's chat)."""

from __future__ import annotations

from typing import Any

from tests.stubs import mock_config
from tests.unit.api.asgi import MESSAGES, frames, gateway

ANTHROPIC = {"anthropic-version": "2023-06-01"}
MODELS = {"mock": {"deployments": [{"provider": "mock"}]}, "other": {"deployments": [{"provider": "mock"}]}}


async def test_models_answer_in_anthropic_shape_for_anthropic_clients_and_page() -> None:
    async with gateway(mock_config(models=MODELS, aliases={"claude-*": "mock"})) as client:
        first = (await client.get("/v1/models", params={"limit": 1}, headers={"x-api-key": "k"})).json()
        assert first == {
            "data": [
                {"type": "model", "id": "mock", "display_name": "mock", "created_at": "1970-01-01T00:00:00Z"}
            ],
            "has_more": True,
            "first_id": "mock",
            "last_id": "mock",
        }
        rest = (await client.get("/v1/models", params={"after_id": "mock"}, headers=ANTHROPIC)).json()
        assert [m["id"] for m in rest["data"]] == ["other", "claude-*"]
        assert rest["has_more"] is False
        openai = (await client.get("/v1/models")).json()
        assert openai["object"] == "list"
        assert openai["data"][2] == {
            "id": "claude-*",
            "object": "model",
            "created": 0,
            "owned_by": "llm-gateway",
            "alias_of": "mock",
            "pattern": True,
            "note": "a wildcard: any model name matching this pattern is served",
        }


async def test_a_model_is_retrieved_by_any_name_it_routes_and_unknown_is_a_404_per_dialect() -> None:
    async with gateway(mock_config(aliases={"gpt-*": "mock"})) as client:
        assert (await client.get("/v1/models/gpt-4o")).json() == {
            "id": "gpt-4o",
            "object": "model",
            "created": 0,
            "owned_by": "llm-gateway",
        }
        missing = await client.get("/v1/models/nope")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "model_not_found"
        anthropic = await client.get("/v1/models/nope", headers=ANTHROPIC)
        assert anthropic.status_code == 404
        assert anthropic.json()["type"] == "error"
        assert anthropic.json()["error"]["type"] == "not_found_error"
        assert (await client.get("/v1/models/mock", headers=ANTHROPIC)).json()["type"] == "model"


async def test_unsupported_endpoints_are_named_in_the_callers_dialect() -> None:
    async with gateway() as client:
        openai = await client.post("/v1/files", json={})
        assert openai.status_code == 404
        error: dict[str, Any] = openai.json()["error"]
        assert "POST /v1/files is not an endpoint this gateway supports" in error["message"]
        assert error["code"] == "unsupported_endpoint"
        anthropic = await client.get("/v1/messages/batches", headers={"x-api-key": "k"})
        assert anthropic.status_code == 404
        assert anthropic.json()["error"]["type"] == "not_found_error"
        assert "GET /v1/messages/batches" in anthropic.json()["error"]["message"]
        assert (await client.post("/v1/models")).status_code == 405
        assert (await client.get("/v1/completions")).status_code == 405


async def test_a_thread_on_a_translated_model_is_refused_with_the_sdks_error_code() -> None:
    async with gateway() as client:
        response = await client.post("/v1/messages", json={**MESSAGES, "thread": {"type": "create"}})
        assert response.status_code == 400
        assert response.json()["error"]["details"] == {"error_code": "thread_unsupported_request"}


async def test_claude_codes_fields_are_accepted_on_a_translated_model() -> None:
    body = {
        **MESSAGES,
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "text", "text": "hello"},
                ],
            },
            {"role": "system", "content": "You are Claude Code."},
            {"role": "user", "content": "again"},
        ],
    }
    async with gateway() as client:
        response = await client.post(
            "/v1/messages", json=body, headers={"anthropic-beta": "context-1m-2025-08-07"}
        )
        assert response.status_code == 200, response.text
        counted = await client.post("/v1/messages/count_tokens", json=body)
        assert counted.status_code == 200 and counted.json()["input_tokens"] > 0
        bad = await client.post("/v1/messages", json={**body, "context_management": {"edits": "all"}})
        assert bad.status_code == 400


async def test_legacy_completions_translated_plain_and_streamed() -> None:
    async with gateway() as client:
        plain = await client.post("/v1/completions", json={"model": "mock", "prompt": "Say hi"})
        assert plain.status_code == 200, plain.text
        assert plain.json()["object"] == "text_completion"
        assert plain.json()["choices"][0]["text"]
        streamed = await client.post(
            "/v1/completions", json={"model": "mock", "prompt": "Say hi", "stream": True}
        )
        parsed = frames(streamed)
        assert parsed[-1] == (None, "[DONE]")
        assert all(data["object"] == "text_completion" for _, data in parsed[:-1])
        refused = await client.post("/v1/completions", json={"model": "mock", "prompt": "x", "echo": True})
        assert refused.status_code == 400
        assert "'echo'" in refused.json()["error"]["message"]
