"""Prompt templates on `/v1/responses` through a real gateway, with the official openai SDK's
`prompt` parameter: rendered into `input` for a translated deployment and a native one,
recorded on the spend row; an id naming no gateway template goes to a native upstream as
OpenAI's stored prompt, and is a 404 on a translated one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from tests.conftest import MASTER_KEY, UPSTREAM_KEY, GatewayFactory
from tests.fakes.responses import FakeResponses
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess

TEMPLATES = {
    "support-reply": {
        "versions": [
            {"version": "1", "messages": [{"role": "user", "content": "Old: {{question}}"}]},
            {
                "version": "2",
                "variables": ["product", {"name": "tone", "default": "kind"}],
                "messages": [
                    {"role": "system", "content": "You support {{product}}, in a {{tone}} tone."},
                    {"role": "user", "content": "{{question}}"},
                ],
                "parameters": {"temperature": 0.2, "max_tokens": 77},
            },
        ]
    },
    "routed": {"model": "compat", "messages": [{"role": "user", "content": "default model"}]},
}
PROMPT = {"id": "support-reply", "version": "2", "variables": {"product": "Widgets", "question": "Why?"}}
RENDERED = [
    {"role": "system", "content": "You support Widgets, in a kind tone."},
    {"role": "user", "content": "Why?"},
]


@pytest.fixture(scope="module")
def spend_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spend") / "spend.jsonl"


@pytest.fixture(scope="module")
def gateway(
    fake_responses_server: tuple[FakeResponses, FakeServer], start_gateway: GatewayFactory, spend_path: Path
) -> GatewayProcess:
    url = f"{fake_responses_server[1].url}/v1"
    providers = {
        "native": {"type": "openai", "base_url": url, "api_key": UPSTREAM_KEY, "responses_api": "native"},
        "compat": {"type": "openai", "base_url": url, "api_key": UPSTREAM_KEY},
    }
    models = {
        "native": {"deployments": [{"provider": "native", "model": "tmpl-native"}]},
        "compat": {"deployments": [{"provider": "compat", "model": "tmpl-compat"}]},
    }
    return start_gateway(
        {
            "providers": providers,
            "models": models,
            "master_key": MASTER_KEY,
            "templates": TEMPLATES,
            "governance": {"spend_log": {"sink": "jsonl", "path": str(spend_path), "flush_interval": 0.2}},
            "routing": {"max_attempts": 1},
        }
    )


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=10) as sdk:
        yield sdk


@pytest.fixture
def fake(fake_responses_server: tuple[FakeResponses, FakeServer]) -> FakeResponses:
    return fake_responses_server[0]


def sent(fake: FakeResponses, upstream: str) -> dict[str, Any]:
    bodies = [r.body for r in fake.requests if r.body.get("model") == upstream]
    assert bodies, f"the upstream never saw {upstream}"
    return bodies[-1]


def spend_row(path: Path, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_bytes().splitlines():
                row = orjson.loads(line)
                if row["request_id"] == request_id:
                    return dict(row)
        time.sleep(0.1)
    raise AssertionError(f"no spend row for {request_id}")


def test_a_translated_deployment_gets_the_rendered_template_and_the_spend_row_names_it(
    client: openai.OpenAI, fake: FakeResponses, spend_path: Path
) -> None:
    raw = client.responses.with_raw_response.create(model="compat", prompt=PROMPT, input="And more?")
    assert raw.parse().output_text == "echo: And more?"
    body = sent(fake, "tmpl-compat")
    assert "prompt" not in body
    assert body["messages"] == [*RENDERED, {"role": "user", "content": "And more?"}]
    assert (body["temperature"], body["max_completion_tokens"]) == (0.2, 77)
    row = spend_row(spend_path, raw.headers["x-request-id"])
    assert (row["template_id"], row["template_version"]) == ("support-reply", "2")


def test_a_streamed_templated_response_is_recorded_too(
    client: openai.OpenAI, fake: FakeResponses, spend_path: Path
) -> None:
    with client.responses.with_streaming_response.create(
        model="compat",
        prompt={"id": "support-reply", "version": "1", "variables": {"question": "Q"}},
        stream=True,
    ) as raw:
        kinds = [line for line in raw.iter_lines() if line.startswith("event: ")]
        request_id = raw.headers["x-request-id"]
    assert kinds[-1] == "event: response.completed"
    assert sent(fake, "tmpl-compat")["messages"] == [{"role": "user", "content": "Old: Q"}]
    row = spend_row(spend_path, request_id)
    assert (row["template_id"], row["template_version"]) == ("support-reply", "1")


def test_a_native_deployment_gets_the_template_as_input_items_not_the_prompt(
    client: openai.OpenAI, fake: FakeResponses
) -> None:
    variables = {"product": "Widgets", "question": {"type": "input_text", "text": "Why?"}}
    response = client.responses.create(
        model="native", prompt={"id": "support-reply", "version": "2", "variables": variables}
    )
    assert response.output_text == "echo: Why?"
    body = sent(fake, "tmpl-native")
    assert "prompt" not in body
    assert body["input"] == [{"type": "message", **message} for message in RENDERED]
    assert (body["temperature"], body["max_output_tokens"]) == (0.2, 77)


def test_a_templates_default_model_routes_and_input_tokens_count_the_rendered_prompt(
    client: openai.OpenAI, fake: FakeResponses
) -> None:
    response = client.responses.create(prompt={"id": "routed"})
    assert response.output_text == "echo: default model"
    assert sent(fake, "tmpl-compat")["messages"] == [{"role": "user", "content": "default model"}]
    plain = client.responses.input_tokens.count(model="compat", input="Why?")
    templated = client.responses.input_tokens.count(model="compat", extra_body={"prompt": PROMPT})
    assert templated.input_tokens > plain.input_tokens


def test_an_openai_stored_prompt_passes_through_to_a_native_deployment(
    client: openai.OpenAI, fake: FakeResponses
) -> None:
    client.responses.create(model="native", prompt={"id": "pmpt_abc", "version": "3"}, input="hi")
    assert sent(fake, "tmpl-native")["prompt"] == {"id": "pmpt_abc", "version": "3"}


@pytest.mark.parametrize(
    ("model", "prompt", "error", "named"),
    [
        ("compat", {"id": "pmpt_abc"}, openai.NotFoundError, "'pmpt_abc'"),
        ("native", {"id": "support-reply", "version": "9"}, openai.NotFoundError, "'9'"),
        (
            "compat",
            {"id": "support-reply", "variables": {"question": "q"}},
            openai.BadRequestError,
            "'product'",
        ),
        (
            "native",
            {"id": "support-reply", "variables": {"question": "q", "product": "p", "colour": "red"}},
            openai.BadRequestError,
            "'colour'",
        ),
    ],
)
def test_a_bad_template_reference_is_refused_naming_what(
    client: openai.OpenAI,
    model: str,
    prompt: dict[str, Any],
    error: type[openai.APIStatusError],
    named: str,
) -> None:
    with pytest.raises(error) as refused:
        client.responses.create(model=model, prompt=prompt, input="x")  # type: ignore[arg-type]
    assert named in refused.value.message
    if error is openai.NotFoundError:
        assert refused.value.code == "template_not_found"
