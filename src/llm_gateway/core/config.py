"""The gateway's configuration models: validated strictly once at start-up, then frozen.

Provider blocks are validated by the provider type's own settings model (see
`ProviderSettings`), which the loader looks up through a callback, so `core` never
imports `providers`.

Everything `serve` would trip over later (a log level uvicorn does not know, a Redis URL
redis-py cannot use, a bind host that is no address) is refused here, so `check-config`
and `serve` reject the same files with the same one line.

Credentials are secret types: `SecretStr` for keys and tokens, `SecretUrl` for URLs (their
userinfo and query values may carry credentials), `SecretHeaders` for extra upstream
headers. None of them shows its secret in `repr`, `str` or `model_dump()`; the value is
read explicitly (`get_secret_value()`, or the header mapping itself when sending).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from llm_gateway.core.governance_config import AuthSettings, GovernanceSettings
from llm_gateway.core.guardrail_config import Guardrails
from llm_gateway.core.observability_config import LoggingSettings, MetricsSettings
from llm_gateway.core.policy_config import CacheSettings, Policy, TemplateSpec, unknown_policy
from llm_gateway.core.responses_config import ResponsesSettings
from llm_gateway.core.secrets import (
    DatabaseUrl,
    RedisUrl,
)
from llm_gateway.core.strict import Seconds, StrictModel
from llm_gateway.core.tracing_config import TracingSettings
from llm_gateway.core.ui_config import UISettings

MiB = 1024 * 1024
DEFAULT_DATABASE_URL = "sqlite:///./llm-gateway.db"


class ProviderSettings(StrictModel):
    """Settings every provider type shares. Each type subclasses this with its own keys."""

    type: str
    timeout: Annotated[float, Field(gt=0)] = 60.0
    connect_timeout: Annotated[float, Field(gt=0)] = 5.0
    max_connections: Annotated[int, Field(ge=1)] = 1000
    max_response_bytes: Annotated[int, Field(ge=1024)] = 32 * MiB
    """The largest upstream answer read, as it arrives (after any decompression); more is a 502."""
    max_event_bytes: Annotated[int, Field(ge=1024)] = 1 * MiB
    """The largest single stream event (an SSE event, a binary event-stream frame); more is a 502."""


UsdPerMtok = Annotated[Decimal, Field(ge=0)]
"""US dollars per million tokens, exact (`0.3` is `Decimal("0.3")`, not a binary float)."""


class Pricing(StrictModel):
    """A deployment's own prices, over the bundled price database (docs/pricing.md).

    Each rate given wins; each one left out comes from the database. A cache rate that
    neither gives is charged at the input rate.
    """

    input_per_mtok: UsdPerMtok | None = None
    """Fresh (uncached) prompt tokens."""
    output_per_mtok: UsdPerMtok | None = None
    """Completion tokens, reasoning included."""
    cached_input_per_mtok: UsdPerMtok | None = None
    """Prompt tokens read from the provider's prompt cache."""
    cache_write_per_mtok: UsdPerMtok | None = None
    """Prompt tokens written to the provider's prompt cache (Anthropic, Bedrock)."""
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    """The most a single answer can be, for worst-case cost estimates (budget holds)."""


class Deployment(StrictModel):
    """One place a public model can be served from: a provider account and its model id."""

    provider: str
    model: str | None = None
    weight: Annotated[float, Field(gt=0)] = 1.0
    rpm: Annotated[int, Field(ge=1)] | None = None
    tpm: Annotated[int, Field(ge=1)] | None = None
    timeout: Annotated[float, Field(gt=0)] | None = None
    pricing: Pricing | None = None


ImportPath = Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]
"""`package.module:attribute`."""
Strategy = Literal["weighted", "least-busy", "latency", "cost"]
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
    stream_idle_timeout: Seconds | None = 60.0
    breaker: BreakerSettings = BreakerSettings()


class ModelGroup(StrictModel):
    """A public model name and the deployments that can serve it."""

    deployments: Annotated[list[Deployment], Field(min_length=1)]
    routing: RoutingOverride = RoutingOverride()
    fallbacks: list[str] = []
    context_window_fallbacks: list[str] = []
    content_policy_fallbacks: list[str] = []
    guardrails: list[str] = []
    """Names from the top-level `guardrails:` run on every request to this model."""
    policy: str | None = None
    """A `policies:` name every request for this model must satisfy (docs/policies.md)."""
    cache: CacheSettings | None = None
    """The response cache for this model; absent: off (unless a key or team turns it on)."""


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


