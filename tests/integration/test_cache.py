"""The response cache on real gateways, through the official SDKs: tenants never share an
answer, errors and tool calls are never cached, a cached answer replays as a stream in the
client's dialect, clients steer it with headers, and Redis shares it between instances.

Each test asks for a prompt of its own, so the session's shared fake upstream can count the
calls that reached it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import orjson
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory, openai_config
from tests.fakes.openai import FakeOpenAI, last_user_text
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess
from tests.integration.observed import scrape, total

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
PRICE = {"input_per_mtok": 1000, "output_per_mtok": 2000}


def cached_config(upstream: str, spend: Path | None = None, **extra: Any) -> dict[str, Any]:
    config = openai_config(
        upstream,
        {
            "cached": "cache-echo",
            "plain": "cache-plain",
            "failing": "error-500",
            "tooling": "tools",
            "cut": "cut-2",
        },
        master_key=MASTER_KEY,
        routing={"max_attempts": 1},
        cache={"ttl": 30},  # the defaults for keys and teams that turn caching on
        **extra,
    )
    for name in ("cached", "failing", "tooling", "cut"):
        config["models"][name]["cache"] = {"ttl": 60}
    for group in config["models"].values():
        group["deployments"][0]["pricing"] = PRICE
    if spend is not None:
        config["governance"] = {"spend_log": {"sink": "jsonl", "path": str(spend), "flush_interval": 0.2}}
    return config


@pytest.fixture(scope="module")
def spend_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache-spend") / "spend.jsonl"


@pytest.fixture(scope="module")
def gateway(
    fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory, spend_path: Path
) -> GatewayProcess:
    return start_gateway(cached_config(fake_openai[1].url, spend_path))


@pytest.fixture
def fake(fake_openai: tuple[FakeOpenAI, FakeServer]) -> FakeOpenAI:
    return fake_openai[0]


@pytest.fixture(scope="module")
def keys(gateway: GatewayProcess) -> dict[str, str]:
    """Two keys in team A, one in team B."""
    out: dict[str, str] = {}
    for team in ("a", "b"):
        created = httpx.post(
            f"{gateway.url}/admin/teams", json={"name": f"team-{team}-{uuid.uuid4().hex[:6]}"}, headers=ADMIN
        )
        team_id = created.json()["id"]
        for index in (1, 2) if team == "a" else (1,):
            key = httpx.post(
                f"{gateway.url}/admin/keys",
                json={"name": f"{team}{index}", "team_id": team_id},
                headers=ADMIN,
            )
            out[f"{team}{index}"] = key.json()["key"]
    return out


def client(gateway: GatewayProcess, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=10)


def ask(
    gateway: GatewayProcess, text: str, key: str = MASTER_KEY, model: str = "cached", **extra: Any
) -> Any:
    with client(gateway, key) as sdk:
        return sdk.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": text}], **extra
        )


def calls(fake: FakeOpenAI, text: str) -> int:
    return sum(1 for r in fake.requests if last_user_text(r.body) == text)


def unique() -> str:
    return f"question {uuid.uuid4().hex}"


def test_a_repeat_is_a_hit_within_a_team_and_a_miss_for_another_team(
    gateway: GatewayProcess, fake: FakeOpenAI, keys: dict[str, str]
) -> None:
    text = unique()
    first = ask(gateway, text, keys["a1"])
    assert first.headers["x-llm-gateway-cache"] == "miss"
    again = ask(gateway, text, keys["a1"])
    assert again.headers["x-llm-gateway-cache"] == "hit"
    assert again.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert ask(gateway, text, keys["a2"]).headers["x-llm-gateway-cache"] == "hit"  # same team
    assert calls(fake, text) == 1
    other = ask(gateway, text, keys["b1"])
    assert other.headers["x-llm-gateway-cache"] == "miss"
    assert calls(fake, text) == 2
    assert ask(gateway, text).headers["x-llm-gateway-cache"] == "miss"  # the master key is a tenant too
    assert "x-llm-gateway-cache" not in ask(gateway, text, model="plain").headers


def new_key(gateway: GatewayProcess, team: dict[str, Any] | None, key: dict[str, Any] | None) -> str:
    team_id = None
    if team is not None:
        body = {"name": f"team-{uuid.uuid4().hex[:6]}", "metadata": {"cache": team}}
        team_id = httpx.post(f"{gateway.url}/admin/teams", json=body, headers=ADMIN).json()["id"]
    body = {"name": "k", "team_id": team_id, "metadata": {} if key is None else {"cache": key}}
    created = httpx.post(f"{gateway.url}/admin/keys", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    return str(created.json()["key"])


def test_keys_and_teams_choose_their_cache_through_metadata(
    gateway: GatewayProcess, fake: FakeOpenAI
) -> None:
    per_key = {"scope": "key"}
    first, second = new_key(gateway, per_key, None), new_key(gateway, per_key, None)
    text = unique()
    ask(gateway, text, first)
    assert ask(gateway, text, first).headers["x-llm-gateway-cache"] == "hit"
    assert ask(gateway, text, second).headers["x-llm-gateway-cache"] == "miss"  # same team, own scope
    opted_out = new_key(gateway, None, False)
    assert "x-llm-gateway-cache" not in ask(gateway, text, opted_out).headers
    enabled = new_key(gateway, None, {"ttl": 10})  # a model without a cache of its own
    ask(gateway, text, enabled, model="plain")
    assert ask(gateway, text, enabled, model="plain").headers["x-llm-gateway-cache"] == "hit"


def test_every_parameter_is_part_of_the_key(gateway: GatewayProcess, fake: FakeOpenAI) -> None:
    text = unique()
    ask(gateway, text, temperature=0.1)
    assert ask(gateway, text, temperature=0.2).headers["x-llm-gateway-cache"] == "miss"
    assert ask(gateway, text, temperature=0.1).headers["x-llm-gateway-cache"] == "hit"
    assert calls(fake, text) == 2


def test_errors_and_tool_calls_are_never_cached(gateway: GatewayProcess, fake: FakeOpenAI) -> None:
    text = unique()
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            ask(gateway, text, model="failing")
    assert calls(fake, text) == 2
    tools: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    for _ in range(2):
        reply = ask(gateway, text, model="tooling", tools=tools)
        assert reply.headers["x-llm-gateway-cache"] == "miss"
        assert reply.parse().choices[0].message.tool_calls
    assert calls(fake, text) == 4


def test_a_cached_answer_replays_as_a_stream_in_each_dialect(
    gateway: GatewayProcess, fake: FakeOpenAI
) -> None:
    text = unique()
    answer = ask(gateway, text).parse().choices[0].message.content
    with client(gateway) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="cached",
            messages=[{"role": "user", "content": text}],
            stream=True,
            stream_options={"include_usage": True},
        )
        assert raw.headers["x-llm-gateway-cache"] == "hit"
        chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == answer
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert calls(fake, text) == 1
    with anthropic.Anthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0, timeout=10) as sdk_a:
        whole = sdk_a.messages.create(
            model="cached", max_tokens=50, messages=[{"role": "user", "content": text}]
        )
        with sdk_a.messages.stream(
            model="cached", max_tokens=50, messages=[{"role": "user", "content": text}]
        ) as stream:
            streamed = stream.get_final_message()
    assert streamed.content[0].type == "text" and whole.content[0].type == "text"
    assert streamed.content[0].text == whole.content[0].text
    assert streamed.stop_reason == whole.stop_reason
    assert calls(fake, text) == 2  # one for each dialect's own body


def test_a_whole_stream_fills_the_cache_and_a_cut_one_does_not(
    gateway: GatewayProcess, fake: FakeOpenAI
) -> None:
    text = unique()
    with client(gateway) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="cached", messages=[{"role": "user", "content": text}], stream=True
        )
        assert raw.headers["x-llm-gateway-cache"] == "miss"
        streamed = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    hit = ask(gateway, text)
    assert hit.headers["x-llm-gateway-cache"] == "hit"
    assert hit.parse().choices[0].message.content == streamed == f"echo: {text}"
    assert hit.parse().usage is not None and hit.parse().usage.total_tokens > 0
    assert calls(fake, text) == 1
    for _ in range(2):
        with client(gateway) as sdk, pytest.raises(openai.APIError):
            for _chunk in sdk.chat.completions.create(
                model="cut", messages=[{"role": "user", "content": text}], stream=True
            ):
                pass
    assert calls(fake, text) == 3


def test_a_whole_anthropic_stream_fills_the_cache_and_a_cut_one_does_not(
    gateway: GatewayProcess, fake: FakeOpenAI
) -> None:
    text = unique()
    body: dict[str, Any] = {"max_tokens": 50, "messages": [{"role": "user", "content": text}]}
    before = scrape(gateway)
    with anthropic.Anthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0, timeout=10) as sdk:
        with sdk.messages.with_streaming_response.create(model="cached", stream=True, **body) as raw:
            assert raw.headers["x-llm-gateway-cache"] == "miss"
            raw.read()
        name = "llm_gateway_response_cache_bytes_total"
        assert total(scrape(gateway), name, direction="written") > total(before, name, direction="written")
        whole = sdk.messages.with_raw_response.create(model="cached", **body)
        assert whole.headers["x-llm-gateway-cache"] == "hit"
        message = whole.parse()
        with sdk.messages.with_streaming_response.create(model="cached", stream=True, **body) as raw:
            assert raw.headers["x-llm-gateway-cache"] == "hit"
        with sdk.messages.stream(model="cached", **body) as stream:
            replayed = stream.get_final_message()
        assert calls(fake, text) == 1
        for _ in range(2):
            with pytest.raises(anthropic.APIError), sdk.messages.stream(model="cut", **body) as cut:
                cut.get_final_message()
    assert message.content[0].type == "text" and message.content[0].text == f"echo: {text}"
    assert replayed.content[0].type == "text" and replayed.content[0].text == f"echo: {text}"
    assert message.stop_reason == replayed.stop_reason == "end_turn"
    assert message.usage.output_tokens > 0
    assert calls(fake, text) == 3


def test_cache_control_headers(gateway: GatewayProcess, fake: FakeOpenAI) -> None:
    text = unique()
    kept = ask(gateway, text, extra_headers={"cache-control": "no-store"})
    assert kept.headers["x-llm-gateway-cache"] == "miss"
    assert ask(gateway, text).headers["x-llm-gateway-cache"] == "miss"  # the first was not stored
    assert (
        ask(gateway, text, extra_headers={"cache-control": "no-cache"}).headers["x-llm-gateway-cache"]
        == "bypass"
    )
    assert calls(fake, text) == 3
    time.sleep(1.2)
    assert (
        ask(gateway, text, extra_headers={"x-llm-gateway-cache-ttl": "1"}).headers["x-llm-gateway-cache"]
        == "miss"
    )
    assert ask(gateway, text).headers["x-llm-gateway-cache"] == "hit"
    with pytest.raises(openai.BadRequestError):
        ask(gateway, text, extra_headers={"x-llm-gateway-cache-ttl": "soon"})


def test_a_hit_costs_nothing_and_records_the_saving(gateway: GatewayProcess, spend_path: Path) -> None:
    text = unique()
    before = scrape(gateway)
    miss = ask(gateway, text)
    hit = ask(gateway, text)
    ids = miss.headers["x-request-id"], hit.headers["x-request-id"]
    rows = spend_rows(spend_path, *ids)
    first, second = rows[ids[0]], rows[ids[1]]
    assert first["cache"] == "miss" and float(first["cost_usd"]) > 0
    assert second["cache"] == "hit" and float(second["cost_usd"]) == 0
    assert second["cache_saved_usd"] == first["cost_usd"]
    assert text not in spend_path.read_text()
    after = scrape(gateway)
    for result in ("hit", "miss"):
        name = "llm_gateway_response_cache_lookups_total"
        assert total(after, name, result=result) - total(before, name, result=result) == 1
    saved = "llm_gateway_response_cache_saved_usd_total"
    assert abs(total(after, saved) - total(before, saved) - float(first["cost_usd"])) < 1e-9
    name = "llm_gateway_response_cache_bytes_total"
    written = total(after, name, direction="written") - total(before, name, direction="written")
    read = total(after, name, direction="read") - total(before, name, direction="read")
    assert written > len(hit.parse().choices[0].message.content or "") and read == written


def spend_rows(path: Path, *request_ids: str) -> dict[str, dict[str, Any]]:
    """The spend rows of `request_ids`, once the log has flushed them all."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []
        found = {row["request_id"]: row for row in rows if row["request_id"] in request_ids}
        if len(found) == len(request_ids):
            return found
        time.sleep(0.1)
    raise AssertionError(f"the spend log lacks some of {request_ids}")


@pytest.fixture
def shared(fake_openai: tuple[FakeOpenAI, FakeServer], redis_url: str) -> Iterator[list[GatewayProcess]]:
    config = cached_config(
        fake_openai[1].url, redis_url=redis_url, redis_prefix=f"cache-{uuid.uuid4().hex[:8]}:"
    )
    started = [GatewayProcess(config).start() for _ in range(2)]
    yield started
    for gateway in started:
        gateway.stop()


@pytest.mark.redis
def test_redis_shares_the_cache_between_instances(shared: list[GatewayProcess], fake: FakeOpenAI) -> None:
    text = unique()
    one, two = shared
    assert ask(one, text).headers["x-llm-gateway-cache"] == "miss"
    reply = ask(two, text)
    assert reply.headers["x-llm-gateway-cache"] == "hit"
    assert reply.parse().choices[0].message.content == f"echo: {text}"
    assert calls(fake, text) == 1
