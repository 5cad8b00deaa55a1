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
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import parse_qsl, urlsplit

import redis.asyncio as aioredis
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    SecretStr,
    SerializationInfo,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import core_schema

MiB = 1024 * 1024
MASK = "**********"


def environ_of(info: ValidationInfo) -> Mapping[str, str]:
    """The environment the loader validates against: `context={"environ": ...}`.

    Validators that need environment variables read them here, never from `os.environ`,
    so a `.env.<ENVIRONMENT>` file and a test's own `environ` are seen; without a context
    (a model built directly) there is no environment at all.
    """
    context = info.context
    environ = context.get("environ") if isinstance(context, Mapping) else None
    return environ if isinstance(environ, Mapping) else {}


def mask_url(url: str) -> str:
    """`url` with its userinfo and every query value replaced by a mask; the rest is kept."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = "&".join(f"{name}={MASK}" for name, _ in parse_qsl(parts.query, keep_blank_values=True))
    return parts._replace(netloc=netloc, query=query, fragment="").geturl()


class SecretUrl:
    """An http(s) URL that may carry credentials (`https://user:token@host`, `?key=...`).

    `repr`, `str` and `model_dump()` show it with userinfo and query values masked;
    `get_secret_value()` gives the URL as configured. Subclasses set `schemes` and may
    check more in `_check`.
    """

    __slots__ = ("_url",)
    schemes: ClassVar[frozenset[str]] = frozenset({"http", "https"})

    def __init__(self, url: str) -> None:
        self._url = url

    def get_secret_value(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({mask_url(self._url)!r})"

    def __str__(self) -> str:
        return mask_url(self._url)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretUrl) and type(other) is type(self) and other._url == self._url

    def __hash__(self) -> int:
        return hash(self._url)

    @classmethod
    def _check(cls, url: str) -> None:
        """Raise ValueError, without echoing the URL, when it cannot be used."""
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 (parses the port: a bad one raises ValueError)
        except ValueError as exc:
            raise ValueError(f"not a valid URL ({exc})") from None
        if parts.scheme not in cls.schemes or not parts.hostname:
            schemes = ", ".join(f"{scheme}://" for scheme in sorted(cls.schemes))
            raise ValueError(f"must be an absolute URL starting with {schemes} and naming a host")

    @classmethod
    def _validate(cls, value: str | SecretUrl) -> SecretUrl:
        if isinstance(value, SecretUrl):
            value = value.get_secret_value()
        cls._check(value)
        return cls(value)

    @staticmethod
    def _serialize(value: SecretUrl, info: SerializationInfo) -> str | SecretUrl:
        return str(value) if info.mode == "json" else value

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        accepted = core_schema.union_schema([core_schema.is_instance_schema(cls), core_schema.str_schema()])
        return core_schema.no_info_after_validator_function(
            cls._validate,
            accepted,
            serialization=core_schema.plain_serializer_function_ser_schema(cls._serialize, info_arg=True),
        )


class RedisUrl(SecretUrl):
    """A Redis URL (`redis://:password@host:6379/0`, `rediss://`, `unix://`), checked the way
    redis-py will read it when the gateway starts."""

    __slots__ = ()
    schemes: ClassVar[frozenset[str]] = frozenset({"redis", "rediss", "unix"})

    @classmethod
    def _check(cls, url: str) -> None:
        # Building the pool and one (unconnected) connection does no I/O, and raises for
        # everything redis-py would otherwise raise at start-up: scheme, port, db, options.
        try:
            aioredis.ConnectionPool.from_url(url).make_connection()  # type: ignore[no-untyped-call]
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a usable Redis URL ({exc})") from None


class SecretHeaders(dict[str, str]):
    """Extra HTTP headers, which may carry credentials (`x-api-key`, `authorization`).

    To the code that sends them they are a plain `dict[str, str]` (`{**headers}` works);
    `repr`, `str` and `model_dump()` show the names with every value masked.
    """

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{name!r}: {MASK!r}" for name in self) + "}"

    __str__ = __repr__

    def masked(self) -> dict[str, str]:
        return dict.fromkeys(self, MASK)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls,
            core_schema.dict_schema(core_schema.str_schema(), core_schema.str_schema()),
            serialization=core_schema.plain_serializer_function_ser_schema(cls.masked),
        )


class StrictModel(BaseModel):
    """Base for config models: unknown keys are errors and values never change after load.

    Numbers must be finite (`.inf` in YAML would pass `gt=0` and break later), and a
    validation error never echoes its input, which may be a secret.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, hide_input_in_errors=True)


class ProviderSettings(StrictModel):
    """Settings every provider type shares. Each type subclasses this with its own keys."""

    type: str
    timeout: Annotated[float, Field(gt=0)] = 60.0
    connect_timeout: Annotated[float, Field(gt=0)] = 5.0
    max_connections: Annotated[int, Field(ge=1)] = 1000


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


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


LogLevel = Annotated[
    Literal["critical", "error", "warning", "info", "debug", "trace"], BeforeValidator(_lower)
]
"""The levels both uvicorn and `setup_logging` accept, in any case (`INFO` is `info`)."""
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


class ServerSettings(StrictModel):
    """How this process serves. `serve`'s flags override these keys and are validated by this
    same model (see `loader.with_server_overrides`)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    workers: Annotated[int, Field(ge=1)] = 1
    max_request_bytes: Annotated[int, Field(ge=1024)] = 16 * MiB
    max_header_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024
    drain_timeout: Annotated[float, Field(ge=0)] = 30.0
    access_log: bool = False
    log_level: LogLevel = "info"

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
    hooks: list[Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]] = Field(
        default_factory=list
    )
    """Extra request hooks, as `package.module:Factory` import paths (docs/architecture.md)."""
    aliases: dict[Annotated[str, Field(min_length=1)], str] = Field(default_factory=dict)
    """Other names for configured models: an exact name or a glob (`claude-3-5-haiku-*`) →
    the name of a configured, non-wildcard model (docs/agents.md, "Model names: aliases and wildcards")."""

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
        if self.default_model is not None and self.default_model not in self.models:
            raise ValueError(f"default_model: {self.default_model!r} is not one of models")
        return self


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
