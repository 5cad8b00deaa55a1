"""Virtual keys on a real gateway (SQLite in its own directory), created through the admin
API and the CLI, used with the official openai and anthropic SDKs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import pytest

from llm_gateway.store.hashing import hash_secret
from tests.conftest import MASTER_KEY, GatewayFactory, openai_config
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess, run_cli

HI: Any = [{"role": "user", "content": "hi"}]
MODELS = {
    "gpt-4o": "upstream-gpt",
    "gpt-4o-mini": "upstream-gpt",
    "claude-x": "upstream-gpt",
    "other": "upstream-gpt",
}
ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(scope="module")
def gateway(fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory) -> GatewayProcess:
    _, server = fake_openai
    config = openai_config(server.url, MODELS, master_key=MASTER_KEY)
    for group in config["models"].values():  # priced, so a key with a budget may use them
        group["deployments"][0]["pricing"] = {"input_per_mtok": 1, "output_per_mtok": 2}
    return start_gateway(config)


@pytest.fixture(scope="module")
def team(gateway: GatewayProcess) -> dict[str, Any]:
    body = {"id": "t1", "name": "Team One", "models": ["gpt-4o*", "claude-*"], "rpm": 1000}
    return admin(gateway, "POST", "/admin/teams", body, expect=201)


def admin(gateway: GatewayProcess, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
    response = httpx.request(method, f"{gateway.url}{path}", json=body, headers=ADMIN, timeout=10)
    assert response.status_code == expect, response.text
    return response.json()


def new_key(gateway: GatewayProcess, **fields: Any) -> dict[str, Any]:
    return admin(gateway, "POST", "/admin/keys", {"name": "app", **fields}, expect=201)


def chat(gateway: GatewayProcess, secret: str, model: str = "gpt-4o") -> str | None:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0, timeout=10) as sdk:
        reply = sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    return reply.choices[0].message.content


def refusal(gateway: GatewayProcess, secret: str) -> openai.AuthenticationError:
    with pytest.raises(openai.AuthenticationError) as refused:
        chat(gateway, secret)
    assert secret not in str(refused.value)
    return refused.value


def test_a_key_works_with_both_sdks_within_its_models(gateway: GatewayProcess, team: dict[str, Any]) -> None:
    created = new_key(gateway, team_id=team["id"], models=["gpt-4o*", "claude-x"], rpm=60)
    secret = created["key"]
    assert chat(gateway, secret)
    with anthropic.Anthropic(base_url=gateway.url, api_key=secret, max_retries=0, timeout=10) as sdk:
        message = sdk.messages.create(
            model="claude-x", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
        assert message.content
        with pytest.raises(anthropic.PermissionDeniedError) as refused:
            sdk.messages.create(model="other", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
        assert "not allowed" in str(refused.value)
    with pytest.raises(openai.PermissionDeniedError) as denied:
        chat(gateway, secret, "other")
    assert denied.value.code == "model_not_allowed"
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0) as sdk:
        assert sorted(model.id for model in sdk.models.list()) == ["claude-x", "gpt-4o", "gpt-4o-mini"]
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0) as sdk:
        assert sorted(model.id for model in sdk.models.list()) == sorted(MODELS)
    me = httpx.get(f"{gateway.url}/v1/me", headers={"authorization": f"Bearer {secret}"}).json()
    assert (me["id"], me["name"], me["team"]) == (created["id"], "app", {"id": "t1", "name": "Team One"})
    assert sorted(me["models"]) == ["claude-x", "gpt-4o", "gpt-4o-mini"]
    assert [(s["kind"], s["rpm"], s["spent_usd"]) for s in me["scopes"]] == [
        ("key", 60, None),
        ("team", 1000, None),
    ]


def test_the_secret_is_shown_once_and_stored_nowhere(gateway: GatewayProcess) -> None:
    created = new_key(gateway, name="secretive", metadata={"owner": "ops"})
    secret = created["key"]
    assert chat(gateway, secret)
    refusal(gateway, secret + "x")
    listed = httpx.get(f"{gateway.url}/admin/keys", params={"name": "secretive"}, headers=ADMIN).text
    shown = httpx.get(f"{gateway.url}/admin/keys/{created['id']}", headers=ADMIN).text
    assert created["id"] in listed and secret not in listed + shown and '"key":' not in listed + shown
    files = sorted(gateway.dir.glob("llm-gateway.db*"))
    stored = b"".join(path.read_bytes() for path in files)
    assert hash_secret(secret).encode() in stored  # the right file: the hash is there
    body = secret.removeprefix("sk-gw-").encode()
    assert secret.encode() not in stored and body not in stored and body[:16] not in stored
    assert secret not in gateway.log() and secret[6:] not in gateway.log()


def test_each_refusal_says_why(gateway: GatewayProcess) -> None:
    assert "no such key" in refusal(gateway, "sk-gw-" + "A" * 43).message
    revoked = new_key(gateway)
    admin(gateway, "DELETE", f"/admin/keys/{revoked['id']}")
    assert "revoked" in refusal(gateway, revoked["key"]).message
    blocked = new_key(gateway, blocked=True)
    assert "blocked" in refusal(gateway, blocked["key"]).message
    admin(gateway, "PATCH", f"/admin/keys/{blocked['id']}", {"blocked": False})
    assert chat(gateway, blocked["key"])
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    expired = new_key(gateway, expires_at=past)
    assert "expired" in refusal(gateway, expired["key"]).message
    rotated = new_key(gateway)
    fresh = admin(gateway, "POST", f"/admin/keys/{rotated['id']}/rotate", {"grace_seconds": 0})
    assert "rotated" in refusal(gateway, rotated["key"]).message
    assert chat(gateway, fresh["key"])
    graced = admin(gateway, "POST", f"/admin/keys/{fresh['id']}/rotate", {"grace_seconds": 3600})
    assert chat(gateway, fresh["key"]) and chat(gateway, graced["key"])
    assert "invalid API key" in refusal(gateway, "not-a-gateway-key").message


def test_the_gateway_refuses_to_start_open_over_live_keys(gateway: GatewayProcess, fake_openai: Any) -> None:
    new_key(gateway, name="keeps-it-shut")
    _, server = fake_openai
    database = f"sqlite:///{gateway.dir / 'llm-gateway.db'}"
    with pytest.raises(RuntimeError) as refused:
        GatewayProcess(openai_config(server.url, MODELS, database_url=database)).start()
    assert "virtual key(s) but no master_key is configured" in str(refused.value)


def cli(gateway: GatewayProcess, *args: str) -> str:
    result = run_cli(*args, "--url", gateway.url, env={"LLM_GATEWAY_MASTER_KEY": MASTER_KEY})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_cli_manages_keys_and_teams(gateway: GatewayProcess, team: dict[str, Any]) -> None:
    created = cli(
        gateway, "keys", "create", "--name", "app1", "--team", "t1", "--models", "gpt-4o*", "--rpm", "60",
        "--tpm", "100000", "--max-parallel", "4", "--budget", "10", "--budget-period", "monthly",
    )  # fmt: skip
    secret = created.split("store it now): ")[1].strip()
    assert secret.startswith("sk-gw-") and chat(gateway, secret)
    key = json.loads(cli(gateway, "keys", "list", "--name", "app1", "--json"))["data"][0]
    assert (key["rpm"], key["tpm"], key["max_parallel"], key["budget_usd"]) == (60, 100000, 4, 10.0)
    table = cli(gateway, "keys", "list", "--team", "t1")
    assert "app1" in table and "10/monthly" in table and secret not in table
    assert key["id"] in cli(gateway, "keys", "show", key["id"])
    rotated = json.loads(cli(gateway, "keys", "rotate", key["id"], "--grace", "3600", "--json"))
    assert rotated["grace_until"] and chat(gateway, secret) and chat(gateway, rotated["key"])
    assert "revoked" in cli(gateway, "keys", "revoke", key["id"])
    assert "revoked" in refusal(gateway, rotated["key"]).message
    cli(gateway, "teams", "create", "--id", "t2", "--name", "Team Two", "--models", "gpt-4o,claude-x")
    assert "Team Two" in cli(gateway, "teams", "list") and "gpt-4o,claude-x" in cli(
        gateway, "teams", "show", "t2"
    )
    cli(
        gateway, "teams", "create", "--id", "t3", "--name", "Team Three", "--budget", "50",
        "--budget-period", "daily", "--end-user-budget", "1.5",
    )  # fmt: skip
    shown = json.loads(cli(gateway, "teams", "show", "t3", "--json"))
    assert (shown["budget_usd"], shown["end_user_budget_usd"]) == (50.0, 1.5)
    assert "1.5/daily" in cli(gateway, "teams", "show", "t3")
    failed = run_cli("keys", "show", "key_nope", "--url", gateway.url, "--master-key", MASTER_KEY)
    assert failed.returncode == 1 and "404" in failed.stderr
    wrong = run_cli("keys", "list", "--url", gateway.url, "--master-key", "wrong")
    assert wrong.returncode == 1 and "invalid API key" in wrong.stderr


def test_db_upgrade_migrates_without_a_gateway(tmp_path: Any) -> None:
    config = tmp_path / "config.yaml"
    database = tmp_path / "sub" / "keys.db"
    config.write_text(
        json.dumps(
            {
                "providers": {"mock": {"type": "mock"}},
                "models": {"mock": {"deployments": [{"provider": "mock"}]}},
                "database_url": f"sqlite:///{database}",
            }
        )
    )
    result = run_cli("db", "upgrade", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout and database.exists()


def test_a_keys_own_limits_are_enforced_by_governance(gateway: GatewayProcess) -> None:
    """Limits set on a key through the admin API bind it on the next request: the key's
    scope reaches the governance hook, with OpenAI's rate-limit headers on every answer."""
    key = new_key(gateway, rpm=2)["key"]
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=10) as sdk:
        for remaining in ("1", "0"):
            raw = sdk.chat.completions.with_raw_response.create(model="gpt-4o", messages=HI)
            assert raw.headers["x-ratelimit-limit-requests"] == "2"
            assert raw.headers["x-ratelimit-remaining-requests"] == remaining
        with pytest.raises(openai.RateLimitError) as limited:
            sdk.chat.completions.create(model="gpt-4o", messages=HI)
    assert limited.value.response.headers["retry-after"]
    assert limited.value.code == "rate_limit_exceeded"


def test_a_keys_budget_is_enforced_by_governance(gateway: GatewayProcess) -> None:
    """A budget too small for the request's worst case is refused up front with a 402 that
    names the key's scope; nothing reaches the upstream."""
    key = new_key(gateway, budget_usd=0.000001, budget_period="daily")["key"]
    with (
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=10) as sdk,
        pytest.raises(openai.APIStatusError) as refused,
    ):
        sdk.chat.completions.create(model="gpt-4o", messages=HI, max_tokens=1000)
    assert refused.value.status_code == 402
    assert refused.value.code == "budget_exceeded"
    assert "key" in refused.value.message
