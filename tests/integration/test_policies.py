"""Prompt templates and system policies on a real gateway, through the official SDKs.

Policies attach to a model in the config and to teams and keys through the admin API
(`policy` in their metadata); the fake upstream shows what the gateway actually sent."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import orjson
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory, openai_config
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
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
                "parameters": {"temperature": 0.2},
            },
        ]
    },
    "routed": {"model": "plain", "messages": [{"role": "user", "content": "default model"}]},
}
POLICIES = {
    "house-rules": {
        "system_prompt": {"mode": "prepend", "content": "Answer in English."},
        "max_tokens": 512,
        "refused_params": ["logprobs", "n"],
    },
    "clamped": {"max_tokens": 100, "on_violation": "clamp", "temperature": {"max": 1.0}},
    "team-rules": {"temperature": {"max": 0.5}, "max_prompt_tokens": 40, "models": ["plain", "guarded"]},
    "key-rules": {"system_prompt": {"mode": "replace", "content": "Key rules."}, "max_tokens": 50},
    "loose": {"max_tokens": 4000, "temperature": {"max": 2.0}},
}


@pytest.fixture(scope="module")
def spend_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spend") / "spend.jsonl"


@pytest.fixture(scope="module")
def gateway(
    fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory, spend_path: Path
) -> GatewayProcess:
    config = openai_config(
        fake_openai[1].url,
        {"plain": "policy-plain", "guarded": "policy-guarded", "clamped": "policy-clamped"},
        master_key=MASTER_KEY,
        templates=TEMPLATES,
        policies=POLICIES,
        governance={"spend_log": {"sink": "jsonl", "path": str(spend_path), "flush_interval": 0.2}},
        routing={"max_attempts": 1},
    )
    config["models"]["guarded"]["policy"] = "house-rules"
    config["models"]["clamped"]["policy"] = "clamped"
    return start_gateway(config)


@pytest.fixture
def fake(fake_openai: tuple[FakeOpenAI, FakeServer]) -> FakeOpenAI:
    return fake_openai[0]


def sdk(gateway: GatewayProcess, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=10)


def admin(gateway: GatewayProcess, path: str, body: Any) -> Any:
    response = httpx.post(f"{gateway.url}{path}", json=body, headers=ADMIN, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def sent(fake: FakeOpenAI, upstream: str) -> dict[str, Any]:
    """The last body the upstream got for deployment model `upstream`."""
    bodies = [r.body for r in fake.requests if r.body.get("model") == upstream]
    assert bodies, f"the upstream never saw {upstream}"
    return bodies[-1]


def spend_rows(path: Path, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_bytes().splitlines():
                row = orjson.loads(line)
                if row["request_id"] == request_id:
                    return dict(row)
        time.sleep(0.1)
    raise AssertionError(f"no spend row for {request_id}")


def test_a_template_renders_is_stripped_and_recorded(
    gateway: GatewayProcess, fake: FakeOpenAI, spend_path: Path
) -> None:
    prompt = {"id": "support-reply", "version": "2", "variables": {"product": "Widgets", "question": "Why?"}}
    with sdk(gateway) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="plain", messages=[], extra_body={"prompt": prompt}
        )
    reply = raw.parse()
    assert reply.choices[0].message.content == "echo: Why?"
    body = sent(fake, "policy-plain")
    assert "prompt" not in body
    assert body["messages"] == [
        {"role": "system", "content": "You support Widgets, in a kind tone."},
        {"role": "user", "content": "Why?"},
    ]
    assert body["temperature"] == 0.2
    row = spend_rows(spend_path, raw.headers["x-request-id"])
    assert (row["template_id"], row["template_version"]) == ("support-reply", "2")


def test_a_template_on_the_messages_front_door_renders_and_is_recorded(
    gateway: GatewayProcess, fake: FakeOpenAI, spend_path: Path
) -> None:
    prompt = {"id": "support-reply", "version": "2", "variables": {"product": "Widgets", "question": "Why?"}}
    with anthropic.Anthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0, timeout=10) as client:
        raw = client.messages.with_raw_response.create(
            model="plain",
            max_tokens=100,
            system="Be brief.",
            messages=[{"role": "user", "content": "And more?"}],
            extra_body={"prompt": prompt},
        )
    reply = raw.parse()
    assert reply.content[0].type == "text" and reply.content[0].text == "echo: And more?"
    body = sent(fake, "policy-plain")
    assert "prompt" not in body
    assert body["messages"] == [
        {"role": "system", "content": "You support Widgets, in a kind tone.\n\nBe brief."},
        {"role": "user", "content": "Why?"},
        {"role": "user", "content": "And more?"},
    ]
    assert body["temperature"] == 0.2
    row = spend_rows(spend_path, raw.headers["x-request-id"])
    assert (row["template_id"], row["template_version"]) == ("support-reply", "2")


def test_the_simple_api_renders_a_template_with_its_default_model(
    gateway: GatewayProcess, fake: FakeOpenAI
) -> None:
    response = httpx.post(f"{gateway.url}/api/chat", json={"template": "routed"}, headers=ADMIN, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["reply"] == "echo: default model"
    older = httpx.post(
        f"{gateway.url}/api/chat",
        json={
            "model": "plain",
            "template": "support-reply",
            "template_version": "1",
            "variables": {"question": "Q"},
        },
        headers=ADMIN,
        timeout=10,
    )
    assert older.json()["reply"] == "echo: Old: Q"


@pytest.mark.parametrize(
    ("prompt", "error", "named"),
    [
        ({"id": "nope"}, openai.NotFoundError, "nope"),
        ({"id": "support-reply", "version": "9"}, openai.NotFoundError, "'9'"),
        ({"id": "support-reply", "variables": {"question": "q"}}, openai.BadRequestError, "'product'"),
        (
            {"id": "support-reply", "variables": {"question": "q", "product": "p", "colour": "red"}},
            openai.BadRequestError,
            "'colour'",
        ),
    ],
)
def test_a_bad_template_reference_is_refused_naming_what(
    gateway: GatewayProcess, prompt: dict[str, Any], error: type[openai.APIStatusError], named: str
) -> None:
    with sdk(gateway) as client, pytest.raises(error) as refused:
        client.chat.completions.create(model="plain", messages=[], extra_body={"prompt": prompt})
    assert named in refused.value.message


def test_a_model_policy_enforces_its_system_prompt_on_both_front_doors(
    gateway: GatewayProcess, fake: FakeOpenAI
) -> None:
    with sdk(gateway) as client:
        client.chat.completions.create(
            model="guarded",
            messages=[{"role": "system", "content": "Mine."}, {"role": "user", "content": "hi"}],
        )
    assert [m["content"] for m in sent(fake, "policy-guarded")["messages"]] == [
        "Answer in English.",
        "Mine.",
        "hi",
    ]
    with anthropic.Anthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0, timeout=10) as client:
        client.messages.create(
            model="guarded", max_tokens=100, system="Be brief.", messages=[{"role": "user", "content": "yo"}]
        )
    system = sent(fake, "policy-guarded")["messages"][0]
    assert system == {"role": "system", "content": "Answer in English.\n\nBe brief."}


@pytest.mark.parametrize(
    ("extra", "field"),
    [({"max_tokens": 513}, "max_tokens"), ({"logprobs": True}, "logprobs"), ({"n": 2}, "n")],
)
def test_a_model_policy_refuses_naming_policy_and_field(
    gateway: GatewayProcess, extra: dict[str, Any], field: str
) -> None:
    with sdk(gateway) as client, pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="guarded", messages=[{"role": "user", "content": "hi"}], **extra)
    assert "house-rules" in refused.value.message and f"'{field}'" in refused.value.message
    assert refused.value.code == "policy_violation"


def test_an_anthropic_client_gets_the_refusal_in_its_own_shape(gateway: GatewayProcess) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0, timeout=10)
    with client, pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(model="guarded", max_tokens=600, messages=[{"role": "user", "content": "yo"}])
    assert refused.value.body["type"] == "error"  # type: ignore[index]
    assert "house-rules" in refused.value.message and "'max_tokens'" in refused.value.message


def test_a_clamping_policy_clamps(gateway: GatewayProcess, fake: FakeOpenAI) -> None:
    with sdk(gateway) as client:
        client.chat.completions.create(
            model="clamped", messages=[{"role": "user", "content": "hi"}], max_tokens=9999, temperature=1.7
        )
    body = sent(fake, "policy-clamped")
    assert (body["max_tokens"], body["temperature"]) == (100, 1.0)


def test_team_and_key_policies_tighten_and_refusals_cost_no_rate_limit(
    gateway: GatewayProcess, fake: FakeOpenAI
) -> None:
    team = admin(
        gateway, "/admin/teams", {"name": f"t-{uuid.uuid4().hex[:6]}", "metadata": {"policy": "team-rules"}}
    )
    strict = admin(
        gateway,
        "/admin/keys",
        {"name": "k", "team_id": team["id"], "rpm": 2, "metadata": {"policy": "key-rules"}},
    )
    loose = admin(
        gateway, "/admin/keys", {"name": "l", "team_id": team["id"], "metadata": {"policy": "loose"}}
    )
    hi: Any = [{"role": "user", "content": "hi"}]
    with sdk(gateway, strict["key"]) as client:
        for _ in range(3):  # refused by policy: the key's 2 requests a minute stay unused
            with pytest.raises(openai.BadRequestError) as refused:
                client.chat.completions.create(model="plain", messages=hi, temperature=0.9)
            assert "team-rules" in refused.value.message and "'temperature'" in refused.value.message
        with pytest.raises(openai.BadRequestError) as long_prompt:
            client.chat.completions.create(
                model="plain", messages=[{"role": "user", "content": "word " * 80}]
            )
        assert "team-rules" in long_prompt.value.message
        with pytest.raises(openai.BadRequestError) as capped:
            client.chat.completions.create(model="plain", messages=hi, max_tokens=60)
        assert "key-rules" in capped.value.message
        with pytest.raises(openai.PermissionDeniedError) as model:
            client.chat.completions.create(model="clamped", messages=hi)
        assert "team-rules" in model.value.message
        for _ in range(2):
            client.chat.completions.create(model="plain", messages=[{"role": "system", "content": "x"}, *hi])
    assert [m["content"] for m in sent(fake, "policy-plain")["messages"]] == ["Key rules.", "hi"]
    with sdk(gateway, loose["key"]) as client, pytest.raises(openai.BadRequestError) as still:
        client.chat.completions.create(model="plain", messages=hi, temperature=0.9)
    assert "team-rules" in still.value.message  # a key's looser policy cannot widen its team's
