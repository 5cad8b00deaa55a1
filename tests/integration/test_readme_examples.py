"""The README's curl examples, run as written against the embedded default (the mock model)."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.conftest import GatewayFactory

README = Path(__file__).resolve().parents[2] / "README.md"


def curl_commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)
    commands = [
        " ".join(command.split("\\\n"))
        for block in blocks
        for command in re.split(r"\n(?=\S)", block.strip())
        if command.startswith("curl ")
    ]
    assert commands, "the README has no curl examples"
    return commands


@pytest.mark.parametrize("command", curl_commands())
def test_curl_example_works(command: str, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(None, {"OPENAI_API_KEY": "", "GATEWAY_MASTER_KEY": ""})
    args = shlex.split(command.replace("http://127.0.0.1:8000", gateway.url))
    result = subprocess.run([*args, "--silent", "--show-error", "--fail-with-body"], capture_output=True,
                            text=True, timeout=30)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Hello" in result.stdout
