"""Stored Responses API conversations in the gateway's database, through real gateway
processes and the official openai SDK: a conversation stored on one instance continues on
another sharing PostgreSQL, and on one instance after a restart on SQLite; another key's
follow-up is a 404 everywhere. With `responses.store: memory` a restart forgets it."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, UPSTREAM_KEY, GatewayFactory
from tests.fakes.responses import FakeResponses
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess


def config(upstream_url: str, **extra: Any) -> dict[str, Any]:
    base = f"{upstream_url}/v1"
    return {
        "providers": {
            "native": {
                "type": "openai",
                "base_url": base,
                "api_key": UPSTREAM_KEY,
                "responses_api": "native",
            },
            "compat": {"type": "openai", "base_url": base, "api_key": UPSTREAM_KEY},
        },
        "models": {
            "native-echo": {"deployments": [{"provider": "native", "model": "upstream-gpt"}]},
            "compat-echo": {"deployments": [{"provider": "compat", "model": "upstream-gpt"}]},
        },
        "master_key": MASTER_KEY,
        **extra,
    }


def new_key(gateway: GatewayProcess, name: str) -> str:
    response = httpx.post(
        f"{gateway.url}/admin/keys",
        json={"name": name},
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


def sdk(gateway: GatewayProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=10)


@pytest.fixture
def upstream(fake_responses_server: tuple[FakeResponses, FakeServer]) -> FakeResponses:
    fake = fake_responses_server[0]
    fake.reset()
    return fake


Stored = tuple[openai.types.responses.Response, openai.types.responses.Response, str]


def store_conversations(gateway: GatewayProcess, alice: str) -> Stored:
    """Alice's conversations stored through `gateway`: a translated one, a native one, and
    the id of one she asked not to store."""
    with sdk(gateway, alice) as client:
        stored = client.responses.create(model="compat-echo", input="my name is Ada", store=True)
        native = client.responses.create(model="native-echo", input="remember me", store=True)
        unstored = client.responses.create(model="compat-echo", input="forget me", store=False)
    return stored, native, unstored.id


def continue_conversations(
    upstream: FakeResponses, gateway: GatewayProcess, stored: Stored, alice: str, bob: str
) -> None:
    """Alice's conversations continue through `gateway`; Bob's follow-up, retrieve and
    delete of them are 404s; Alice's delete is final."""
    translated, native, unstored = stored
    with sdk(gateway, alice) as client:
        client.responses.create(model="compat-echo", previous_response_id=translated.id, input="my name?")
        messages = upstream.bodies("/v1/chat/completions")[-1]["messages"]
        assert [m["content"] for m in messages] == ["my name is Ada", "echo: my name is Ada", "my name?"]
        assert client.responses.retrieve(translated.id).output_text == translated.output_text
        # the native deployment stored it too: its id goes upstream as is
        client.responses.create(model="native-echo", previous_response_id=native.id, input="again")
        assert upstream.bodies("/v1/responses")[-1]["previous_response_id"] == native.id
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(unstored)
    with sdk(gateway, bob) as stranger:
        with pytest.raises(openai.NotFoundError) as raised:
            stranger.responses.create(model="compat-echo", previous_response_id=translated.id, input="hi")
        assert raised.value.body["param"] == "previous_response_id"  # type: ignore[index]
        with pytest.raises(openai.NotFoundError):
            stranger.responses.retrieve(translated.id)
        with pytest.raises(openai.NotFoundError):
            stranger.responses.delete(translated.id)
    with sdk(gateway, alice) as client:
        client.responses.delete(translated.id)
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(translated.id)


@pytest.mark.postgres
def test_a_conversation_continues_on_another_instance_sharing_postgres(
    upstream: FakeResponses,
    fake_responses_server: tuple[FakeResponses, FakeServer],
    start_gateway: GatewayFactory,
    postgres_database: str,
) -> None:
    shared = config(fake_responses_server[1].url, database_url=postgres_database)
    first = start_gateway(shared)
    alice, bob = new_key(first, "alice"), new_key(first, "bob")
    second = start_gateway(shared)  # started after the keys exist: it loads them at start
    stored = store_conversations(first, alice)
    continue_conversations(upstream, second, stored, alice, bob)
    with sdk(first, alice) as here, pytest.raises(openai.NotFoundError):
        here.responses.retrieve(stored[0].id)  # the delete on `second` is seen where it was stored


def test_a_conversation_survives_a_restart_on_sqlite(
    upstream: FakeResponses,
    fake_responses_server: tuple[FakeResponses, FakeServer],
    start_gateway: GatewayFactory,
    tmp_path: Any,
) -> None:
    gateway = start_gateway(config(fake_responses_server[1].url, database_url=f"sqlite:///{tmp_path}/gw.db"))
    alice, bob = new_key(gateway, "alice"), new_key(gateway, "bob")
    stored = store_conversations(gateway, alice)
    gateway.stop()
    gateway.start()  # a new process: the same config, database and port
    continue_conversations(upstream, gateway, stored, alice, bob)


def test_a_memory_store_forgets_on_restart(
    upstream: FakeResponses,
    fake_responses_server: tuple[FakeResponses, FakeServer],
    start_gateway: GatewayFactory,
    tmp_path: Any,
) -> None:
    gateway = start_gateway(
        config(
            fake_responses_server[1].url,
            database_url=f"sqlite:///{tmp_path}/gw.db",
            responses={"store": "memory", "ttl_days": 1},
        )
    )
    with sdk(gateway, MASTER_KEY) as client:
        stored = client.responses.create(model="compat-echo", input="my name is Ada")
        assert client.responses.retrieve(stored.id).id == stored.id
    gateway.stop()
    gateway.start()
    with sdk(gateway, MASTER_KEY) as client, pytest.raises(openai.NotFoundError):
        client.responses.create(model="compat-echo", previous_response_id=stored.id, input="again")
