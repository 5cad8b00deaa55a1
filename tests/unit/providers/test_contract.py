"""One contract, every registered provider: each `PROVIDER_TYPES` entry runs the same cases
against its loopback fake (tests/fakes/), which speaks that provider's real wire format.

Cases: a completion, a stream (the same answer, ending in a finish reason), error mapping
(429 with its retry-after, 500, a bad credential), a stream whose body ends or whose
connection drops before its terminal event, cancellation (closing the iterator closes the
upstream request while the fake is still sending), and each declared capability. `mock`
has no HTTP upstream: it runs the cases that do not need one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from llm_gateway.core.capabilities import Capability
from llm_gateway.core.errors import (
    UpstreamConnectionError,
    UpstreamRateLimited,
    UpstreamStatusError,
    UpstreamUnavailable,
)
from llm_gateway.core.types import ChatChunk, ChatRequest
from llm_gateway.providers.base import Provider, embedder, native_messages
from llm_gateway.providers.registry import PROVIDER_TYPES, provider_class
from llm_gateway.providers.transport import HttpClient
from tests.conftest import UPSTREAM_KEY, running
from tests.fakes import azure as azure_fakes
from tests.fakes import bedrock as bedrock_fakes
from tests.fakes import gemini as gemini_fakes
from tests.fakes.misbehaviour import DRIP, DROP, EARLY_END, StreamLog
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import UPSTREAM_CLIENT

NO_UPSTREAM = "mock answers in-process: it has no HTTP upstream to fail, end early or hang up on"
TEXT = "hello contract"
REQUEST = cast(ChatRequest, {"model": "public", "messages": [{"role": "user", "content": TEXT}]})


@dataclass(frozen=True)
class Spec:
    """How to reach one provider type's fake and make it misbehave."""

    fixture: str | None
    """The conftest fixture serving the fake as (fake, server); None: no upstream."""
    settings: Callable[[str], dict[str, Any]]
    """The provider's config block, given the fake's URL."""
    bad_credentials: dict[str, Any] = field(default_factory=dict)
    rate_limited: str = "error-429"
    failing: str = "error-500"
    retry_after: float | None = 7.0
    auth_status: int = 401
    embedding_model: str = "embed"


SPECS: dict[str, Spec] = {
    "openai": Spec(
        "contract_openai",
        lambda url: {"type": "openai", "base_url": f"{url}/v1", "api_key": UPSTREAM_KEY},
        {"api_key": "sk-wrong-key"},
    ),
    "mock": Spec(None, lambda _url: {"type": "mock"}),
    "anthropic": Spec(
        "fake_anthropic_server",
        lambda url: {"type": "anthropic", "base_url": url, "api_key": UPSTREAM_KEY},
        {"api_key": "sk-ant-wrong"},
    ),
    "gemini": Spec(
        "fake_gemini_server",
        lambda url: {"type": "gemini", "base_url": f"{url}/v1beta", "api_key": gemini_fakes.API_KEY},
        # Google answers a bad key with 400 API_KEY_INVALID; the adapter reports it as a 401.
        {"api_key": "AIza-wrong"},
    ),
    "azure": Spec(
        "fake_azure_server",
        lambda url: {"type": "azure", "endpoint": url, "api_key": azure_fakes.API_KEY},
        {"api_key": "wrong-azure-key"},
    ),
    "bedrock": Spec(
        "fake_bedrock_server",
        lambda url: {
            "type": "bedrock",
            "region": bedrock_fakes.REGION,
            "endpoint_url": url,
            "api_key": bedrock_fakes.API_KEY,
        },
        {"api_key": "bedrock-api-key-wrong"},
        rate_limited="error-ThrottlingException",
        failing="error-InternalServerException",
        retry_after=None,  # Bedrock's throttling answers carry no Retry-After
        auth_status=403,  # AWS answers a bad credential with 403 (UnrecognizedClientException)
        embedding_model="amazon.titan-embed-text-v2:0",
    ),
}


def test_every_registered_type_has_a_spec() -> None:
    assert set(SPECS) == set(PROVIDER_TYPES)


@pytest.fixture(scope="module")
def contract_openai() -> Iterator[tuple[FakeOpenAI, FakeServer]]:
    """The fake OpenAI upstream, checking the bearer key (the shared one accepts any)."""
    with running(FakeOpenAI(api_key=UPSTREAM_KEY)) as pair:
        yield pair


@dataclass
class Subject:
    type_name: str
    spec: Spec
    url: str
    streams: StreamLog | None

    def provider(self, **overrides: Any) -> Provider:
        cls = provider_class(self.type_name)
        settings = cls.settings_model.model_validate({**self.spec.settings(self.url), **overrides})
        return cls("contract", settings, HttpClient("contract", settings, client=UPSTREAM_CLIENT))


@pytest.fixture(params=sorted(PROVIDER_TYPES))
def subject(request: pytest.FixtureRequest) -> Subject:
    spec = SPECS[request.param]
    if spec.fixture is None:
        return Subject(request.param, spec, "", None)
    fake, server = request.getfixturevalue(spec.fixture)
    fake.reset()
    return Subject(request.param, spec, server.url, fake.streams)


@pytest.fixture
def http_subject(subject: Subject) -> Subject:
    if subject.spec.fixture is None:
        pytest.skip(NO_UPSTREAM)
    return subject


@pytest.fixture
async def provider(subject: Subject) -> AsyncIterator[Provider]:
    provider = subject.provider()
    yield provider
    await provider.aclose()