LogLevel = Annotated[
    Literal["critical", "error", "warning", "info", "debug", "trace"], BeforeValidator(_lower)
]
"""The levels both uvicorn and `setup_logging` accept, in any case (`INFO` is `info`)."""
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
"""The `Host` names a loopback-bound gateway answers by default (any port)."""


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine."""
    if host.lower().removesuffix(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class CorsSettings(StrictModel):
    """Cross-origin access for browser pages (off unless `server.cors` is set), given to
    Starlette's `CORSMiddleware` (its `allow_headers` and `expose_headers` are named
    `allow_header_names` and `expose_header_names`, and `allow_credentials` is `allow_cookies`
    here: names the secret-field check would otherwise take for credentials)."""

    allow_origins: Annotated[list[str], Field(min_length=1)]
    allow_methods: list[str] = ["GET", "POST"]
    allow_header_names: list[str] = [
        "authorization",
        "content-type",
        "x-api-key",
        "anthropic-version",
        "x-goog-api-key",
    ]
    allow_cookies: bool = False
    expose_header_names: list[str] = ["x-request-id"]
    max_age: Annotated[int, Field(ge=0)] = 600

    def middleware_options(self) -> dict[str, Any]:
        """The keyword arguments of Starlette's `CORSMiddleware`."""
        return {
            "allow_origins": self.allow_origins,
            "allow_methods": self.allow_methods,
            "allow_headers": self.allow_header_names,
            "allow_credentials": self.allow_cookies,
            "expose_headers": self.expose_header_names,
            "max_age": self.max_age,
        }


