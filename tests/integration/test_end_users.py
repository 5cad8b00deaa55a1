"""Per-end-user budgets on a real gateway, through the openai SDK: a team's
`end_user_budget_usd` gives each end user (`user`) a budget of its own, so one of them
spending it all leaves the others served. On SQLite alone (counters in process) and on two
instances sharing PostgreSQL and Redis (one budget per end user across both)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx2 as httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory, openai_config
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
PRICING = {"input_per_mtok": 1, "output_per_mtok": 2}


def admin(gateway: GatewayProcess, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
    response = httpx.request(method, f"{gateway.url}{path}", json=body, headers=ADMIN, timeout=10)
    assert response.status_code == expect, response.text
    return response.json()


def config(upstream: str, **extra: Any) -> dict[str, Any]:
    made = openai_config(upstream, {"gpt-4o": "upstream-gpt"}, master_key=MASTER_KEY, **extra)
    made["models"]["gpt-4o"]["deployments"][0]["pricing"] = PRICING
    return made


def chat(gateway: GatewayProcess, secret: str, user: str) -> Any:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0, timeout=10) as sdk:
        return sdk.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], max_tokens=10, user=user
        )


def exhaust(gateways: list[GatewayProcess], secret: str, user: str) -> tuple[int, openai.APIStatusError]:
    """Requests for `user`, alternating instances, until one is refused: how many were served."""
    for served in range(60):
        try:
            chat(gateways[served % len(gateways)], secret, user)
        except openai.APIStatusError as refused:
            return served, refused
    raise AssertionError("the end user's budget never ran out")


def one_user_exhausts_the_other_is_served(gateways: list[GatewayProcess]) -> None:
    team = {
        "id": "app",
        "name": "App",
        "budget_usd": 1,
        "budget_period": "daily",
        "end_user_budget_usd": 0.0002,
    }
    created = admin(gateways[0], "POST", "/admin/teams", team, expect=201)
    assert created["end_user_budget_usd"] == 0.0002
    assert admin(gateways[-1], "GET", "/admin/teams/app")["end_user_budget_usd"] == 0.0002
    key = admin(gateways[0], "POST", "/admin/keys", {"name": "app-key", "team_id": "app"}, expect=201)["key"]
    me = httpx.get(f"{gateways[-1].url}/v1/me", headers={"authorization": f"Bearer {key}"}, timeout=10)
    team_scope = next(scope for scope in me.json()["scopes"] if scope["kind"] == "team")
    assert team_scope["end_user_budget_usd"] == 0.0002
    served, refused = exhaust(gateways, key, "alice")
    assert served >= 1
    assert refused.status_code == 402
    error = (
        refused.body["error"] if isinstance(refused.body, dict) and "error" in refused.body else refused.body
    )
    assert isinstance(error, dict) and error["code"] == "budget_exceeded"
    assert "end user 'alice'" in error["message"] and "resets at 20" in error["message"]
    for gateway in gateways:  # Bob, of the same team and key, still gets through everywhere
        reply = chat(gateway, key, "bob")
        assert reply.parse().choices[0].message.content
        assert float(reply.headers["x-llm-gateway-budget-remaining-usd"]) > 0
    with pytest.raises(openai.APIStatusError) as again:
        chat(gateways[-1], key, "alice")
    assert again.value.status_code == 402
    # lifting the end-user budget takes effect (the team's own budget still applies)
    admin(gateways[0], "PATCH", "/admin/teams/app", {"end_user_budget_usd": None})
    assert admin(gateways[0], "GET", "/admin/teams/app")["end_user_budget_usd"] is None


def test_end_user_budgets_on_sqlite(
    fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory, tmp_path: Any
) -> None:
    gateway = start_gateway(config(fake_openai[1].url, database_url=f"sqlite:///{tmp_path}/gw.db"))
    one_user_exhausts_the_other_is_served([gateway])


@pytest.mark.postgres
@pytest.mark.redis
def test_end_user_budgets_across_two_instances_on_postgres_and_redis(
    fake_openai: tuple[FakeOpenAI, FakeServer],
    start_gateway: GatewayFactory,
    postgres_database: str,
    redis_url: str,
) -> None:
    shared = config(
        fake_openai[1].url,
        database_url=postgres_database,
        redis_url=redis_url,
        redis_prefix=f"test-{uuid.uuid4().hex}:",
    )
    first = start_gateway(shared)
    second = start_gateway(shared)
    one_user_exhausts_the_other_is_served([first, second])
