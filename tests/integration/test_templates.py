"""Prompt templates through a real gateway with the official openai SDK.

On `/v1/responses` (the SDK's `prompt` parameter): rendered into `input` for a translated
deployment and a native one, recorded on the spend row; an id naming no gateway template
goes to a native upstream as OpenAI's stored prompt, and is a 404 on a translated one.
Through the admin API (`/admin/templates`): added, used on both front doors, listed,
refused when duplicate or the config's, and deleted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
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
ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
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


def admin(gateway: GatewayProcess, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, f"{gateway.url}/admin/templates{path}", json=body, headers=ADMIN, timeout=10)


def test_a_template_added_through_the_admin_api_is_used_recorded_and_deleted(
    gateway: GatewayProcess, client: openai.OpenAI, fake: FakeResponses, spend_path: Path
) -> None:
    first = {"name": "faq", "version": "1", "messages": [{"role": "user", "content": "FAQ: {{topic}}"}]}
    added = admin(gateway, "POST", "", first)
    assert added.status_code == 201, added.text
    assert added.json()["source"] == "admin" and added.json()["versions"][0]["version"] == "1"
    second = {**first, "version": "2", "messages": [{"role": "system", "content": "Short: {{topic}}"}]}
    assert admin(gateway, "POST", "", second).status_code == 201
    raw = client.chat.completions.with_raw_response.create(
        model="compat",
        messages=[{"role": "user", "content": "go"}],
        extra_body={"prompt": {"id": "faq", "variables": {"topic": "billing"}}},
    )
    assert sent(fake, "tmpl-compat")["messages"] == [
        {"role": "system", "content": "Short: billing"},
        {"role": "user", "content": "go"},
    ]
    row = spend_row(spend_path, raw.headers["x-request-id"])
    assert (row["template_id"], row["template_version"]) == ("faq", "2")
    answer = client.responses.create(
        model="native", prompt={"id": "faq", "version": "1", "variables": {"topic": "tax"}}
    )
    assert answer.output_text == "echo: FAQ: tax"
    listed = admin(gateway, "GET", "").json()["data"]
    assert {(t["name"], t["source"]) for t in listed} >= {("faq", "admin"), ("support-reply", "config")}
    assert [v["version"] for v in admin(gateway, "GET", "/faq").json()["versions"]] == ["1", "2"]
    assert admin(gateway, "DELETE", "/faq/versions/2").json() == {
        "id": "faq@2",
        "object": "prompt_template",
        "deleted": True,
    }
    client.chat.completions.create(
        model="compat", messages=[], extra_body={"prompt": {"id": "faq", "variables": {"topic": "x"}}}
    )
    assert sent(fake, "tmpl-compat")["messages"] == [{"role": "user", "content": "FAQ: x"}]
    assert admin(gateway, "DELETE", "/faq").status_code == 200
    with pytest.raises(openai.NotFoundError, match="'faq'"):
        client.chat.completions.create(model="compat", messages=[], extra_body={"prompt": {"id": "faq"}})
    assert admin(gateway, "GET", "/faq").status_code == 404
    assert admin(gateway, "DELETE", "/faq").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        ({"name": "support-reply", "messages": [{"role": "user", "content": "x"}]}, 409, "config"),
        ({"name": "bad", "messages": []}, 400, "messages"),
        ({"name": "bad", "messages": [{"role": "robot", "content": "x"}]}, 400, "role"),
        ({"name": "bad name", "messages": [{"role": "user", "content": "x"}]}, 400, "name"),
        ({"name": "bad", "messages": [{"role": "user", "content": "x"}], "colour": 1}, 400, "colour"),
    ],
)
def test_a_bad_or_clashing_template_is_refused(
    gateway: GatewayProcess, body: dict[str, Any], status: int, named: str
) -> None:
    response = admin(gateway, "POST", "", body)
    assert response.status_code == status, response.text
    assert named in response.text


def test_a_version_is_added_once_and_the_configs_templates_cannot_be_deleted(gateway: GatewayProcess) -> None:
    body = {"name": "once", "messages": [{"role": "user", "content": "x"}]}
    assert admin(gateway, "POST", "", body).status_code == 201
    again = admin(gateway, "POST", "", {**body, "messages": [{"role": "user", "content": "changed"}]})
    assert again.status_code == 409 and "already has a version '1'" in again.text
    assert admin(gateway, "DELETE", "/support-reply").status_code == 409
    assert admin(gateway, "GET", "/support-reply").json()["source"] == "config"
    plain = httpx.get(f"{gateway.url}/admin/templates", timeout=10)
    assert plain.status_code == 401


def test_an_added_template_outlives_a_config_reload(
    gateway: GatewayProcess, client: openai.OpenAI, fake: FakeResponses
) -> None:
    body = {"name": "kept", "messages": [{"role": "user", "content": "kept {{x}}"}]}
    assert admin(gateway, "POST", "", body).status_code == 201
    reloaded = httpx.post(f"{gateway.url}/admin/config/reload", headers=ADMIN, timeout=10)
    assert reloaded.status_code == 200, reloaded.text
    client.responses.create(model="compat", prompt={"id": "kept", "variables": {"x": "1"}})
    assert sent(fake, "tmpl-compat")["messages"] == [{"role": "user", "content": "kept 1"}]
