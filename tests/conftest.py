"""The only place that starts servers: fake upstreams, the gateway process, SDK clients.

Services that tests need (Redis, PostgreSQL) are probed here: absent on a laptop, their
tests skip with a loud reason; under CI=true they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import openai
import pytest
from aiohttp import web

from tests.fakes import azure as azure_fakes
from tests.fakes import bedrock as bedrock_fakes
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.azure import FakeAzure
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.gemini import FakeGemini
from tests.fakes.guardrail import FakeGuardrail
from tests.fakes.openai import FakeOpenAI
from tests.fakes.otlp import FakeOTLP, GrpcOTLP
from tests.fakes.raw import RawServer, RawUpstream
from tests.fakes.responses import FakeResponses
from tests.fakes.scripted import ScriptedAgentUpstream
from tests.fakes.server import FakeServer
from tests.gateway import ROOT, GatewayProcess

MASTER_KEY = "sk-gateway-test-master"
UPSTREAM_KEY = "sk-upstream-secret-0123456789"

GatewayFactory = Callable[..., GatewayProcess]


class FakeUpstream(Protocol):
    """Any fake in tests/fakes: it builds the aiohttp app that speaks its wire format."""

    def app(self) -> web.Application: ...


F = TypeVar("F", bound=FakeUpstream)


@contextmanager
def running(fake: F) -> Iterator[tuple[F, FakeServer]]:
    """Serve a fake upstream on a loopback port for the duration of the block."""
    server = FakeServer(fake.app).start()
    try:
        yield fake, server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[tuple[FakeOpenAI, FakeServer]]:
    fake = FakeOpenAI()
    with running(fake) as pair:
        yield pair


@pytest.fixture(scope="session")
def fake_guardrail() -> Iterator[tuple[FakeGuardrail, FakeServer]]:
    """An external guardrail service on loopback (tests/fakes/guardrail.py)."""
    with running(FakeGuardrail()) as pair:
        yield pair


@pytest.fixture(scope="session")
def otlp_receiver() -> Iterator[tuple[FakeOTLP, FakeServer]]:
    """A real OTLP/HTTP receiver (tests/fakes/otlp.py) that gateways under test export to."""
    receiver = FakeOTLP()
    with running(receiver) as pair:
        yield pair


@pytest.fixture(scope="session")
def otlp_grpc_receiver(otlp_receiver: tuple[FakeOTLP, FakeServer]) -> Iterator[GrpcOTLP]:
    """The OTLP/gRPC trace service, keeping spans with the HTTP receiver's."""
    receiver = GrpcOTLP(otlp_receiver[0]).start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture(scope="session")
