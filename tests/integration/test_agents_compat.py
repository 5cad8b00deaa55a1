"""What agents send besides plain chat, through a real gateway with the official SDKs:
Claude Code's request fields on a translated model and natively (the client's
`anthropic-version` / `anthropic-beta` reaching the upstream), the models API in both
shapes, `thread` refused the way the SDK falls back on, legacy completions natively and
translated, aliases and wildcard models, and unsupported endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from anthropic.types.thread_unsupported_request_error import ThreadUnsupportedRequestError

from tests.conftest import MASTER_KEY, UPSTREAM_KEY, GatewayFactory, running
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.completions import FakeCompletions
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess

CONFIGURED_VERSION = "2023-01-01"
"""The provider's configured `anthropic_version`: not what the client sends."""
CLIENT_VERSION = "2023-06-01"
"""What Claude Code sends as `anthropic-version`."""
BETA = "context-management-2025-06-27"
CLAUDE_CODE_HISTORY: Any = [
    {
        "role": "user",
        "content": [{"type": "text", "text": "list files", "cache_control": {"type": "ephemeral"}}],
    },
    {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "I should run ls.", "signature": "EqQBCkYIBxgCKkB"},
            {"type": "text", "text": "Running ls."},
        ],
    },
    {"role": "system", "content": "You are Claude Code, Anthropic's official CLI for Claude."},
    {"role": "user", "content": "and now?"},
]
CONTEXT_MANAGEMENT: Any = {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[FakeCompletions, FakeServer]]:
    with running(FakeCompletions()) as pair:
        yield pair


@pytest.fixture
def chat_fake(upstream: tuple[FakeCompletions, FakeServer]) -> FakeCompletions:
    upstream[0].reset()
    return upstream[0]


@pytest.fixture(scope="module")
def gateway(
    upstream: tuple[FakeCompletions, FakeServer],
    fake_anthropic_server: tuple[FakeAnthropic, FakeServer],
    start_gateway: GatewayFactory,
) -> GatewayProcess:
    claude = {
        "type": "anthropic",
        "base_url": fake_anthropic_server[1].url,
        "api_key": UPSTREAM_KEY,
        "anthropic_version": CONFIGURED_VERSION,
        "timeout": 5,
    }
    config = {
        "providers": {
            "fake": {
                "type": "openai",
                "base_url": f"{upstream[1].url}/v1",
                "api_key": UPSTREAM_KEY,
                "timeout": 5,
            },
            "claude": claude,
        },
        "models": {
            "gpt-test": {"deployments": [{"provider": "fake", "model": "upstream-gpt"}]},
            "claude-test": {"deployments": [{"provider": "claude", "model": "echo"}]},
            "legacy": {"deployments": [{"provider": "fake", "model": "legacy-upstream"}]},
            "anthropic/*": {"deployments": [{"provider": "claude", "model": "{model}"}]},
        },
        "aliases": {"claude-3-5-haiku-*": "gpt-test", "gpt-4": "gpt-test"},
        "master_key": MASTER_KEY,
    }
    return start_gateway(config)


@pytest.fixture
def claude(gateway: GatewayProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0, timeout=10) as client:
        yield client


@pytest.fixture
def gpt(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=10) as client:
        yield client


def claude_code_request(client: anthropic.Anthropic, model: str) -> Any:
    return client.beta.messages.create(
        model=model,
        max_tokens=64,
        messages=CLAUDE_CODE_HISTORY,
        betas=[BETA],
        extra_headers={"anthropic-version": CLIENT_VERSION},
        extra_body={"context_management": CONTEXT_MANAGEMENT},
    )


def test_claude_codes_request_on_a_translated_model(
    claude: anthropic.Anthropic, chat_fake: FakeCompletions
) -> None:
    message = claude_code_request(claude, "gpt-test")
    assert message.content[0].text == "echo: and now?"  # type: ignore[union-attr]
    sent = chat_fake.last().body
    assert sent["messages"] == [
        {"role": "user", "content": "list files"},
        {"role": "assistant", "content": "Running ls."},
        {"role": "system", "content": "You are Claude Code, Anthropic's official CLI for Claude."},
        {"role": "user", "content": "and now?"},
    ]
    assert "context_management" not in sent and "anthropic-beta" not in chat_fake.last().headers


def test_claude_codes_request_natively_keeps_the_clients_headers_and_body(
    claude: anthropic.Anthropic, anthropic_fake: FakeAnthropic
) -> None:
    message = claude_code_request(claude, "claude-test")
    assert message.content[0].text == "echo: and now?"  # type: ignore[union-attr]
    received = anthropic_fake.last()
    assert received.headers["anthropic-version"] == CLIENT_VERSION
    assert BETA in received.headers["anthropic-beta"]
    assert received.body["context_management"] == CONTEXT_MANAGEMENT
    assert received.body["messages"][1]["content"][0]["signature"] == "EqQBCkYIBxgCKkB"


