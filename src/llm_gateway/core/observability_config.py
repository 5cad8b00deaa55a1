"""Configuration of what the gateway tells its operator: the access log and log levels
(`logging:`), and the Prometheus endpoint (`metrics:`). See docs/observability.md."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr

from llm_gateway.core.strict import StrictModel


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


Level = Annotated[Literal["critical", "error", "warning", "info", "debug", "trace"], BeforeValidator(_lower)]
"""A logging level, in any case; the same names as `server.log_level`."""

QUIET_LIBRARIES = {"aiohttp": "warning", "asyncio": "warning"}
"""Per-logger levels applied unless `logging.levels` names the logger: library noise off."""


class LoggingSettings(StrictModel):
    """How the gateway logs. Every handler (ours and libraries') redacts secrets; the access
    log never carries a prompt or a completion."""

    level: Level | None = None
    """The root level; None: `server.log_level` (which `--log-level` sets)."""
    format: Literal["auto", "json", "text"] = "auto"
    """`auto`: text when stderr is a terminal, JSON lines otherwise."""
    levels: dict[Annotated[str, Field(min_length=1)], Level] = Field(default_factory=dict)
    """Per-logger levels (`llm_gateway.access: warning`, `aiohttp: debug`), over the quiet
    defaults for aiohttp and asyncio."""
    access: bool = True
    """One line per request on the `llm_gateway.access` logger."""


class MetricsSettings(StrictModel):
    """`GET /metrics` in the Prometheus text format."""

    enabled: bool = True
    """False: no metrics at all, no per-request cost, and `/metrics` is a 404."""
    token: SecretStr | None = None
    """When set, `/metrics` needs `Authorization: Bearer <token>`."""
    per_key_labels: bool = False
    """Label request and cost metrics by key and team too (cardinality grows with the keys)."""
