"""The `llm-gateway` command and its config, as a user meets them: real processes, real files.

A bad config stops `check-config` and `serve` alike with one line naming the file, the
key path and the problem; a good one serves, however it is started.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import openai
import orjson
import pytest
import yaml
from aiohttp import web

from tests.conftest import MASTER_KEY, UPSTREAM_KEY, GatewayFactory, openai_config
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess, free_port, run_cli

# Variables the developer's shell may have set that would change what these tests mean.
CLEAN_ENV = {
    "OPENAI_API_KEY": "",
    "OPENAI_BASE_URL": "",
    "DEFAULT_MODEL": "",
    "GATEWAY_MASTER_KEY": "",
    "ENVIRONMENT": "",
    "LLM_GATEWAY_CONFIG": "",
}
MOCK_ONLY = "providers: {offline: {type: mock}}\nmodels: {echo: {deployments: [{provider: offline}]}}\n"

BAD_CONFIGS: dict[str, tuple[str | None, dict[str, str], list[str]]] = {
    # name: (file text, or None for no file; extra env; what the one line must say)
    "unknown-top-level-key": (MOCK_ONLY + "bogus: 1\n", {}, ["at bogus: unknown key"]),
    "unknown-key-in-provider": (
        "providers: {offline: {type: mock, colour: red}}\nmodels: {}\n",
        {},
        ["at providers.offline.colour: unknown key"],
    ),
    "unknown-key-in-deployment": (
        "providers: {offline: {type: mock}}\nmodels: {echo: {deployments: [{provider: offline, wieght: 2}]}}",
        {},
        ["at models.echo.deployments[0].wieght: unknown key"],
    ),
    "wrong-type": (
        "providers: {offline: {type: mock, timeout: soon}}\nmodels: {}\n",
        {},
        ["at providers.offline.timeout:", "number"],
    ),
    "unknown-provider-type": (
        "providers: {p: {type: nonesuch}}\nmodels: {}\n",
        {},
        ["at providers.p.type: unknown provider type 'nonesuch'"],
    ),
    "undefined-provider": (
        "providers: {offline: {type: mock}}\nmodels: {echo: {deployments: [{provider: ghost}]}}\n",
        {},
        ["models.echo.deployments[0].provider: unknown provider 'ghost'"],
    ),
    "default-model-not-in-models": (
        MOCK_ONLY + "default_model: nope\n",
        {},
        ["default_model: 'nope' is not one of models"],
    ),
    "unset-variable": (
        "providers: {up: {type: openai, api_key: '${LLM_GATEWAY_TEST_UNSET_KEY}'}}\nmodels: {}\n",
        {},
        ["at providers.up.api_key: environment variable LLM_GATEWAY_TEST_UNSET_KEY is not set"],
    ),
    "bad-environment": (
        MOCK_ONLY,
        {"ENVIRONMENT": "production"},
        ["ENVIRONMENT='production' must be one of"],
    ),
    "yaml-syntax": (
        "providers:\n  p:\n    type: mock\n   bad: indent\n",
        {},
        ["invalid YAML at line 4, column 4"],
    ),
    "duplicate-key": (MOCK_ONLY + "providers: {}\n", {}, ["invalid YAML at line 3, column 1: duplicate key"]),
    "missing-file": (None, {}, ["cannot read file (No such file or directory)"]),
    "jwt-without-master-key": (
        MOCK_ONLY
        + "auth: {jwt: {issuer: https://idp.test, audience: gw, jwks_url: https://idp.test/jwks}}\n",
        {},
        ["auth.jwt: JWT callers are governed", "set master_key"],
    ),
    "not-a-mapping": ("- providers\n- models\n", {}, ["the top level must be a mapping"]),
}


def assert_one_clear_line(result: Any, path: Path, expected: list[str]) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith(f"config error in {path}: "), output
    for part in expected:
        assert part in lines[0]


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_a_bad_config_stops_check_config_and_serve_with_one_line(tmp_path: Path, case: str) -> None:
    text, env, expected = BAD_CONFIGS[case]
    path = tmp_path / "gateway.yaml"
    if text is not None:
        path.write_text(text)
    env = {**CLEAN_ENV, **env}
    commands = [
        ("check-config", "--config", str(path)),
        ("serve", "--config", str(path), "--port", str(free_port())),
    ]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda args: run_cli(*args, env=env, cwd=str(tmp_path)), commands))
    for result in results:
        assert_one_clear_line(result, path, expected)


UNSET_AWS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)
NO_AWS = {
    **dict.fromkeys(UNSET_AWS, ""),  # empty counts as unset
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/aws/config",
    "BOTO_CONFIG": "/nonexistent/boto",
}
# Values `serve` once accepted at load and then tripped over while starting (a traceback
# from logging, uvicorn, redis-py or the first request): now refused at load by both.
REJECTED_AT_LOAD: dict[str, tuple[str, dict[str, str], list[str]]] = {
    "log-level": (MOCK_ONLY + "server: {log_level: loud}\n", {}, ["at server.log_level: Input should be"]),
    "host": (MOCK_ONLY + "server: {host: 'not a host!'}\n", {}, ["at server.host:", "not an IP address"]),
    "bracketed-ipv6": (MOCK_ONLY + "server: {host: '[::1]'}\n", {}, ["at server.host:", "without brackets"]),
    "port": (MOCK_ONLY + "server: {port: 65536}\n", {}, ["at server.port:", "65535"]),
    "workers": (
        MOCK_ONLY + "server: {workers: 0}\n",
        {},
        ["at server.workers:", "greater than or equal to 1"],
    ),
    "infinite-drain": (
        MOCK_ONLY + "server: {drain_timeout: .inf}\n",
        {},
        ["at server.drain_timeout:", "finite"],
    ),
    "redis-scheme": (MOCK_ONLY + "redis_url: http://127.0.0.1:6379\n", {}, ["at redis_url:", "redis://"]),
    "redis-port": (MOCK_ONLY + "redis_url: 'redis://:pw@127.0.0.1:nope/0'\n", {}, ["at redis_url:", "Port"]),
    "redis-option": (
        MOCK_ONLY + "redis_url: 'redis://127.0.0.1/0?colour=red'\n",
        {},
        ["at redis_url:", "colour"],
    ),
    "base-url": (
        "providers: {up: {type: openai, base_url: 'api.example.com/v1'}}\nmodels: {}\n",
        {},
        ["at providers.up.base_url: must be an absolute URL starting with http://, https://"],
    ),
    "hook-not-importable": (
        MOCK_ONLY + "hooks: ['no_such_package.hooks:Hook']\n",
        {},
        ["at hooks: cannot load 'no_such_package.hooks:Hook'"],
    ),
    "bedrock-without-credentials": (
        "providers: {br: {type: bedrock, region: eu-west-1}}\nmodels: {}\n",
        NO_AWS,
        ["at providers.br: no AWS credentials found: set aws_access_key_id"],
    ),
}


@pytest.mark.parametrize("case", list(REJECTED_AT_LOAD))
def test_what_serve_would_reject_check_config_rejects_with_the_same_line(tmp_path: Path, case: str) -> None:
    text, env, expected = REJECTED_AT_LOAD[case]
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    commands = [
        ("check-config", "--config", str(path)),
        ("serve", "--config", str(path), "--port", str(free_port())),
    ]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda args: run_cli(*args, env={**CLEAN_ENV, **env}), commands))
    for result in results:
        assert result.returncode == 2, result.stdout + result.stderr
        assert_one_clear_line(result, path, expected)
    assert results[0].stderr == results[1].stderr
    assert "pw@" not in results[0].stderr  # a URL's password is never echoed


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (("--log-level", "loud"), "at server.log_level: Input should be"),
        (("--port", "http"), "at server.port: Input should be a valid integer"),
        (("--port", "-1"), "at server.port: Input should be greater than or equal to 0"),
        (("--workers", "0"), "at server.workers: Input should be greater than or equal to 1"),
        (("--host", "bad host"), "at server.host:"),
    ],
)
def test_serve_flags_are_validated_like_the_file(
    tmp_path: Path, flags: tuple[str, str], expected: str
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(MOCK_ONLY)
    result = run_cli("serve", "--config", str(path), *flags, env=CLEAN_ENV)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert output.strip().startswith(f"config error in command-line options: {expected}"), output
    assert len(output.strip().splitlines()) == 1, output


def test_log_level_names_are_not_case_sensitive(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(MOCK_ONLY + "server: {log_level: WARNING}\n")
    result = run_cli("check-config", "--config", str(path), env=CLEAN_ENV)
    assert result.returncode == 0, result.stderr


def test_check_config_accepts_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(MOCK_ONLY + "default_model: echo\n")
    result = run_cli("check-config", "--config", str(path), env=CLEAN_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "config OK: 1 provider(s), 1 model(s)"


def test_check_config_reads_llm_gateway_config(tmp_path: Path) -> None:
    path = tmp_path / "from-env.yaml"
    path.write_text(MOCK_ONLY + "bogus: 1\n")
    result = run_cli("check-config", env={**CLEAN_ENV, "LLM_GATEWAY_CONFIG": str(path)})
    assert_one_clear_line(result, path, ["at bogus: unknown key"])


def test_an_empty_llm_gateway_config_means_the_embedded_default() -> None:
    result = run_cli("check-config", env=CLEAN_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "config OK: 1 provider(s), 1 model(s)"


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "llm-gateway"
    assert script.exists()
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert result.stdout.startswith("llm-gateway ")


STAGED = {
    "providers": {
        "fake": {"type": "openai", "base_url": "${STAGED_URL}", "api_key": "${STAGED_KEY}", "timeout": 5},
    },
    "models": {"staged": {"deployments": [{"provider": "fake", "model": "staged-upstream"}]}},
}


def test_environment_staging_reads_the_env_file_beside_the_config(
    fake_openai: tuple[FakeOpenAI, FakeServer], tmp_path: Path
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(STAGED))
    (tmp_path / ".env.staging").write_text(
        f"STAGED_URL={fake_openai[1].url}/v1\nSTAGED_KEY=sk-staging-file\n"
    )
    staging = run_cli("check-config", "--config", str(path), env={**CLEAN_ENV, "ENVIRONMENT": "staging"})
    assert staging.returncode == 0, staging.stderr
    plain = run_cli("check-config", "--config", str(path), env=CLEAN_ENV)
    assert_one_clear_line(
        plain, path, ["at providers.fake.api_key: environment variable STAGED_KEY is not set"]
    )


class StagedGateway(GatewayProcess):
    """`serve` with ENVIRONMENT=staging and a `.env.staging` written beside the config file."""

    def __init__(self, env_file: str) -> None:
        super().__init__(STAGED, {**CLEAN_ENV, "ENVIRONMENT": "staging", "STAGED_KEY": "sk-real-env-wins"})
        (self.dir / ".env.staging").write_text(env_file)


@pytest.fixture(scope="module")
def staged_gateway(fake_openai: tuple[FakeOpenAI, FakeServer]) -> Iterator[GatewayProcess]:
    gateway = StagedGateway(f"STAGED_URL={fake_openai[1].url}/v1\nSTAGED_KEY=sk-from-the-file\n").start()
    yield gateway
    gateway.stop()


def test_a_served_gateway_takes_variables_from_the_env_file(
    staged_gateway: GatewayProcess, fake: FakeOpenAI
) -> None:
    client = openai.OpenAI(base_url=f"{staged_gateway.url}/v1", api_key="unused", max_retries=0, timeout=10)
    completion = client.chat.completions.create(model="staged", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content == "echo: hi"
    # The URL came from .env.staging; the key from the real environment, which wins.
    assert fake.last().body["model"] == "staged-upstream"
    assert fake.last().headers["Authorization"] == "Bearer sk-real-env-wins"


class UvicornGateway(GatewayProcess):
    """`python -m uvicorn llm_gateway.main:app`, configured only through LLM_GATEWAY_CONFIG."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config, CLEAN_ENV)
        self.env["LLM_GATEWAY_CONFIG"] = str(self.config_path)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "uvicorn", "llm_gateway.main:app", "--port", str(self.port)]


