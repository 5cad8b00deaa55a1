"""JWTs from an identity provider on a real gateway: keys from a loopback JWKS, the caller
is the team its claim names (with that team's limits), used with the official openai SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory, openai_config, running
from tests.fakes.jwks import FakeJWKS, SigningKey
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess

ISSUER = "https://idp.example"
AUDIENCE = "llm-gateway"
KEY = SigningKey("idp-1")


@pytest.fixture(scope="module")
def jwks() -> Iterator[tuple[FakeJWKS, FakeServer]]:
    with running(FakeJWKS(KEY)) as pair:
        yield pair


@pytest.fixture(scope="module")
def gateway(
    fake_openai: tuple[FakeOpenAI, FakeServer],
    jwks: tuple[FakeJWKS, FakeServer],
    start_gateway: GatewayFactory,
) -> GatewayProcess:
    jwt_settings = {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "jwks_url": f"{jwks[1].url}/.well-known/jwks.json",
        "team_claim": "team",
        "user_claim": "sub",
    }
    config = openai_config(
        fake_openai[1].url, {"gpt-4o": "upstream-gpt"}, master_key=MASTER_KEY, auth={"jwt": jwt_settings}
    )
    gateway = start_gateway(config)
    for team in ({"id": "t-slow", "name": "slow", "rpm": 1}, {"id": "t-open", "name": "open"}):
        response = httpx.post(
            f"{gateway.url}/admin/teams", json=team, headers={"authorization": f"Bearer {MASTER_KEY}"}
        )
        assert response.status_code == 201, response.text
    return gateway


def token(**overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "sub": "alice", "team": "open"}
    return KEY.sign({**claims, **overrides})


def chat(gateway: GatewayProcess, bearer: str) -> str | None:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=bearer, max_retries=0, timeout=10) as sdk:
        reply = sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    return reply.choices[0].message.content


def test_a_valid_jwt_is_accepted(gateway: GatewayProcess) -> None:
    assert chat(gateway, token())
    me = httpx.get(f"{gateway.url}/v1/me", headers={"authorization": f"Bearer {token()}"}).json()
    assert [scope["kind"] for scope in me["scopes"]] == ["team", "user"]


def test_the_teams_limits_apply(gateway: GatewayProcess) -> None:
    assert chat(gateway, token(team="slow", sub="bob"))
    with pytest.raises(openai.RateLimitError):
        chat(gateway, token(team="slow", sub="carol"))  # rpm 1 is the team's, shared by its users


def test_refusals(gateway: GatewayProcess) -> None:
    expired = token(exp=int(time.time()) - 600)
    with pytest.raises(openai.AuthenticationError) as refused:
        chat(gateway, expired)
    assert "JWT has expired" in str(refused.value) and expired not in str(refused.value)
    with pytest.raises(openai.AuthenticationError, match="audience is wrong"):
        chat(gateway, token(aud="other"))
    with pytest.raises(openai.PermissionDeniedError, match="unknown team"):
        chat(gateway, token(team="nobody"))
