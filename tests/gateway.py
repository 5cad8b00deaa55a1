"""The gateway under test as a real server process, configured by a dict written to YAML."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import httpx2 as httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM_CLIENT: Literal["native", "aiohttp"] = (
    "aiohttp" if os.environ.get("LLM_GATEWAY_TEST_UPSTREAM_CLIENT") == "aiohttp" else "native"
)
"""The upstream client every test's gateway and `HttpClient` use:
`LLM_GATEWAY_TEST_UPSTREAM_CLIENT=aiohttp|native` (native, the default, when unset)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class GatewayProcess:
    """`llm-gateway serve` in a subprocess on a free port; stdout+stderr kept in `log_path`."""

    def __init__(self, config: dict[str, Any] | None, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="llm-gateway-test-"))
        self.log_path = self.dir / "gateway.log"
        self.config_path: Path | None = None
        if config is not None:
            if "LLM_GATEWAY_TEST_UPSTREAM_CLIENT" in os.environ:
                server = config.setdefault("server", {})
                if isinstance(server, dict):
                    server.setdefault("upstream_client", UPSTREAM_CLIENT)
            self.config_path = self.dir / "config.yaml"
            self.config_path.write_text(yaml.safe_dump(config))
        self.env = {**os.environ, **(env or {})}
        # It runs in its own folder: keep the checkout importable (hooks like `tests.hooks`).
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), self.env.get("PYTHONPATH")]))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "llm_gateway.cli", "serve", "--port", str(self.port)]
        if self.config_path is not None:
            args += ["--config", str(self.config_path)]
        return args

    def start(self, timeout: float = 20) -> GatewayProcess:
        with self.log_path.open("wb") as log:
            # In its own directory: the default database (./llm-gateway.db) is this gateway's own.
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.dir
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gateway did not become healthy in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def logged(self, text: str, timeout: float = 5.0) -> bool:
        """Whether `text` reaches the log within `timeout` (a writer thread writes it in
        batches, so a line logged during a request may land just after its answer)."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def terminate(self) -> None:
        """Send SIGTERM (a graceful shutdown) without waiting."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 15) -> int | None:
        if self.process is None:
            return None
        self.terminate()
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `llm-gateway ARGS` to completion (for config errors and other one-shot commands)."""
    return subprocess.run(
        [sys.executable, "-m", "llm_gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