class WorkersGateway(GatewayProcess):
    """`llm-gateway serve --workers 2 --log-level warning`."""

    def command(self) -> list[str]:
        return [*super().command(), "--workers", "2", "--log-level", "warning"]


@pytest.fixture(scope="module")
def uvicorn_gateway(fake_openai: tuple[FakeOpenAI, FakeServer]) -> Iterator[GatewayProcess]:
    config = openai_config(fake_openai[1].url, {"gpt-test": "upstream-gpt"}, master_key=MASTER_KEY)
    gateway = UvicornGateway(config).start()
    yield gateway
    gateway.stop()


def test_uvicorn_main_app_serves_the_config_it_is_pointed_at(
    uvicorn_gateway: GatewayProcess, fake: FakeOpenAI
) -> None:
    client = openai.OpenAI(
        base_url=f"{uvicorn_gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=10
    )
    assert [m.id for m in client.models.list()] == ["gpt-test"]
    completion = client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hey"}]
    )
    assert completion.choices[0].message.content == "echo: hey"
    assert fake.last().body["model"] == "upstream-gpt"
    keyless = httpx2.get(f"{uvicorn_gateway.url}/v1/models", timeout=10)
    assert keyless.status_code == 401


def test_uvicorn_main_app_with_a_bad_config_exits_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(MOCK_ONLY + "bogus: 1\n")
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "llm_gateway.main:app", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **CLEAN_ENV, "LLM_GATEWAY_CONFIG": str(path)},
    )
    assert_one_clear_line(result, path, ["at bogus: unknown key"])


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        listing = task / "children"
        if listing.exists():
            found += [int(p) for p in listing.read_text().split()]
    return found


