"""One request's state, made once at the edge and passed down explicitly.

`RequestContext` is the only place per-request state lives: who is calling, through which
front door, what the client asked of routing (retries, fallbacks, a deadline), and what the
request accumulates on its way back (the deployment that served, usage, timings, cache
status). `Call` is the operation the front door's dialect parsed out of the body, in the
form the services and hooks work on. Nothing here does I/O.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from llm_gateway.core.types import JSON, Usage


class Operation(StrEnum):
    """What a call asks a model to do; each is one service in `services/`."""

    CHAT = "chat"
    EMBEDDINGS = "embeddings"
    MESSAGES = "messages"
    COUNT_TOKENS = "count_tokens"
    COMPLETIONS = "completions"
    RESPONSES = "responses"
    RESPONSES_INPUT_TOKENS = "responses_input_tokens"
    CHAT_TOKENS = "chat_tokens"
    """A chat request's prompt tokens, counted here (the Gemini front door's countTokens)."""


BudgetPeriod = Literal["none", "daily", "weekly", "monthly"]


@dataclass(frozen=True, slots=True)
class Limits:
    """What one scope (a key, a team, an end user) may use. None: no limit of that kind."""

    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    budget_usd: Decimal | None = None
    budget_period: BudgetPeriod = "none"
    """Calendar-aligned in UTC: a daily budget resets at 00:00 UTC, monthly on the 1st."""
    max_hold_usd: Decimal | None = None
    """Caps one request's worst-case hold (agents with huge contexts); see docs/governance.md."""


@dataclass(frozen=True, slots=True)
class Scope:
    """One thing limits and budgets apply to, with its own allowed models."""

    kind: Literal["key", "team", "user"]
    id: str
    name: str | None = None
    limits: Limits = Limits()
    models: tuple[str, ...] | None = None
    """Public model names or globs (`gpt-4o*`) this scope may use; None: every model."""
    guardrails: tuple[str, ...] = ()
    """Guardrails (names from the config's `guardrails:`) every request in this scope runs."""
    metadata: JSON = field(default_factory=dict, hash=False, compare=False)
    """The key's or team's free-form metadata (`policy`, `cache` are read, docs/policies.md)."""
    end_users: Limits | None = None
    """The limits each end user calling through this scope gets as a scope of its own (a
    team's `end_user_budget_usd`); None: end users are not limited apart."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the master key, anyone (no master key configured), or a virtual key
    (or JWT) with the scopes whose limits bind it, tightest last: key, then team."""

    kind: str
    """`master`, `open` (no master key configured), `key` (a virtual key) or `jwt`."""
    key_id: str | None = None
    name: str | None = None
    team_id: str | None = None
    metadata: JSON = field(default_factory=dict)
    scopes: tuple[Scope, ...] = ()
    """Every scope whose limits apply (empty for the master key and open access)."""


OPEN = Principal("open")
MASTER = Principal("master", key_id="master", name="master")


@dataclass(slots=True)
class Call:
    """A parsed request: the operation, the public model it names, and the body to route.

    `body` is in the operation's own wire form (a chat request for `chat`, an Anthropic
    Messages body for `messages`, an embeddings body), with every field the client sent
    kept except the gateway's own (`fallbacks`). Hooks may replace it (a redacted prompt).
    """

    operation: Operation
    body: JSON
    model: str | None = None
    stream: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    """Per-front-door extras the service needs, e.g. the client's `anthropic-beta` header."""


@dataclass(frozen=True, slots=True)
class Route:
    """Which deployment served, and how it came to (the `x-llm-gateway-*` headers)."""

    deployment: str
    provider: str
    model: str
    attempts: int
    fallback: str | None = None
    hedged: bool = False


@dataclass(slots=True)
class RequestContext:
    request_id: str
    principal: Principal
    dialect: str
    """The front door's name (`openai.chat`, `anthropic.messages`, ...), for logs and metrics."""
    retries: bool = True
    """False when the client sent `x-llm-gateway-no-retry`: one attempt, no fallback, no hedge."""
    fallbacks: list[str] | None = None
    """The client's own fallback models, replacing the configured ones for this request."""
    deadline: float | None = None
    """An absolute `time.monotonic()` deadline narrower than the model's own, if any."""
    started: float = field(default_factory=time.monotonic)
    route: Route | None = None
    usage: Usage | None = None
    usage_estimated: bool = False
    """True when `usage` was counted here (services/tokens.py) because the upstream sent
    none, e.g. a stream from a server that ignores `stream_options.include_usage`."""
    first_chunk_at: float | None = None
    cache: str | None = None
    """`hit` when a hook answered from cache, `miss` or `bypass`; None when no cache applies."""
    cache_saved_usd: Decimal | None = None
    """On a hit: what the cached answer cost when it was first served (the spend row's saving)."""
    cache_bytes: int = 0
    """Bytes of the cache entry read on a hit, or written when the answer was stored."""
    template: tuple[str, str] | None = None
    """The prompt template (id, version) the request was rendered from, for the spend row."""
    headers: list[tuple[str, str]] = field(default_factory=list)
    """Response headers hooks add (rate-limit and budget headers), on answers and errors alike."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Hooks' own per-request state, each under its own key (e.g. a budget hold)."""
    call: Call | None = None
    """The parsed call (its public model resolved by the pipeline), for logs and metrics."""
    cost: Decimal | None = None
    """What the served request cost in USD, once governance priced it; None: unpriced or not priced."""