def raw_server() -> Iterator[RawServer]:
    """The raw-socket upstream (tests/fakes/raw.py): exact bytes, broken on demand."""
    server = RawServer(RawUpstream()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def raw_upstream(raw_server: RawServer) -> RawUpstream:
    raw_server.upstream.reset()
    return raw_server.upstream


@pytest.fixture(scope="session")
def fake_responses_server() -> Iterator[tuple[FakeResponses, FakeServer]]:
    """The fake OpenAI upstream that also speaks the Responses API (tests/fakes/responses.py)."""
    fake = FakeResponses()
    with running(fake) as pair:
        yield pair


@pytest.fixture(scope="session")
def start_gateway() -> Iterator[GatewayFactory]:
    """Start a gateway process for a config dict; every one started is stopped at session end."""
    started: list[GatewayProcess] = []

    def start(config: dict[str, Any] | None, env: dict[str, str] | None = None) -> GatewayProcess:
        gateway = GatewayProcess(config, env).start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


def openai_config(upstream_url: str, models: dict[str, str], **extra: Any) -> dict[str, Any]:
    """A config with one `openai` provider at `upstream_url` serving public→upstream model ids."""
    return {
        "providers": {
            "fake": {
                "type": "openai",
                "base_url": f"{upstream_url}/v1",
                "api_key": UPSTREAM_KEY,
                "timeout": 5,
            },
        },
        "models": {
            public: {"deployments": [{"provider": "fake", "model": upstream}]}
            for public, upstream in models.items()
        },
        **extra,
    }


@pytest.fixture(scope="session")
def openai_gateway(
    fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory
) -> GatewayProcess:
    """One gateway in front of the fake OpenAI upstream, with a model per fake behaviour."""
    _, server = fake_openai
    models = {
        "gpt-test": "upstream-gpt",
        "tools-model": "tools",
        "garbage-model": "garbage",
        "hang-model": "hang",
        "reset-model": "reset",
        "cut-model": "cut-3",
        "slow-model": "slow-300",
        "midstream-error-model": "midstream-error",
        "drip-model": "drip-50",
        "context-model": "error-context",
        **{f"error-{s}-model": f"error-{s}" for s in (400, 401, 403, 404, 422, 429, 500, 503)},
    }
    config = openai_config(server.url, models, master_key=MASTER_KEY, default_model="gpt-test")
    config["providers"]["fake"]["timeout"] = 2
    return start_gateway(config)


@pytest.fixture
def fake(fake_openai: tuple[FakeOpenAI, FakeServer]) -> FakeOpenAI:
    upstream, _ = fake_openai
    upstream.reset()
    return upstream


@pytest.fixture
def client(openai_gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{openai_gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=10
    ) as sdk:
        yield sdk


@pytest.fixture
async def async_client(openai_gateway: GatewayProcess) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=f"{openai_gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=10
    ) as sdk:
        yield sdk


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip loudly on a laptop without the service; fail under CI, where it must be up."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}; start it (see README) to run this test"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {message}")
    pytest.skip(f"!!! SKIPPED: {message}")


AGENT_BIN = ROOT / "agents" / "node_modules" / ".bin"
"""Where `make agents` puts the pinned coding-agent CLIs (agents/package-lock.json)."""


def require_agent_cli(name: str) -> str:
    """The path of an installed agent CLI: skip loudly without `make agents`, fail under CI."""
    path = AGENT_BIN / name
    if path.exists():
        return str(path)
    message = f"the {name} CLI is not installed at {path}; run `make agents` to run this test"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {message}")
    pytest.skip(f"!!! SKIPPED: {message}")


@pytest.fixture(scope="session")
def scripted_agent_server() -> Iterator[tuple[ScriptedAgentUpstream, FakeServer]]:
    """The scripted tool-loop upstream (tests/fakes/scripted.py) in all three wire formats."""
    fake = ScriptedAgentUpstream()
    with running(fake) as pair:
        yield pair


@pytest.fixture
def scripted_agent(scripted_agent_server: tuple[ScriptedAgentUpstream, FakeServer]) -> ScriptedAgentUpstream:
    fake, _ = scripted_agent_server
    fake.reset()
    return fake


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    require_service("Redis", "127.0.0.1", 6379)
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    return os.environ.get("TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped after it: `postgresql://…/name`."""
    import asyncpg

    server = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    name = f"llmgw_{uuid.uuid4().hex[:12]}"

    async def execute(sql: str) -> None:
        connection = await asyncpg.connect(server)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    yield f"{server.rsplit('/', 1)[0]}/{name}"
    asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def fake_gemini_server() -> Iterator[tuple[FakeGemini, FakeServer]]:
    """The fake Google AI Studio upstream (tests/fakes/gemini.py), shared by the session."""
    fake = FakeGemini()
    with running(fake) as pair:
        yield pair


@pytest.fixture
def gemini_fake(fake_gemini_server: tuple[FakeGemini, FakeServer]) -> FakeGemini:
    fake, _ = fake_gemini_server
    fake.reset()
    return fake


@pytest.fixture(scope="session")
def fake_anthropic_server() -> Iterator[tuple[FakeAnthropic, FakeServer]]:
    """The fake Anthropic Messages API (tests/fakes/anthropic.py), shared by the session."""
    fake = FakeAnthropic(api_key=UPSTREAM_KEY)
    with running(fake) as pair:
        yield pair


@pytest.fixture
def anthropic_fake(fake_anthropic_server: tuple[FakeAnthropic, FakeServer]) -> FakeAnthropic:
    fake, _ = fake_anthropic_server
    fake.reset()
    return fake


@pytest.fixture(scope="session")
def fake_azure_server() -> Iterator[tuple[FakeAzure, FakeServer]]:
    """The fake Azure OpenAI resource (tests/fakes/azure.py), shared by the session."""
    fake = FakeAzure(api_key=azure_fakes.API_KEY, ad_token=azure_fakes.AD_TOKEN)
    with running(fake) as pair:
        yield pair


@pytest.fixture
def azure_fake(fake_azure_server: tuple[FakeAzure, FakeServer]) -> FakeAzure:
    fake, _ = fake_azure_server
    fake.reset()
    return fake


@pytest.fixture(scope="session")
def fake_bedrock_server() -> Iterator[tuple[FakeBedrock, FakeServer]]:
    """The fake Bedrock runtime (tests/fakes/bedrock.py): it knows the config's and the env's keys."""
    credentials = (bedrock_fakes.CONFIG_KEYS, bedrock_fakes.ENV_KEYS)
    keys = {key: (secret, token) for key, secret, token in credentials}
    fake = FakeBedrock(region=bedrock_fakes.REGION, keys=keys, api_key=bedrock_fakes.API_KEY)
    with running(fake) as pair:
        yield pair


@pytest.fixture
def bedrock_fake(fake_bedrock_server: tuple[FakeBedrock, FakeServer]) -> FakeBedrock:
    fake, _ = fake_bedrock_server
    fake.reset()
    return fake


BEDROCK_MODELS = {
    "claude": "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "profile": "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-v1:0",
    **{name: name for name in ("tools", "image", "guardrail", "length", "cache", "cut", "error-context")},
    **{f"error-{kind}": f"error-{kind}" for kind in bedrock_fakes.ERROR_STATUS},
    **{f"midstream-{kind}": f"midstream-{kind}" for kind in bedrock_fakes.STREAM_EXCEPTIONS},
    "titan": "amazon.titan-embed-text-v2:0",
    "cohere": "cohere.embed-english-v3",
}
"""Public model `br-<name>` → the upstream Bedrock model id (which picks the fake's behaviour)."""


@pytest.fixture(scope="session")
def bedrock_gateway(
    fake_bedrock_server: tuple[FakeBedrock, FakeServer], start_gateway: GatewayFactory, tmp_path_factory: Any
) -> GatewayProcess:
    """Four Bedrock providers on the fake: keys in the config, keys from the AWS environment
    variables (with a session token), a Bedrock API key, and a wrong secret."""
    _, server = fake_bedrock_server
    key_id, secret, _ = bedrock_fakes.CONFIG_KEYS
    keys = {"aws_access_key_id": key_id, "aws_secret_access_key": secret}
    base = {"type": "bedrock", "endpoint_url": server.url, "timeout": 5}
    providers = {
        "bedrock": {**base, "region": bedrock_fakes.REGION, **keys},
        "bedrock-env": base,
        "bedrock-key": {**base, "api_key": bedrock_fakes.API_KEY},
        "bedrock-wrong-secret": {**base, **keys, "aws_secret_access_key": "not-the-secret"},
    }
    models: dict[str, Any] = {
        f"br-{name}": {"deployments": [{"provider": "bedrock", "model": model}]}
        for name, model in BEDROCK_MODELS.items()
    }
    # A second public name per error model: a 401/403 opens the deployment's circuit at once.
    models.update({f"{name}-stream": group for name, group in models.items() if name.startswith("br-error-")})
    for provider in ("bedrock-env", "bedrock-key", "bedrock-wrong-secret"):
        models[provider] = {"deployments": [{"provider": provider, "model": BEDROCK_MODELS["claude"]}]}
    empty = tmp_path_factory.mktemp("aws") / "none"
    env_key, env_secret, env_token = bedrock_fakes.ENV_KEYS
    env = {
        "AWS_ACCESS_KEY_ID": env_key,
        "AWS_SECRET_ACCESS_KEY": env_secret,
        "AWS_SESSION_TOKEN": str(env_token),
        "AWS_REGION": bedrock_fakes.REGION,
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return start_gateway({"providers": providers, "models": models, "master_key": MASTER_KEY}, env)


@pytest.fixture
def bedrock_client(bedrock_gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{bedrock_gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=10)


CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium (`apt-get install -y chromium`; `.ci/run` installs it). Playwright is
pointed at it: it never downloads a browser of its own."""


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless Chromium driven by Playwright: skip loudly without one, fail under CI.

    Module-scoped on purpose: Playwright's sync API keeps an event loop marked as running
    in this thread until it stops, so a browser left open for the session breaks every
    asyncio test that the same worker runs after the browser tests."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not CHROMIUM.exists():
        message = f"browser tests need playwright and {CHROMIUM} (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {message}")
        pytest.skip(f"!!! SKIPPED: {message}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