def test_serve_with_two_workers_serves_requests(fake_openai: tuple[FakeOpenAI, FakeServer]) -> None:
    config = openai_config(fake_openai[1].url, {"gpt-test": "upstream-gpt"})
    gateway = WorkersGateway(config, CLEAN_ENV).start()
    try:
        with httpx2.Client(base_url=gateway.url, timeout=10) as http:
            for i in range(8):
                response = http.post(
                    "/v1/chat/completions",
                    json={"model": "gpt-test", "messages": [{"role": "user", "content": f"n{i}"}]},
                    headers={"connection": "close"},  # a new connection each time, so both workers get some
                )
                assert response.status_code == 200
                assert response.json()["choices"][0]["message"]["content"] == f"echo: n{i}"
        assert gateway.process is not None
        if Path(f"/proc/{gateway.process.pid}/task").exists():
            assert len(children(gateway.process.pid)) >= 2, gateway.log()
        assert " INFO " not in gateway.log(), "--log-level reaches every worker"
    finally:
        assert gateway.stop() is not None


# An upstream that echoes our credential back in every error, as real ones sometimes do
# ("Incorrect API key provided: sk-..."). Whatever it says must not reach a log line.
def leaky_app() -> web.Application:
    async def chat(request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        auth = request.headers.get("authorization", "")
        model = body["model"]
        if model == "leak-401":
            error = {"error": {"message": f"Incorrect API key provided: {auth}", "code": "invalid_api_key"}}
            return web.json_response(error, status=401)
        if model == "leak-500":
            return web.Response(status=500, text=f"internal error while serving {auth}")
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": []}
        await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        await response.write(
            b"data: " + orjson.dumps({"error": {"message": f"exploded for {auth}"}}) + b"\n\n"
        )
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


@pytest.fixture(scope="module")
def leaky_upstream() -> Iterator[FakeServer]:
    server = FakeServer(leaky_app).start()
    yield server
    server.stop()


def test_the_upstream_key_never_reaches_the_log(
    fake_openai: tuple[FakeOpenAI, FakeServer], leaky_upstream: FakeServer, start_gateway: GatewayFactory
) -> None:
    models = {"e401": "error-401", "e500": "error-500", "e429": "error-429", "ok": "upstream-gpt"}
    config = openai_config(fake_openai[1].url, models)
    config["providers"]["leaky"] = {
        "type": "openai",
        "base_url": f"{leaky_upstream.url}/v1",
        "api_key": UPSTREAM_KEY,
    }
    for name in ("leak-401", "leak-500", "leak-stream"):
        config["models"][name] = {"deployments": [{"provider": "leaky"}]}
    config["server"] = {"log_level": "debug", "access_log": True}
    gateway = start_gateway(config, CLEAN_ENV)
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0, timeout=10)
    hi = [{"role": "user", "content": "hi"}]
    for model in ("e401", "e500", "e429", "leak-401", "leak-500"):
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model=model, messages=hi)  # type: ignore[arg-type]
        assert UPSTREAM_KEY not in caught.value.response.text
    with pytest.raises(openai.APIError) as streamed:
        for _ in client.chat.completions.create(model="leak-stream", messages=hi, stream=True):  # type: ignore[arg-type]
            pass
    assert UPSTREAM_KEY not in str(streamed.value)
    client.chat.completions.create(model="ok", messages=hi)  # type: ignore[arg-type]
    assert gateway.stop() is not None
    log = gateway.log()
    assert UPSTREAM_KEY not in log
    assert "[redacted]" in log, "the upstream's words should reach the log, redacted:\n" + log
    assert "POST /v1/chat/completions" in log  # the access log was on: the test saw what it should


def test_drain_timeout_zero_stops_at_once(
    fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory
) -> None:
    """`server.drain_timeout: 0` means no drain, not "wait for streams however long they run"."""
    config = openai_config(fake_openai[1].url, {"drip": "drip-50"})  # a minute-long stream
    config["server"] = {"drain_timeout": 0}
    gateway = start_gateway(config, CLEAN_ENV)
    started = threading.Event()

    def stream() -> None:
        body = {"model": "drip", "messages": [{"role": "user", "content": "x"}], "stream": True}
        with (
            contextlib.suppress(httpx2.HTTPError),
            httpx2.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=30) as response,
        ):
            for _ in response.iter_lines():
                started.set()

    reader = threading.Thread(target=stream, daemon=True)
    reader.start()
    assert started.wait(10)
    gateway.terminate()
    assert gateway.process is not None
    assert gateway.process.wait(timeout=8) in (0, -15), gateway.log()
    reader.join(timeout=5)
    assert not reader.is_alive()
