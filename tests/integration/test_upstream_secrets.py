"""The canary: a planted provider key and a planted header credential, echoed by the upstream
in every field of its errors, as text at every offset around the 500-character cut, and in
mid-stream error events, never reach a client (body or headers), the gateway's log, or
`GET /admin/deployments`, for every provider type.

No fragment of 8 characters or more of either secret may appear anywhere: a key cut before
it was redacted would leave most of it behind.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.raw import PLANTED_HEADER, PLANTED_KEY, SECRETS, RawServer, RawUpstream
from tests.gateway import GatewayProcess

HI = [{"role": "user", "content": "hi"}]
OFFSETS = range(464, 502)
"""The key (35 characters) straddles the 500th character of the body for most of these."""
SCENARIOS = ["echo-m1", "echo-m2", *(f"echo-{n}" for n in OFFSETS)]
TYPES = ("openai", "azure", "anthropic", "gemini", "bedrock")
FRAGMENT = 8


def providers(url: str) -> dict[str, Any]:
    keyed = {"api_key": PLANTED_KEY, "headers": {"x-cred": PLANTED_HEADER}, "timeout": 10}
    return {
        "openai": {"type": "openai", "base_url": f"{url}/v1", **keyed},
        "azure": {"type": "azure", "endpoint": url, **keyed},
        "anthropic": {"type": "anthropic", "base_url": url, **keyed},
        "gemini": {"type": "gemini", "base_url": f"{url}/v1beta", **keyed},
        "bedrock": {
            "type": "bedrock",
            "endpoint_url": url,
            "region": "us-east-1",
            "aws_access_key_id": "AKIAPLANTEDCANARY000",
            "aws_secret_access_key": PLANTED_KEY,
            "aws_session_token": PLANTED_HEADER,
            "timeout": 10,
        },
    }


@pytest.fixture(scope="module")
def gateway(raw_server: RawServer, start_gateway: GatewayFactory) -> GatewayProcess:
    models = {
        f"{kind}-{scenario}": {
            "deployments": [{"provider": kind, "model": f"scn-{scenario}"}],
            "routing": {"max_attempts": 1},
        }
        for kind in TYPES
        for scenario in [*SCENARIOS, "echo-stream", "echo-stream-anthropic"]
    }
    config = {"providers": providers(raw_server.url), "models": models, "master_key": MASTER_KEY}
    return start_gateway(config)


def leaks(text: str) -> list[str]:
    """Every fragment of a secret, FRAGMENT characters or longer, found in `text`."""
    found = []
    for secret in SECRETS:
        for start in range(len(secret) - FRAGMENT + 1):
            if secret[start : start + FRAGMENT] in text:
                found.append(secret[start : start + FRAGMENT])
    return found


def seen(response: httpx2.Response | Any) -> str:
    headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
    return f"{response.status_code}\n{headers}\n\n{response.text}"


@pytest.mark.parametrize("kind", TYPES)
def test_no_credential_reaches_a_client(
    gateway: GatewayProcess, raw_upstream: RawUpstream, kind: str
) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30)
    answers = []
    for scenario in SCENARIOS:
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model=f"{kind}-{scenario}", messages=HI)  # type: ignore[arg-type]
        assert caught.value.status_code in (400, 401, 502), seen(caught.value.response)
        answers.append(seen(caught.value.response))
    stream = "echo-stream-anthropic" if kind == "anthropic" else "echo-stream"
    try:
        with client.chat.completions.with_streaming_response.create(
            model=f"{kind}-{stream}",
            messages=HI,  # type: ignore[arg-type]
            stream=True,
        ) as response:
            answers.append(f"{response.status_code}\n{response.headers}\n{response.read().decode()}")
    except openai.APIStatusError as error:
        answers.append(seen(error.response))
    assert len(raw_upstream.scenarios) == len(SCENARIOS) + 1, "every echo reached the upstream"
    leaked = {scenario: leaks(answer) for scenario, answer in zip([*SCENARIOS, stream], answers, strict=True)}
    assert not any(leaked.values()), {s: f for s, f in leaked.items() if f}
    assert any("[redacted]" in answer for answer in answers), (
        "the upstream's words should still reach the client"
    )


def test_no_credential_reaches_the_native_messages_door(
    gateway: GatewayProcess, raw_upstream: RawUpstream
) -> None:
    answers = []
    with anthropic.Anthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0, timeout=30) as client:
        for scenario in ("echo-m1", "echo-470", "echo-490"):
            with pytest.raises(anthropic.APIStatusError) as caught:
                client.messages.create(model=f"anthropic-{scenario}", max_tokens=10, messages=HI)  # type: ignore[arg-type]
            answers.append(seen(caught.value.response))
        with client.messages.with_streaming_response.create(
            model="anthropic-echo-stream-anthropic",
            max_tokens=10,
            messages=HI,  # type: ignore[arg-type]
            stream=True,
        ) as response:
            relayed = response.read().decode()
    assert "event: error" in relayed and "[redacted]" in relayed, relayed
    answers.append(relayed)
    assert not any(leaks(answer) for answer in answers), [leaks(a) for a in answers]


def test_no_credential_reaches_the_log_or_the_admin_api(gateway: GatewayProcess) -> None:
    """Run after the others in this module: by now every echo has passed through."""
    rows = httpx2.get(f"{gateway.url}/admin/deployments", headers={"authorization": f"Bearer {MASTER_KEY}"})
    assert rows.status_code == 200
    assert not leaks(seen(rows))
    log = gateway.log()
    assert "scn-echo" in log or log, "the gateway logged nothing"
    assert not leaks(log), leaks(log)