class ServerSettings(StrictModel):
    """How this process serves. `serve`'s flags override these keys and are validated by this
    same model (see `loader.with_server_overrides`). docs/security.md explains the limits."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    workers: Annotated[int, Field(ge=1)] = 1
    max_request_bytes: Annotated[int, Field(ge=1024)] = 16 * MiB
    max_header_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024
    drain_timeout: Annotated[float, Field(ge=0)] = 30.0
    access_log: bool = False
    log_level: LogLevel = "info"
    header_timeout: Seconds = 10.0
    """From a connection (or the next request on it) to the end of the request head."""
    body_timeout: Seconds = 60.0
    """From the end of the head to the end of the body."""
    max_connections: Annotated[int, Field(ge=1)] = 8192
    """Open client connections per worker; a request on one more is answered 503. An idle
    keep-alive connection costs about 14 KiB (docs/performance.md, bench/idle.py)."""
    keep_alive_timeout: Seconds = 75.0
    """How long an idle keep-alive client connection stays open. Longer than the idle timeout
    of any load balancer in front (AWS ALB: 60 s), else the balancer may reuse a connection
    the gateway is closing and answer 502 (uvicorn's own default is 5 s)."""
    allowed_hosts: list[str] | None = None
    """`Host` values served (`name`, `name:port`, `*.suffix`, `*`); None: the loopback names
    when bound to a loopback address, anything otherwise."""
    cors: CorsSettings | None = None
    openapi: bool = True
    """Serve `/openapi.json` (to the master key only; never without one)."""
    upstream_client: Literal["native", "aiohttp"] = "native"
    """The HTTP client providers call upstreams with (docs/performance.md): the native
    HTTP/1.1 client, or aiohttp."""

    def hosts(self) -> list[str]:
        """The effective `allowed_hosts`."""
        if self.allowed_hosts is not None:
            return self.allowed_hosts
        return list(LOOPBACK_HOSTS) if is_loopback(self.host) else ["*"]

    @field_validator("host")
    @classmethod
    def _bindable_host(cls, host: str) -> str:
        """An IP address or a host name: anything else would only fail when uvicorn binds."""
        try:
            ipaddress.ip_address(host)
            return host
        except ValueError:
            pass
        labels = host.removesuffix(".").split(".")
        if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
            raise ValueError(f"{host!r} is not an IP address or host name (IPv6 goes without brackets)")
        return host


MODEL_PLACEHOLDER = "{model}"
"""In a wildcard model's deployment `model`: the part of the requested name matched by `*`."""


def is_pattern(name: str) -> bool:
    """Whether a model or alias name is a glob (`anthropic/*`) rather than one name."""
    return any(c in name for c in "*?[")


JWT_NEEDS_MASTER_KEY = (
    "auth.jwt: JWT callers are governed (a JWT names a team the admin API manages), and "
    "governance needs a master key: set master_key (e.g. master_key: ${LLM_GATEWAY_MASTER_KEY})"
)


class GatewayConfig(StrictModel):
    """The whole gateway configuration.

    `providers` holds each account's validated settings (a `ProviderSettings` subclass);
    the loader replaces the raw YAML blocks with those before this model is built.
    """

    providers: dict[str, ProviderSettings]
    models: dict[str, ModelGroup]
    default_model: str | None = None
    master_key: SecretStr | None = None
    server: ServerSettings = ServerSettings()
    routing: RoutingSettings = RoutingSettings()
    redis_url: RedisUrl | None = None
    redis_prefix: str = "llm-gateway:"
    database_url: DatabaseUrl = DatabaseUrl(DEFAULT_DATABASE_URL)
    """Keys and teams; the SQLite default is created in the working directory on first start."""
    auth: AuthSettings = AuthSettings()
    hooks: list[Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]] = Field(
        default_factory=list
    )
    """Extra request hooks, as `package.module:Factory` import paths (docs/architecture.md)."""
    governance: GovernanceSettings | None = None
    """Limits, budgets and the spend log; absent: no governance hook at all."""
    guardrails: Guardrails = Field(default_factory=dict)
    """Named input and output checks, attached to models, teams and keys (docs/policies.md)."""
    logging: LoggingSettings = LoggingSettings()
    metrics: MetricsSettings = MetricsSettings()
    templates: dict[Annotated[str, Field(min_length=1)], TemplateSpec] = Field(default_factory=dict)
    """Prompt templates by name (docs/policies.md)."""
    responses: ResponsesSettings = ResponsesSettings()
    """Where stored Responses API conversations live, and for how long (docs/responses.md)."""
    policies: dict[Annotated[str, Field(min_length=1)], Policy] = Field(default_factory=dict)
    """System policies by name, attached to models, teams and keys (docs/policies.md)."""
    cache: CacheSettings | None = None
    """The cache defaults for keys and teams that turn caching on (`cache` in metadata)."""
    tracing: TracingSettings | None = None
    """OpenTelemetry traces over OTLP; absent: no tracing middleware, observer or hook."""
    ui: UISettings = UISettings()
    """The admin web UI under `/ui/` (docs/ui.md)."""
    aliases: dict[Annotated[str, Field(min_length=1)], str] = Field(default_factory=dict)
    """Other names for configured models: an exact name or a glob (`claude-3-5-haiku-*`) →
    the name of a configured, non-wildcard model (docs/agents.md, "Model names: aliases and wildcards")."""

    @model_validator(mode="after")
    def _check_policies(self) -> GatewayConfig:
        problem = unknown_policy({name: group.policy for name, group in self.models.items()}, self.policies)
        if problem is not None:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _check_names(self) -> GatewayConfig:
        for name, group in self.models.items():
            if is_pattern(name):
                if name.count("*") != 1 or any(c in name for c in "?[]"):
                    raise ValueError(
                        f"models.{name}: a wildcard model name has exactly one '*' and no ?, [ or ]"
                    )
                if self.default_model == name:
                    raise ValueError(f"default_model: {name!r} is a wildcard, not one model")
            for index, deployment in enumerate(group.deployments):
                if (
                    not is_pattern(name)
                    and deployment.model is not None
                    and MODEL_PLACEHOLDER in deployment.model
                ):
                    raise ValueError(
                        f"models.{name}.deployments[{index}].model: {MODEL_PLACEHOLDER} is only "
                        "meaningful in a wildcard model (a name with '*')"
                    )
        for alias, target in self.aliases.items():
            if alias in self.models:
                raise ValueError(f"aliases.{alias}: {alias!r} is already a configured model")
            if target not in self.models or is_pattern(target):
                raise ValueError(f"aliases.{alias}: {target!r} is not a configured (non-wildcard) model")
        return self

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
                    if other not in self.models or other == name or is_pattern(other):
                        raise ValueError(f"models.{name}.{kind}: {other!r} is not another configured model")
            for guardrail in group.guardrails:
                if guardrail not in self.guardrails:
                    raise ValueError(f"models.{name}.guardrails: {guardrail!r} is not one of guardrails")
        if self.default_model is not None and self.default_model not in self.models:
            raise ValueError(f"default_model: {self.default_model!r} is not one of models")
        if self.auth.jwt is not None and self.master_key is None:
            raise ValueError(JWT_NEEDS_MASTER_KEY)
        return self


def shared_state_problem(config: GatewayConfig) -> str | None:
    """Why `config` cannot be served as configured, if it cannot: several worker processes
    with governance counted in-process would each enforce every limit and budget alone
    (governance is on with `governance:`, and with a master key: virtual keys carry limits)."""
    governed = config.governance is not None or config.master_key is not None
    if governed and config.server.workers > 1 and config.redis_url is None:
        return (
            f"server.workers is {config.server.workers} but governance counters are in-process: "
            "each worker would enforce every limit and budget on its own; configure redis_url "
            "to share them, or serve with one worker"
        )
    return None


def default_config_data(env: Mapping[str, str]) -> tuple[dict[str, Any], str]:
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
