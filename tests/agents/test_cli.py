"""Coding-agent conformance: the real Claude Code and Codex CLIs through a real gateway.

Each CLI (pinned in agents/package-lock.json, installed by `make agents`) is asked to write
a file; the scripted upstream (tests/fakes/scripted.py) answers turn 1 with a call of the
CLI's own shell tool and turn 2, once the tool result is back, with a final text. The CLI
reaches the gateway through a recording proxy (tests/fakes/recorder.py), so the test sees
every request the CLI sent and every status it got. Each CLI runs against an upstream of
ANOTHER provider's wire format (Claude Code → OpenAI chat completions, Codex → Anthropic
Messages, and OpenAI chat completions) and of its own (Claude Code → Anthropic, Codex →
the Responses API natively).

Passing means: the CLI exits 0, the file holds what the shell tool wrote, the gateway
answered no 4xx/5xx, the upstream saw two turns with the tool result in the second, and
the transcript (what the CLI sent, what the gateway forwarded) matches its golden file in
tests/agents/golden/ by structure. Telemetry, auto-update, error reporting and every other
non-essential network call of the CLIs are switched off.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agents.transcript import check_golden, exchange_shape
from tests.conftest import MASTER_KEY, UPSTREAM_KEY, GatewayFactory, require_agent_cli, running
from tests.fakes.recorder import RecordingProxy
from tests.fakes.scripted import CALL_IDS, FILE_CONTENT, FINAL_TEXT, OUTPUT_FILE, ScriptedAgentUpstream
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess

PROMPT = f"Create {OUTPUT_FILE} with a shell command."
RUN_TIMEOUT = 120
MODELS = {"via-chat": "chat", "via-anthropic": "claude", "via-responses": "native"}
"""Public model → the provider (one wire format of the scripted upstream) it is served by."""


@pytest.fixture(scope="module")
def proxy(
    scripted_agent_server: tuple[ScriptedAgentUpstream, FakeServer], start_gateway: GatewayFactory
) -> Iterator[tuple[RecordingProxy, FakeServer, GatewayProcess]]:
    url = scripted_agent_server[1].url
    base = {"api_key": UPSTREAM_KEY, "timeout": 30}
    providers = {
        "chat": {"type": "openai", "base_url": f"{url}/v1", **base},
        "native": {"type": "openai", "base_url": f"{url}/v1", "responses_api": "native", **base},
        "claude": {"type": "anthropic", "base_url": url, **base},
    }
    models = {name: {"deployments": [{"provider": p, "model": "scripted"}]} for name, p in MODELS.items()}
    gateway = start_gateway({"providers": providers, "models": models, "master_key": MASTER_KEY})
    with running(RecordingProxy(gateway.url)) as (recorder, server):
        yield recorder, server, gateway


def quiet_env(home: Path) -> dict[str, str]:
    """A bare environment: a temp HOME, no inherited credentials, no telemetry or updates."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "NO_COLOR": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }


def claude_command(gateway_url: str, model: str, home: Path) -> tuple[list[str], dict[str, str]]:
    # Both ways of giving the key: x-api-key natively, Authorization: Bearer on the other.
    credential = "ANTHROPIC_API_KEY" if model == "via-anthropic" else "ANTHROPIC_AUTH_TOKEN"
    env = quiet_env(home) | {
        "ANTHROPIC_BASE_URL": gateway_url,
        credential: MASTER_KEY,
        "ANTHROPIC_MODEL": model,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
        "ANTHROPIC_SMALL_FAST_MODEL": model,
    }
    # --allowedTools rather than --dangerously-skip-permissions, which refuses to run as root.
    command = [require_agent_cli("claude"), "-p", PROMPT, "--allowedTools", "Bash", "--max-turns", "4"]
    return [*command, "--model", model, "--output-format", "json"], env


def codex_config(gateway_url: str, model: str, web_search: str = "disabled") -> str:
    # web_search is a built-in tool only a native Responses deployment can run: the gateway
    # refuses it (400 unsupported_tool) on translated models, so it is switched off here.
    return f"""
model = "{model}"
model_provider = "gateway"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false
web_search = "{web_search}"

[analytics]
enabled = false

[feedback]
enabled = false

[model_providers.gateway]
name = "llm-gateway"
base_url = "{gateway_url}/v1"
env_key = "LLM_GATEWAY_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
"""


