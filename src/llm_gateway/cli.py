"""The `llm-gateway` command: `serve` and `check-config` (here), `keys`, `teams` and `db`
(`cli_admin.py`).

Both load the config through the same loader, so a file one rejects the other rejects too,
with the same one line and exit status 2. `serve`'s flags are config values as well
(`--log-level` is `server.log_level`, ...) and are validated by the same model.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence

from llm_gateway import __version__
from llm_gateway.cli_admin import add_commands
from llm_gateway.core.config import GatewayConfig, shared_state_problem
from llm_gateway.core.loader import ConfigError, load_config, with_server_overrides
from llm_gateway.providers.registry import settings_model


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-gateway", description="An OpenAI-compatible LLM gateway.")
    parser.add_argument("--version", action="version", version=f"llm-gateway {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    config_help = "YAML config file (default: $LLM_GATEWAY_CONFIG, else the embedded default)"
    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", default=os.environ.get("LLM_GATEWAY_CONFIG"), help=config_help)
    serve.add_argument("--host", help="bind address (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", help="port (default: server.port, 8000)")
    serve.add_argument("--workers", help="worker processes (default: server.workers, 1)")
    serve.add_argument(
        "--log-level", help="critical|error|warning|info|debug|trace (default: server.log_level)"
    )
    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("--config", default=os.environ.get("LLM_GATEWAY_CONFIG"), help=config_help)
    add_commands(commands, config_help)
    return parser


def _load(
    path: str | None, overrides: dict[str, str | None] | None = None
) -> tuple[GatewayConfig, str | None]:
    """The validated config, with `overrides` (from flags) applied to `server`; exit 2 if bad."""
    try:
        config, note = load_config(path, settings_model)
        config = with_server_overrides(config, overrides or {}, "command-line options")
    except ConfigError as error:
        print(error, file=sys.stderr)
        raise SystemExit(2) from None
    from llm_gateway.runtime import hook_problem, tracing_problem  # the runtime's imports only when needed

    problem = shared_state_problem(config) or hook_problem(config) or tracing_problem(config)
    if problem is not None:
        print(f"config error in {path or '<embedded default>'}: {problem}", file=sys.stderr)
        raise SystemExit(2)
    return config, note


def load_or_exit(path: str | None) -> tuple[GatewayConfig, str | None]:
    """The validated config file (or the embedded default); exit 2 with one line if bad."""
    return _load(path)


def serve(args: argparse.Namespace) -> None:
    from llm_gateway.api import server as serving
    from llm_gateway.app import create_app
    from llm_gateway.observability.logging import setup_logging
    from llm_gateway.observability.redaction import config_secrets
    from llm_gateway.reloader import ConfigSource

    flags = {"host": args.host, "port": args.port, "workers": args.workers, "log_level": args.log_level}
    config, note = _load(args.config, flags)
    # --log-level wins over logging.level, which wins over server.log_level.
    level = args.log_level or config.logging.level or config.server.log_level
    setup_logging(level, config.logging, config_secrets(config))
    if config.server.workers > 1:
        if args.config:
            os.environ["LLM_GATEWAY_CONFIG"] = os.path.abspath(args.config)
        os.environ["LLM_GATEWAY_LOG_LEVEL"] = level  # each worker imports main.py afresh
        with shared_metrics(config.metrics.enabled):
            serving.run("llm_gateway.main:app", config.server)
    else:
        serving.run(create_app(config, note, source=ConfigSource(args.config, flags)), config.server)


@contextlib.contextmanager
def shared_metrics(enabled: bool) -> Iterator[None]:
    """Under several workers, prometheus-client's multiprocess mode: a fresh folder for its
    per-process files, named before any worker imports it, removed when the server ends."""
    if not enabled:
        yield
        return
    folder = tempfile.mkdtemp(prefix="llm-gateway-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_config(args: argparse.Namespace) -> None:
    config, _ = _load(args.config)
    print(f"config OK: {len(config.providers)} provider(s), {len(config.models)} model(s)")


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    commands = {"serve": serve, "check-config": check_config}
    run = commands.get(args.command) or args.run
    run(args)


if __name__ == "__main__":
    main()