def content_of(chunks: list[ChatChunk]) -> str:
    return "".join(
        str(choice["delta"].get("content") or "") for chunk in chunks for choice in chunk["choices"]
    )


async def test_complete(subject: Subject, provider: Provider) -> None:
    completion = await provider.complete(REQUEST, "echo")
    assert completion["object"] == "chat.completion"
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert TEXT in str(choice["message"]["content"])


async def test_stream_carries_the_same_answer(subject: Subject, provider: Provider) -> None:
    completion = await provider.complete(REQUEST, "echo")
    chunks = [chunk async for chunk in provider.stream(REQUEST, "echo")]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert content_of(chunks) == completion["choices"][0]["message"]["content"]
    finishes = [c["finish_reason"] for chunk in chunks for c in chunk["choices"] if c.get("finish_reason")]
    assert finishes == ["stop"]


async def complete_or_stream(provider: Provider, model: str, how: str) -> None:
    if how == "complete":
        await provider.complete(REQUEST, model)
    else:
        async for _ in provider.stream(REQUEST, model):
            pass


@pytest.mark.parametrize("how", ["complete", "stream"])
async def test_429_is_rate_limited_with_its_retry_after(
    http_subject: Subject, provider: Provider, how: str
) -> None:
    with pytest.raises(UpstreamRateLimited) as caught:
        await complete_or_stream(provider, http_subject.spec.rate_limited, how)
    assert caught.value.retryable and caught.value.provider == "contract"
    assert caught.value.retry_after == http_subject.spec.retry_after


@pytest.mark.parametrize("how", ["complete", "stream"])
async def test_500_is_unavailable(http_subject: Subject, provider: Provider, how: str) -> None:
    with pytest.raises(UpstreamUnavailable) as caught:
        await complete_or_stream(provider, http_subject.spec.failing, how)
    assert caught.value.status_code == 502 and caught.value.retryable


@pytest.mark.parametrize("how", ["complete", "stream"])
async def test_a_bad_credential_keeps_its_status(http_subject: Subject, how: str) -> None:
    provider = http_subject.provider(**http_subject.spec.bad_credentials)
    try:
        with pytest.raises(UpstreamStatusError) as caught:
            await complete_or_stream(provider, "echo", how)
    finally:
        await provider.aclose()
    assert caught.value.status_code == http_subject.spec.auth_status
    assert not caught.value.retryable
    secret = str(http_subject.spec.bad_credentials["api_key"])
    assert secret not in str(caught.value.to_body())


@pytest.mark.parametrize("misbehaviour", [EARLY_END, DROP])
async def test_a_stream_cut_short_is_a_connection_error(
    http_subject: Subject, provider: Provider, misbehaviour: str
) -> None:
    received: list[ChatChunk] = []
    with pytest.raises(UpstreamConnectionError):
        async for chunk in provider.stream(REQUEST, misbehaviour):
            received.append(chunk)
    finishes = [c for chunk in received for c in chunk["choices"] if c.get("finish_reason")]
    if misbehaviour == DROP:
        assert not finishes


async def until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def test_closing_a_stream_closes_the_upstream_request(
    http_subject: Subject, provider: Provider
) -> None:
    streams = http_subject.streams
    assert streams is not None
    stream = provider.stream(REQUEST, DRIP)
    await anext(stream)
    await asyncio.wait_for(stream.aclose(), 2)  # type: ignore[attr-defined]
    # The drip answer takes about four seconds; the hang-up must reach the fake long before.
    assert await until(lambda: DRIP in streams.cancelled, timeout=2), (
        f"the fake never saw the connection close (completed: {streams.completed})"
    )
    assert DRIP not in streams.completed


def test_declared_capabilities_have_their_methods(subject: Subject) -> None:
    cls = provider_class(subject.type_name)
    assert Capability.CHAT in cls.capabilities
    methods = {
        Capability.EMBEDDINGS: ("embed",),
        Capability.MESSAGES: ("messages", "messages_stream", "count_tokens"),
    }
    for capability, names in methods.items():
        for name in names:
            assert (capability in cls.capabilities) == callable(getattr(cls, name, None)), (capability, name)


async def test_accessors_follow_the_declaration(subject: Subject, provider: Provider) -> None:
    declared = provider_class(subject.type_name).capabilities
    assert (embedder(provider) is provider) == (Capability.EMBEDDINGS in declared)
    assert (native_messages(provider) is provider) == (Capability.MESSAGES in declared)


async def test_embed(subject: Subject, provider: Provider) -> None:
    embedding = embedder(provider)
    if embedding is None:
        pytest.skip(f"{subject.type_name} does not declare embeddings")
    answer = await embedding.embed({"model": "public", "input": TEXT}, subject.spec.embedding_model)
    assert answer["object"] == "list"
    assert [item["index"] for item in answer["data"]] == [0]
    assert all(isinstance(v, float) for v in answer["data"][0]["embedding"])


@pytest.mark.parametrize("misbehaviour", [EARLY_END, DROP])
async def test_a_native_messages_stream_cut_short_is_a_connection_error(
    http_subject: Subject, provider: Provider, misbehaviour: str
) -> None:
    native = native_messages(provider)
    if native is None:
        pytest.skip(f"{http_subject.type_name} does not declare native messages")
    body = {"model": "public", "max_tokens": 64, "messages": [{"role": "user", "content": TEXT}]}
    events: list[str] = []
    with pytest.raises(UpstreamConnectionError):
        async for name, _ in native.messages_stream(body, misbehaviour):
            events.append(name)
    assert "message_stop" not in events
