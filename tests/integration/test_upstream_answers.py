"""A hostile upstream, through a real gateway: broken HTTP, broken SSE, answers of the wrong
shape, answers without end, bombs and redirects are all retryable 502s that fail over to a
healthy deployment and open the broken one's circuit; the gateway's memory stays bounded.

The upstream is the raw-socket fake (tests/fakes/raw.py), which writes exact bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.openai import FakeOpenAI
from tests.fakes.raw import BREAKAGE, EMBEDDING_BREAKAGE, PLANTED_HEADER, PLANTED_KEY, RawServer, RawUpstream
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess

HI = [{"role": "user", "content": "hi"}]
FLOODS = ("endless", "bomb", "big", "big-unsized", "error-huge")
REDIRECTS = ("301", "302", "307", "308")
RSS_GROWTH_BOUND = 200 * 1024 * 1024
"""docs/security-upstream.md states it: floods of any size cost the gateway less than this."""


def raw_provider(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "openai",
        "base_url": f"{url}/v1",
        "api_key": PLANTED_KEY,
        "headers": {"x-cred": PLANTED_HEADER},
        "timeout": 10,
        **extra,
    }


def single(model: str) -> dict[str, Any]:
    return {"deployments": [{"provider": "raw", "model": f"scn-{model}"}], "routing": {"max_attempts": 1}}


@pytest.fixture(scope="module")
def gateway(raw_server: RawServer, start_gateway: GatewayFactory) -> GatewayProcess:
    names = [*BREAKAGE, *EMBEDDING_BREAKAGE, *FLOODS, "ok", *(f"redirect-{s}" for s in REDIRECTS)]
    models: dict[str, Any] = {name: single(name) for name in names}
    models["broken-then-healthy"] = {
        "deployments": [
            {"provider": "raw", "model": "scn-mix", "pricing": {"input_per_mtok": 0.0}},
            {"provider": "raw", "model": "scn-ok", "pricing": {"input_per_mtok": 1.0}},
        ],
        "routing": {"strategy": "cost"},
    }
    config = {"providers": {"raw": raw_provider(raw_server.url)}, "models": models, "master_key": MASTER_KEY}
    return start_gateway(config)


@pytest.fixture
def client(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30)


def assert_upstream_502(error: openai.APIStatusError) -> None:
    assert error.status_code == 502, error.response.text
    body = error.response.json()["error"]
    assert body["code"] in (
        "upstream_malformed_response",
        "upstream_response_too_large",
        "upstream_unavailable",
        "upstream_connection_error",
        "upstream_redirect",
    ), body


@pytest.mark.parametrize("name", list(BREAKAGE))
def test_a_broken_answer_is_a_502(client: openai.OpenAI, raw_upstream: RawUpstream, name: str) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=name, messages=HI)  # type: ignore[arg-type]
    assert_upstream_502(caught.value)


@pytest.mark.parametrize("name", [n for n in BREAKAGE if n.startswith("sse-")])
def test_a_broken_stream_is_a_502_or_ends_with_one_error_event(
    client: openai.OpenAI, raw_upstream: RawUpstream, name: str
) -> None:
    try:
        with client.chat.completions.with_streaming_response.create(
            model=name,
            messages=HI,  # type: ignore[arg-type]
            stream=True,
        ) as response:
            text, status = response.read().decode(), response.status_code
    except openai.APIStatusError as error:
        text, status = error.response.text, error.status_code
    if "midstream" in name:
        assert status == 200
        events = [line for line in text.splitlines() if line.startswith("data:")]
        assert '"content":"fine"' in events[0].replace(" ", "")
        assert len(events) == 2 and '"error"' in events[1], text
        assert "[DONE]" not in text
    else:
        assert status == 502, text


@pytest.mark.parametrize("name", list(EMBEDDING_BREAKAGE))
def test_embeddings_of_the_wrong_shape_are_a_502(
    client: openai.OpenAI, raw_upstream: RawUpstream, name: str
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.embeddings.create(model=name, input="hi", encoding_format="float")
    assert_upstream_502(caught.value)


def test_a_broken_deployment_fails_over_and_its_circuit_opens(
    gateway: GatewayProcess, client: openai.OpenAI, raw_upstream: RawUpstream
) -> None:
    statuses = []
    for _ in range(30):
        completion = client.chat.completions.with_raw_response.create(
            model="broken-then-healthy", messages=HI
        )  # type: ignore[arg-type]
        statuses.append(completion.status_code)
        assert completion.parse().choices[0].message.content == "fine"
    assert statuses == [200] * 30
    assert raw_upstream.scenarios.count("mix") >= 5, raw_upstream.scenarios
    rows = httpx2.get(f"{gateway.url}/admin/deployments", headers={"authorization": f"Bearer {MASTER_KEY}"})
    broken = [row for row in rows.json()["data"] if row["upstream_model"] == "scn-mix"]
    assert broken and broken[0]["circuit"] == "open", broken


@pytest.mark.parametrize("status", REDIRECTS)
@pytest.mark.parametrize("where", ["other-host", "same-host"])
def test_a_redirect_is_never_followed(
    client: openai.OpenAI,
    raw_upstream: RawUpstream,
    raw_server: RawServer,
    fake_openai: tuple[FakeOpenAI, FakeServer],
    status: str,
    where: str,
) -> None:
    fake, server = fake_openai
    fake.reset()
    target = server.url if where == "other-host" else raw_server.url
    raw_upstream.redirect_to = f"{target}/v1/chat/completions/scn-ok"
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=f"redirect-{status}", messages=HI)  # type: ignore[arg-type]
    assert_upstream_502(caught.value)
    message = caught.value.response.json()["error"]["message"]
    assert f"HTTP {status}" in message and "redirect" in message
    assert PLANTED_KEY not in caught.value.response.text
    assert fake.requests == [], "the redirect was followed to another host"
    assert raw_upstream.scenarios == [f"redirect-{status}"], "the redirect was followed"


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS is read from /proc")
def test_floods_are_refused_within_a_bounded_memory(
    gateway: GatewayProcess, client: openai.OpenAI, raw_upstream: RawUpstream
) -> None:
    client.chat.completions.create(model="ok", messages=HI)  # type: ignore[arg-type]
    assert gateway.process is not None
    before = peak_rss(gateway.process.pid)
    for name in FLOODS:
        for _ in range(3):
            with pytest.raises(openai.APIStatusError) as caught:
                client.chat.completions.create(model=name, messages=HI)  # type: ignore[arg-type]
            assert_upstream_502(caught.value)
    growth = peak_rss(gateway.process.pid) - before
    assert growth < RSS_GROWTH_BOUND, f"peak RSS grew by {growth / 2**20:.0f} MiB"
    print(f"peak RSS growth over {len(FLOODS) * 3} floods: {growth / 2**20:.1f} MiB")
