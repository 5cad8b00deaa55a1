"""The gateway's configuration models: validated strictly once at start-up, then frozen.

Provider blocks are validated by the provider type's own settings model (see
`ProviderSettings`), which the loader looks up through a callback, so `core` never
imports `providers`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MiB = 1024 * 1024


class StrictModel(BaseModel):
    """Base for config models: unknown keys are errors and values never change after load."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderSettings(StrictModel):
    """Settings every provider type shares. Each type subclasses this with its own keys."""

    type: str
    timeout: Annotated[float, Field(gt=0)] = 60.0
    connect_timeout: Annotated[float, Field(gt=0)] = 5.0
    max_connections: Annotated[int, Field(ge=1)] = 1000


class Deployment(StrictModel):
    """One place a public model can be served from: a provider account and its model id."""

    provider: str
    model: str | None = None
    weight: Annotated[float, Field(gt=0)] = 1.0
    rpm: Annotated[int, Field(ge=1)] | None = None
    tpm: Annotated[int, Field(ge=1)] | None = None
    timeout: Annotated[float, Field(gt=0)] | None = None
    input_cost_per_mtok: Annotated[float, Field(ge=0)] | None = None
    output_cost_per_mtok: Annotated[float, Field(ge=0)] | None = None


ImportPath = Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]
"""`package.module:attribute`."""
Strategy = Literal["weighted", "least-busy", "latency", "cost"]
Seconds = Annotated[float, Field(gt=0)]
# `hedge_after: p95`: hedge once an attempt is slower than that percentile of recent ones.
Percentile = Annotated[str, Field(pattern=r"^p([1-9][0-9]?(\.[0-9]+)?)$")]


class BreakerSettings(StrictModel):
    """When a deployment's circuit opens, and for how long (see docs/routing.md)."""

    failures: Annotated[int, Field(ge=1)] = 5
    failure_rate: Annotated[float, Field(gt=0, le=1)] | None = 0.5
    min_requests: Annotated[int, Field(ge=1)] = 20
    window: Seconds = 60.0
    cooldown: Seconds = 30.0
    long_retry_after: Seconds = 30.0


class RoutingOverride(StrictModel):
    """A model's own `routing:` block: any key left out comes from the top-level `routing:`."""

    strategy: Strategy | None = None
    max_attempts: Annotated[int, Field(ge=1, le=20)] | None = None
    deadline: Seconds | None = None
    backoff_base: Seconds | None = None
    backoff_max: Seconds | None = None
    stream_idle_timeout: Seconds | None = None
    hedge_after_ms: Annotated[int, Field(ge=0)] | None = None
    hedge_after: Percentile | None = None

    @model_validator(mode="after")
    def _one_hedge(self) -> RoutingOverride:
        if self.hedge_after_ms is not None and self.hedge_after is not None:
            raise ValueError("set hedge_after_ms or hedge_after, not both")
        return self


class RoutingSettings(RoutingOverride):
    """Routing defaults for every model (the top-level `routing:` block)."""

    strategy: Strategy = "weighted"
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 3
    deadline: Seconds = 120.0
    backoff_base: Seconds = 0.1
    backoff_max: Seconds = 5.0
    breaker: BreakerSettings = BreakerSettings()


class ModelGroup(StrictModel):
    """A public model name and the deployments that can serve it."""

    deployments: Annotated[list[Deployment], Field(min_length=1)]
    routing: RoutingOverride = RoutingOverride()
    fallbacks: list[str] = []
    context_window_fallbacks: list[str] = []
    content_policy_fallbacks: list[str] = []


class ServerSettings(StrictModel):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    workers: Annotated[int, Field(ge=1)] = 1
    max_request_bytes: Annotated[int, Field(ge=1024)] = 16 * MiB
    max_header_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024
    drain_timeout: Annotated[float, Field(ge=0)] = 30.0
    access_log: bool = False
    log_level: str = "info"


class GatewayConfig(StrictModel):
    """The whole gateway configuration.

    `providers` holds each account's validated settings (a `ProviderSettings` subclass);
    the loader replaces the raw YAML blocks with those before this model is built.
    """

    providers: dict[str, ProviderSettings]
    models: dict[str, ModelGroup]
    default_model: str | None = None
    master_key: Annotated[str | None, Field(repr=False)] = None  # a secret: kept out of repr/logs
    server: ServerSettings = ServerSettings()
    routing: RoutingSettings = RoutingSettings()
    redis_url: str | None = None
    redis_prefix: str = "llm-gateway:"
    hooks: list[Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]] = Field(
        default_factory=list
    )
    """Extra request hooks, as `package.module:Factory` import paths (docs/architecture.md)."""

    @model_validator(mode="after")
    def _check_references(self) -> GatewayConfig:
        for name, group in self.models.items():
            for index, deployment in enumerate(group.deployments):
                if deployment.provider not in self.providers:
                    known = ", ".join(sorted(self.providers)) or "none"
                    raise ValueError(
                        f"models.{name}.deployments[{index}].provider: unknown provider "
                        f"{deployment.provider!r} (configured: {known})"
                    )
            for kind in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
                for other in getattr(group, kind):
                    if other not in self.models or other == name:
                        raise ValueError(f"models.{name}.{kind}: {other!r} is not another configured model")
        if self.default_model is not None and self.default_model not in self.models:
            raise ValueError(f"default_model: {self.default_model!r} is not one of models")
        return self

    @property
    def auth_required(self) -> bool:
        return bool(self.master_key)


def default_config_data(env: dict[str, str]) -> tuple[dict[str, Any], str]:
    """The embedded configuration used when no file is given, and a one-line note about it.

    With `OPENAI_API_KEY` set it serves `DEFAULT_MODEL` from OpenAI (or `OPENAI_BASE_URL`);
    without it, the offline `mock` provider as model `mock`, so `make run` works anywhere.
    """
    master_key = env.get("GATEWAY_MASTER_KEY") or None
    api_key = env.get("OPENAI_API_KEY")
    if not api_key:
        data: dict[str, Any] = {
            "providers": {"mock": {"type": "mock"}},
            "models": {"mock": {"deployments": [{"provider": "mock"}]}},
            "default_model": "mock",
            "master_key": master_key,
        }
        note = (
            "no config file and no OPENAI_API_KEY: serving the offline 'mock' model; "
            "set OPENAI_API_KEY or pass --config FILE to add a real provider"
        )
        return data, note
    model = env.get("DEFAULT_MODEL") or "gpt-4o-mini"
    provider: dict[str, Any] = {"type": "openai", "api_key": api_key}
    if env.get("OPENAI_BASE_URL"):
        provider["base_url"] = env["OPENAI_BASE_URL"]
    data = {
        "providers": {"openai": provider},
        "models": {model: {"deployments": [{"provider": "openai"}]}},
        "default_model": model,
        "master_key": master_key,
    }
    return data, f"no config file: serving {model!r} from the OpenAI-compatible API"
