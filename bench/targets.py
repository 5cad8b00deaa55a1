"""The servers under test: how each is started, when it is ready, how it is stopped.

Each target runs as its own process group pinned to the server core with
``taskset``, logs to bench/results/logs/, and is stopped by signalling that
group only, so nothing else on the machine is touched.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import governed
from probe import Connection, ProbeError, chat_request

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV_BIN = ROOT / ".venv" / "bin"
LITELLM_BIN = HERE / ".venv-litellm" / "bin"

UPSTREAM = "upstream (direct)"
FLOOR = "passthrough (aiohttp)"
FLOOR_ASYNCIO = "floor (asyncio)"
FLOOR_ASGI = "floor (bare ASGI)"
FLOOR_HTTPX2 = "passthrough (httpx2)"
GATEWAY = "llm-gateway"
GATEWAY_ROUTING = "llm-gateway (routing)"
GATEWAY_BASELINE = "llm-gateway (baseline)"
GATEWAY_GUARDRAILS = "llm-gateway (guardrails)"
GATEWAY_CACHE = "llm-gateway (cache hit)"
GATEWAY_GOV_SQLITE = "llm-gateway (governance, SQLite)"
GATEWAY_GOV_REDIS = "llm-gateway (governance, Postgres+Redis)"
GATEWAY_TRACED = "llm-gateway (traced, sampled out)"
GATEWAY_QUIET = "llm-gateway (observability off)"
GATEWAY_TRACED_BASELINE = "llm-gateway (traced, sampled out, baseline)"
GATEWAY_AIOHTTP = "llm-gateway (aiohttp client)"
GATEWAY_GOV_SQLITE_BASELINE = "llm-gateway (governance, SQLite, baseline)"
GATEWAY_GOV_REDIS_BASELINE = "llm-gateway (governance, Postgres+Redis, baseline)"
BASELINES = (
    GATEWAY_BASELINE,
    GATEWAY_GOV_SQLITE_BASELINE,
    GATEWAY_GOV_REDIS_BASELINE,
    GATEWAY_TRACED_BASELINE,
)
"""Targets that run `run.py --baseline REF`'s checkout; with none named, the plain one is added."""
BASELINE_SRC = "BENCH_BASELINE_SRC"
"""The `src` folder of another checkout (`run.py --baseline REF` makes one) for the baseline."""
LITELLM = "litellm"
FLOOR_ASGI_GRANIAN = "floor (bare ASGI, granian)"
GATEWAY_GRANIAN = "llm-gateway (granian)"
GRANIAN = (
    str(VENV_BIN / "granian"), "--interface", "asgi", "--loop", "uvloop", "--http", "1", "--no-ws",
    "--workers", "1", "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning",
)  # fmt: skip
"""Granian (a Rust HTTP server) in place of uvicorn, for the server comparison of
docs/performance.md; not a dependency: `.venv/bin/pip install granian`."""


@dataclass(frozen=True)
class Target:
    """A server under test, as a command line whose ``{port}`` is filled in at start."""

    name: str
    slug: str
    command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    is_mock: bool = False
    startup_s: float = 60.0
    virtual_key: bool = False
    """Send every request with a virtual key made through the admin API once it is up."""


