"""Configuration of who may call and how much: virtual-key checks, JWTs from an identity
provider, rate limits, parallel slots, budgets and the spend log (docs/governance.md)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator

from llm_gateway.core.secrets import SecretUrl
from llm_gateway.core.strict import Seconds, StrictModel

JWTAlgorithm = Literal[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "HS256", "HS384", "HS512"
]
"""What a JWT may be signed with; `none` is not among them, so it can never be allowed."""


class JWTSettings(StrictModel):
    """JWTs from an identity provider: verified against its JWKS (`jwks_url`) or one PEM
    public key (`public_key_file`), and, only when `secret` is set, HMAC-signed ones."""

    issuer: Annotated[str, Field(min_length=1)]
    audience: Annotated[str, Field(min_length=1)]
    jwks_url: SecretUrl | None = None
    """Where the provider publishes its keys (a secret type like every URL: it may carry a token)."""
    public_key_file: SecretStr | None = None
    """A PEM public key's path (a secret type only by this config's naming rule)."""
    secret: SecretStr | None = None
    """A shared HMAC secret; the only key HS* tokens are ever checked against."""
    team_claim: Annotated[str, Field(min_length=1)] = "team"
    """The claim naming the caller's team (by its name or id in the admin API)."""
    user_claim: Annotated[str, Field(min_length=1)] = "sub"
    """The claim naming the end user, recorded as a `user` scope and `metadata.user`."""
    allowed_algorithms: Annotated[list[JWTAlgorithm], Field(min_length=1)] = ["RS256", "ES256"]
    leeway_seconds: Annotated[float, Field(ge=0, le=300)] = 30.0
    """Clock skew tolerated on `exp` and `nbf`."""
    jwks_ttl_seconds: Annotated[float, Field(gt=0, le=3600)] = 600.0
    """How long a fetched JWKS is used before it is fetched again (in the background)."""
    jwks_min_refresh_seconds: Annotated[float, Field(ge=0, le=3600)] = 30.0
    """An unknown `kid` refetches the JWKS at most this often (no fetch storms)."""

    @model_validator(mode="after")
    def _one_key_source(self) -> JWTSettings:
        if (self.jwks_url is None) == (self.public_key_file is None):
            raise ValueError("auth.jwt needs exactly one of jwks_url or public_key_file")
        hmac_algorithms = [name for name in self.allowed_algorithms if name.startswith("HS")]
        if hmac_algorithms and self.secret is None:
            raise ValueError(f"auth.jwt allows {', '.join(hmac_algorithms)} but no secret is configured")
        return self


class AuthSettings(StrictModel):
    """How virtual keys are checked. Every instance keeps them in memory (no database round
    trip per request) and re-reads the store when it changes: at once on a Redis
    notification when `redis_url` is set, and at the latest every `refresh_seconds`."""

    refresh_seconds: Annotated[float, Field(gt=0, le=5)] = 2.0
    jwt: JWTSettings | None = None
    """Accept JWTs from an identity provider as well as virtual keys (docs/governance.md)."""


class ScopeSettings(StrictModel):
    """A scope every request is bound by besides its principal's own (a gateway-wide budget,
    a shared team limit); the same limits a virtual key or team carries (`core.context.Limits`)."""

    kind: Literal["key", "team", "user"] = "team"
    id: Annotated[str, Field(min_length=1, pattern=r"^[^\s{}]+$")]
    name: str | None = None
    rpm: Annotated[int, Field(ge=1)] | None = None
    tpm: Annotated[int, Field(ge=1)] | None = None
    max_parallel: Annotated[int, Field(ge=1)] | None = None
    budget_usd: Annotated[Decimal, Field(ge=0)] | None = None
    budget_period: Literal["none", "daily", "weekly", "monthly"] = "none"
    max_hold_usd: Annotated[Decimal, Field(gt=0)] | None = None


class SpendLogSettings(StrictModel):
    """Where spend rows go, off the hot path: the gateway's database (`database_url`: the
    `spend_logs` table and the `usage_daily` rollup), a bounded in-memory sink or a JSON-lines file."""

    sink: Literal["database", "memory", "jsonl"] = "database"
    path: str | None = None
    """The JSON-lines file (`sink: jsonl`), appended to."""
    batch_size: Annotated[int, Field(ge=1)] = 500
    flush_interval: Seconds = 1.0
    max_queue: Annotated[int, Field(ge=1)] = 100_000
    """Rows waiting beyond this are dropped (and counted in the log) rather than grow memory."""
    retention_days: Annotated[int, Field(ge=1)] | None = 90
    """`sink: database`: log rows older than this are deleted (checked at most hourly);
    the daily rollup is kept. None: kept forever."""
    max_body_bytes: Annotated[int, Field(ge=256, le=1_048_576)] = 16_384
    """Bodies captured for keys or teams with `log_bodies` metadata (`sink: database`): each
    request and response body is cut to this many characters, after redaction."""
    body_retention_days: Annotated[int, Field(ge=1)] = 7
    """Captured bodies are cleared from rows older than this (checked with the retention)."""

    @model_validator(mode="after")
    def _path_for_files(self) -> SpendLogSettings:
        if self.sink == "jsonl" and not self.path:
            raise ValueError("sink: jsonl needs a path")
        return self


class GovernanceSettings(StrictModel):
    """Rate limits, parallel-request slots, budgets and the spend log (docs/governance.md).

    Counters are shared through `redis_url` when it is set, else kept in this process (which
    is why `serve --workers N` refuses that combination: each worker would count alone).
    """

    on_store_error: Literal["fail_closed", "fail_open"] = "fail_closed"
    lease_ttl: Annotated[float, Field(ge=1)] = 30.0
    """Seconds a parallel slot or budget hold outlives its last renewal (a dead instance's
    leases free themselves this long after it died); renewed every third of it."""
    default_max_output_tokens: Annotated[int, Field(ge=1)] = 4096
    """Completion tokens a budget hold assumes when a request names no `max_tokens`."""
    unpriced: Literal["refuse", "allow"] = "refuse"
    """A budgeted request to a deployment with no price: refused, or let through unheld."""
    scopes: list[ScopeSettings] = Field(default_factory=list)
    spend_log: SpendLogSettings = SpendLogSettings()