def codex_command(
    gateway_url: str, model: str, home: Path, web_search: str = "disabled"
) -> tuple[list[str], dict[str, str]]:
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    (codex_home / "config.toml").write_text(codex_config(gateway_url, model, web_search))
    env = quiet_env(home) | {"CODEX_HOME": str(codex_home), "LLM_GATEWAY_KEY": MASTER_KEY}
    command = [require_agent_cli("codex"), "exec", "--skip-git-repo-check"]
    # The sandbox (bubblewrap) needs namespaces a CI container may not grant; the temp
    # working dir is all the agent touches.
    return [*command, "--dangerously-bypass-approvals-and-sandbox", PROMPT], env


def run_agent(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion, without a terminal or stdin (as in CI)."""
    return subprocess.run(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


COMMANDS = {"claude-code": claude_command, "codex": codex_command}
CASES = [
    ("claude-code", "via-chat", "/v1/chat/completions"),  # Anthropic Messages → OpenAI upstream
    ("claude-code", "via-anthropic", "/v1/messages"),  # its own format, natively
    ("codex", "via-anthropic", "/v1/messages"),  # Responses API → Anthropic upstream
    ("codex", "via-chat", "/v1/chat/completions"),  # Responses API → OpenAI chat completions
    ("codex", "via-responses", "/v1/responses"),  # its own format, natively
]


@pytest.mark.parametrize(("cli", "model", "upstream_path"), CASES)
def test_agent_completes_a_tool_loop(
    cli: str,
    model: str,
    upstream_path: str,
    proxy: tuple[RecordingProxy, FakeServer, GatewayProcess],
    scripted_agent: ScriptedAgentUpstream,
    tmp_path: Path,
) -> None:
    recorder, server, gateway = proxy
    recorder.reset()
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    command, env = COMMANDS[cli](server.url, model, home)
    run = run_agent(command, env, work)
    output = f"stdout:\n{run.stdout[-4000:]}\nstderr:\n{run.stderr[-4000:]}"
    errors = [(e.method, e.path, e.status, e.answer[:500]) for e in recorder.errors()]
    assert errors == [], f"the gateway refused what {cli} sent:\n{output}"
    assert run.returncode == 0, output
    assert "Traceback" not in gateway.log()
    assert (work / OUTPUT_FILE).read_text().strip() == FILE_CONTENT
    assert FINAL_TEXT in run.stdout

    turns = [r for r in scripted_agent.requests if r.path == upstream_path]
    assert len(turns) == 2, [r.path for r in scripted_agent.requests]
    # The result reached the upstream as the answer to the very call it made, ids translated back.
    assert tool_result_ids(turns[0].body) == []
    assert tool_result_ids(turns[1].body) == [CALL_IDS[upstream_path]]
    transcript: dict[str, Any] = {
        "client": [exchange_shape(e.path, e.headers, e.body, e.status) for e in recorder.exchanges],
        "upstream": [exchange_shape(r.path, r.headers, r.body) for r in scripted_agent.requests],
    }
    check_golden(f"{cli}--{model}", transcript)


def test_codex_web_search_on_a_translated_model_is_a_clear_refusal(
    proxy: tuple[RecordingProxy, FakeServer, GatewayProcess],
    scripted_agent: ScriptedAgentUpstream,
    tmp_path: Path,
) -> None:
    """Codex's default config offers `web_search`, which only a native deployment can run:
    the gateway refuses it naming the tool (docs/agents.md says to switch it off), Codex
    shows that, and nothing reaches the upstream."""
    recorder, server, _ = proxy
    recorder.reset()
    command, env = codex_command(server.url, "via-anthropic", tmp_path, web_search="live")
    run = run_agent(command, env, tmp_path)
    assert run.returncode != 0
    assert "web_search" in run.stderr and "unsupported_tool" in run.stderr
    assert [(e.path, e.status) for e in recorder.errors()] == [("/v1/responses", 400)]
    assert scripted_agent.requests == []


def tool_result_ids(body: dict[str, Any]) -> list[str]:
    """The call ids the request's tool results answer, in whichever of the three formats."""
    ids: list[str] = []
    for message in body.get("messages", []):
        if message.get("role") == "tool":
            ids.append(message["tool_call_id"])
        content = message.get("content")
        if isinstance(content, list):
            ids += [b["tool_use_id"] for b in content if b.get("type") == "tool_result"]
    items = body.get("input")
    if isinstance(items, list):
        ids += [i["call_id"] for i in items if i.get("type") == "function_call_output"]
    return ids