Builder = Callable[[str, str], "Target"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


MOCK_COMMAND = (str(VENV_BIN / "python"), str(HERE / "mock_upstream.py"), "--port", "{port}")


def shared_mock() -> Target:
    """The mock upstream every proxy forwards to; it runs on the load core for the whole run."""
    return Target("mock upstream", "mock-upstream", MOCK_COMMAND, is_mock=True)


def _mock(upstream_v1: str, api_key: str) -> Target:
    # A second instance, on the server core: the ceiling that no proxy can pass.
    return Target(UPSTREAM, "upstream", MOCK_COMMAND, is_mock=True)


def _passthrough(client: str) -> Builder:
    def build(upstream_v1: str, api_key: str) -> Target:
        command = (
            str(VENV_BIN / "python"),
            str(HERE / "passthrough.py"),
            "--client",
            client,
            "--upstream",
            upstream_v1,
            "--port",
            "{port}",
        )
        return Target(f"passthrough ({client})", f"passthrough-{client}", command)

    return build


def _floor(name: str, slug: str, script: str) -> Builder:
    """One of the two floors below any framework (bench/floor_asyncio.py, bench/floor_asgi.py)."""

    def build(upstream_v1: str, api_key: str) -> Target:
        python, path = str(VENV_BIN / "python"), str(HERE / script)
        command = (python, path, "--upstream", upstream_v1, "--port", "{port}")
        return Target(name, slug, command)

    return build


def _gateway(
    name: str, slug: str, config: str, storage: Callable[[], dict[str, str]] | None = None
) -> Builder:
    """llm-gateway on `config`; with `storage` (fresh storage, as settings), a governance
    target whose requests carry a virtual key."""

    def build(upstream_v1: str, api_key: str) -> Target:
        command = (
            str(VENV_BIN / "llm-gateway"), "serve", "--config", str(HERE / config),
            "--host", "127.0.0.1", "--port", "{port}", "--workers", "1",
        )  # fmt: skip
        env = {"BENCH_UPSTREAM_URL": upstream_v1, "BENCH_API_KEY": api_key}
        if storage is not None:
            env.update(storage())
        return Target(name, slug, command, env=env, virtual_key=storage is not None)

    return build


def _floor_granian(upstream_v1: str, api_key: str) -> Target:
    """The bare-ASGI floor's app on granian: against `floor (bare ASGI)`, granian vs uvicorn."""
    command = (*GRANIAN, "--working-dir", str(HERE), "--factory", "floor_asgi:from_env")
    return Target(FLOOR_ASGI_GRANIAN, "floor-asgi-granian", command, env={"BENCH_UPSTREAM_URL": upstream_v1})


def _gateway_granian(upstream_v1: str, api_key: str) -> Target:
    """The gateway's app (`llm_gateway.main:app`, bench/gateway.yaml) on granian instead of
    uvicorn: without `GatewayProtocol`'s deadlines, connection limit and coalesced writes."""
    env = {
        "BENCH_UPSTREAM_URL": upstream_v1,
        "BENCH_API_KEY": api_key,
        "LLM_GATEWAY_CONFIG": str(HERE / "gateway.yaml"),
    }
    return Target(GATEWAY_GRANIAN, "llm-gateway-granian", (*GRANIAN, "llm_gateway.main:app"), env=env)


def _gateway_baseline(
    name: str, slug: str, config: str, storage: Callable[[], dict[str, str]] | None = None
) -> Builder:
    """llm-gateway as of another commit, in the same venv, with the same config as its
    target: the before-and-after of a change, measured side by side in one run."""

    def build(upstream_v1: str, api_key: str) -> Target:
        src = os.environ.get(BASELINE_SRC)
        if not src:
            raise ValueError(f"{name} needs {BASELINE_SRC} (use run.py --baseline REF)")
        command = (
            str(VENV_BIN / "python"), "-m", "llm_gateway.cli", "serve", "--config", str(HERE / config),
            "--host", "127.0.0.1", "--port", "{port}", "--workers", "1",
        )  # fmt: skip
        env = {"BENCH_UPSTREAM_URL": upstream_v1, "BENCH_API_KEY": api_key, "PYTHONPATH": src}
        if storage is not None:
            env.update(storage())
        return Target(name, slug, command, env=env, virtual_key=storage is not None)

    return build


def _litellm(upstream_v1: str, api_key: str) -> Target:
    command = (
        str(LITELLM_BIN / "litellm"),
        "--config",
        str(HERE / "litellm.yaml"),
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--num_workers",
        "1",
    )
    env = {
        "BENCH_UPSTREAM_URL": upstream_v1,
        "LITELLM_MASTER_KEY": api_key,
        # No network here: use the cost map shipped in the package, log errors only.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
    }
    return Target(LITELLM, "litellm", command, env=env, startup_s=180.0)


BUILDERS: dict[str, Builder] = {
    UPSTREAM: _mock,
    FLOOR_ASYNCIO: _floor(FLOOR_ASYNCIO, "floor-asyncio", "floor_asyncio.py"),
    FLOOR_ASGI: _floor(FLOOR_ASGI, "floor-asgi", "floor_asgi.py"),
    FLOOR_ASGI_GRANIAN: _floor_granian,
    GATEWAY_GRANIAN: _gateway_granian,
    FLOOR: _passthrough("aiohttp"),
    FLOOR_HTTPX2: _passthrough("httpx2"),
    GATEWAY: _gateway(GATEWAY, "llm-gateway", "gateway.yaml"),
    LITELLM: _litellm,
    GATEWAY_ROUTING: _gateway(GATEWAY_ROUTING, "llm-gateway-routing", "gateway-routing.yaml"),
    GATEWAY_BASELINE: _gateway_baseline(GATEWAY_BASELINE, "llm-gateway-baseline", "gateway.yaml"),
    GATEWAY_GOV_SQLITE_BASELINE: _gateway_baseline(
        GATEWAY_GOV_SQLITE_BASELINE,
        "llm-gateway-gov-sqlite-baseline",
        "gateway-governance.yaml",
        governed.sqlite_env,
    ),
    GATEWAY_GOV_REDIS_BASELINE: _gateway_baseline(
        GATEWAY_GOV_REDIS_BASELINE,
        "llm-gateway-gov-redis-baseline",
        "gateway-governance-redis.yaml",
        governed.postgres_redis_env,
    ),
    GATEWAY_GUARDRAILS: _gateway(GATEWAY_GUARDRAILS, "llm-gateway-guardrails", "gateway-guardrails.yaml"),
    GATEWAY_CACHE: _gateway(GATEWAY_CACHE, "llm-gateway-cache", "gateway-cache.yaml"),
    GATEWAY_GOV_SQLITE: _gateway(
        GATEWAY_GOV_SQLITE, "llm-gateway-gov-sqlite", "gateway-governance.yaml", governed.sqlite_env
    ),
    GATEWAY_GOV_REDIS: _gateway(
        GATEWAY_GOV_REDIS,
        "llm-gateway-gov-redis",
        "gateway-governance-redis.yaml",
        governed.baseline_postgres_redis_env,
    ),
    GATEWAY_TRACED: _gateway(GATEWAY_TRACED, "llm-gateway-traced", "gateway-traced.yaml"),
    GATEWAY_QUIET: _gateway(GATEWAY_QUIET, "llm-gateway-quiet", "gateway-quiet.yaml"),
    GATEWAY_TRACED_BASELINE: _gateway_baseline(
        GATEWAY_TRACED_BASELINE, "llm-gateway-traced-baseline", "gateway-traced.yaml"
    ),
    GATEWAY_AIOHTTP: _gateway(GATEWAY_AIOHTTP, "llm-gateway-aiohttp", "gateway-aiohttp.yaml"),
}
# What a plain run measures: the references, the gateway as configured for the benchmark,
# and the governed gateway that issue #14's targets are about. The other feature variants
# (routing, guardrails, cache hit, Postgres+Redis, traced, observability off) are asked for
# by name.
DEFAULT = (UPSTREAM, FLOOR_ASYNCIO, FLOOR_ASGI, FLOOR, FLOOR_HTTPX2, GATEWAY, GATEWAY_GOV_SQLITE, LITELLM)


def build(name: str, upstream_port: int, api_key: str) -> Target:
    """The Target called ``name``, pointed at the mock upstream on ``upstream_port``."""
    if name not in BUILDERS:
        raise ValueError(f"unknown target {name!r}; known: {', '.join(BUILDERS)}")
    return BUILDERS[name](f"http://127.0.0.1:{upstream_port}/v1", api_key)


def ensure_litellm(allow_setup: bool) -> str | None:
    """None when LiteLLM can run; else why it is skipped."""
    if (LITELLM_BIN / "litellm").exists():
        return None
    if not allow_setup:
        return "skipped: bench/.venv-litellm is missing (run bench/litellm_setup.sh)"
    print("bench/.venv-litellm is missing: running bench/litellm_setup.sh (needs PyPI)", file=sys.stderr)
    try:
        subprocess.run(["bash", str(HERE / "litellm_setup.sh")], check=True, timeout=1200)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        return f"skipped: bench/litellm_setup.sh failed ({error})"
    return None


@dataclass
class Running:
    """A started target: its PID (the root of the tree that procstat reads), its port, and
    the API key its requests carry (a virtual key for a governance target)."""

    target: Target
    pid: int
    port: int
    api_key: str = ""


class StartError(RuntimeError):
    """The target exited or never answered a chat request within its startup time."""


@contextmanager
def running(target: Target, *, core: int | None, api_key: str, log_dir: Path) -> Iterator[Running]:
    """Start ``target`` pinned to ``core``, wait until it answers a chat request, stop it after."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in target.command]
    if core is not None:
        command = ["taskset", "-c", str(core), *command]
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{target.slug}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **target.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _wait_ready(process, port, api_key, target.startup_s, log_path)
            key = governed.create_key(port, api_key) if target.virtual_key else api_key
            yield Running(target, process.pid, port, key)
        finally:
            _stop(process)


def _wait_ready(process: subprocess.Popen[bytes], port: int, api_key: str, limit_s: float, log: Path) -> None:
    request = chat_request(port, api_key, stream=False)
    deadline = time.monotonic() + limit_s
    last_error = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartError(f"exited with {process.returncode}; see {log}")
        connection = Connection(port, timeout_s=5.0)
        try:
            connection.exchange(request)
            return
        except (OSError, ProbeError) as error:
            last_error = str(error)
        finally:
            connection.close()
        time.sleep(0.25)
    raise StartError(f"not ready after {limit_s:.0f}s ({last_error}); see {log}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the target's own process group, then SIGKILL it if it lingers."""
    for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