def test_count_tokens_for_a_translated_model(claude: anthropic.Anthropic) -> None:
    counted = claude.messages.count_tokens(model="gpt-test", messages=CLAUDE_CODE_HISTORY)
    assert counted.input_tokens > 0


def test_models_list_in_both_shapes(claude: anthropic.Anthropic, gpt: openai.OpenAI) -> None:
    anthropic_ids = [model.id for model in claude.models.list()]
    assert set(anthropic_ids[:3]) == {"gpt-test", "claude-test", "legacy"}  # models first, then aliases
    assert "anthropic/*" in anthropic_ids and "gpt-4" in anthropic_ids
    assert claude.models.retrieve("claude-3-5-haiku-20241022").id == "claude-3-5-haiku-20241022"
    openai_models = {model.id: model for model in gpt.models.list()}
    assert openai_models["gpt-4"].model_extra == {"alias_of": "gpt-test"}
    assert openai_models["anthropic/*"].model_extra["pattern"] is True  # type: ignore[index]


def test_models_retrieve_and_an_unknown_model(gpt: openai.OpenAI) -> None:
    assert gpt.models.retrieve("gpt-4").id == "gpt-4"
    with pytest.raises(openai.NotFoundError) as caught:
        gpt.models.retrieve("no-such-model")
    assert "no-such-model" in caught.value.message


def test_a_thread_is_refused_so_the_sdk_falls_back(
    claude: anthropic.Anthropic, chat_fake: FakeCompletions
) -> None:
    with pytest.raises(ThreadUnsupportedRequestError):
        claude.beta.messages.thread(model="gpt-test", max_tokens=32).send({"role": "user", "content": "hi"})
    thread = claude.beta.messages.thread(
        model="gpt-test", max_tokens=32, unsupported_request_behavior="continue_unthreaded"
    )
    reply = thread.send({"role": "user", "content": "hi"})
    assert reply.content[0].text == "echo: hi"  # type: ignore[union-attr]


def test_legacy_completions_natively(gpt: openai.OpenAI, chat_fake: FakeCompletions) -> None:
    answer = gpt.completions.create(model="legacy", prompt="once upon", max_tokens=5, echo=False)
    assert answer.choices[0].text == "echo: once upon"
    assert chat_fake.last().path == "/v1/completions"
    assert chat_fake.last().body["model"] == "legacy-upstream"
    chunks = list(gpt.completions.create(model="legacy", prompt="a time", stream=True))
    assert "".join(chunk.choices[0].text for chunk in chunks if chunk.choices) == "echo: a time"


def test_legacy_completions_translated_onto_anthropic(
    gpt: openai.OpenAI, anthropic_fake: FakeAnthropic
) -> None:
    answer = gpt.completions.create(model="claude-test", prompt="hello there")
    assert answer.object == "text_completion"
    assert answer.choices[0].text == "echo: hello there"
    assert anthropic_fake.last().body["max_tokens"] == 16
    chunks = list(
        gpt.completions.create(
            model="claude-test", prompt="streamed", stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "echo: streamed"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    with pytest.raises(openai.BadRequestError) as caught:
        gpt.completions.create(model="claude-test", prompt="x", suffix="y", best_of=2)
    assert "'suffix', 'best_of'" in caught.value.message


def test_aliases_and_wildcards_end_to_end(
    claude: anthropic.Anthropic, gpt: openai.OpenAI, chat_fake: FakeCompletions, anthropic_fake: FakeAnthropic
) -> None:
    message = claude.messages.create(
        model="claude-3-5-haiku-20241022", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].text == "echo: hi"  # type: ignore[union-attr]
    assert chat_fake.last().body["model"] == "upstream-gpt"
    raw = gpt.chat.completions.with_raw_response.create(
        model="anthropic/echo", messages=[{"role": "user", "content": "wild"}]
    )
    assert raw.parse().choices[0].message.content == "echo: wild"
    assert anthropic_fake.last().body["model"] == "echo"
    assert raw.headers["x-llm-gateway-deployment"] == "anthropic/*/0:claude/echo"
    with pytest.raises(openai.NotFoundError):
        gpt.chat.completions.create(model="anthropic-other", messages=[{"role": "user", "content": "x"}])


def test_unsupported_endpoints_are_a_404_in_the_callers_shape(
    claude: anthropic.Anthropic, gpt: openai.OpenAI
) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        gpt.files.list()
    assert "GET /v1/files is not an endpoint this gateway supports" in caught.value.message
    with pytest.raises(anthropic.NotFoundError) as anthropic_caught:
        claude.beta.files.list()
    body: Any = anthropic_caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert "/v1/files is not an endpoint this gateway supports" in body["error"]["message"]
