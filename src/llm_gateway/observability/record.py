"""One finished request, as the access log and the metrics see it.

`RequestRecord` is built once per request by the access middleware from what the request
left behind (its `RequestContext`, the error the client got, the status sent, the
timings) and handed, immutable, to every sink. `error_type` names an error by the closed
vocabulary of `core/errors.py`: the snake-cased name of the most specific class of that
module the error is an instance of (a hook's own subclass counts as its base), and for
`AllDeploymentsFailed` the class of its deciding cause, so `upstream_timeout` is the
same whether one attempt timed out or three did.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import NamedTuple

from llm_gateway.core import errors
from llm_gateway.core.types import Usage

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


ERROR_TYPES: tuple[str, ...] = (
    *sorted(
        _snake(name)
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.GatewayError)
    ),
    "client_disconnected",
    "internal",
)
"""Every value `error_type` can take (and `internal` for a non-gateway exception)."""


_NAMES: dict[type[BaseException], str] = {}


def _type_name(cls: type[BaseException]) -> str:
    name = _NAMES.get(cls)
    if name is None:
        name = _NAMES[cls] = _find_name(cls)
    return name


def _find_name(cls: type[BaseException]) -> str:
    for base in cls.__mro__:
        if base.__module__ == errors.__name__ and issubclass(base, errors.GatewayError):
            return _snake(base.__name__)
        if base.__name__ == "ClientDisconnected":  # api's own, below this layer's sight
            return "client_disconnected"
    return "internal"


def error_type(error: BaseException | None) -> str | None:
    """The closed-vocabulary name of `error` (None for no error)."""
    if error is None:
        return None
    if isinstance(error, errors.AllDeploymentsFailed) and not isinstance(error, errors.NoDeploymentAvailable):
        return _type_name(type(error.cause))
    return _type_name(type(error))


class Tokens(NamedTuple):
    prompt: int = 0
    completion: int = 0
    cached: int = 0
    """Prompt tokens read from the provider's prompt cache."""
    cache_write: int = 0
    """Prompt tokens written to the provider's prompt cache."""
    reasoning: int = 0


NO_TOKENS = Tokens()


def tokens_of(usage: Usage | None) -> Tokens:
    if not usage:
        return NO_TOKENS
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return Tokens(
        int(usage.get("prompt_tokens") or 0),
        int(usage.get("completion_tokens") or 0),
        int(prompt_details.get("cached_tokens") or 0),
        int(prompt_details.get("cache_creation_tokens") or 0),
        int(completion_details.get("reasoning_tokens") or 0),
    )


class RequestRecord(NamedTuple):
    """What one request did; None where it never got that far (a 401 has no model).

    A named tuple: immutable, and about a tenth of the construction cost of a frozen
    dataclass of this many fields (which sets each one through `object.__setattr__`)."""

    time: float
    """Wall-clock start (Unix seconds)."""
    request_id: str
    method: str
    path: str
    status: int
    latency: float
    """Seconds from the request's arrival to its last byte sent."""
    trace_id: str | None = None
    key_id: str | None = None
    key_name: str | None = None
    team: str | None = None
    end_user: str | None = None
    front_door: str | None = None
    """The dialect's name (`openai.chat`, `anthropic.messages`, ...); None off the model routes."""
    model: str | None = None
    """The public model, after aliases."""
    deployment: str | None = None
    provider: str | None = None
    stream: bool = False
    error_type: str | None = None
    attempts: int = 0
    fallback: str | None = None
    hedged: bool = False
    cache: str | None = None
    rejected_scope: str | None = None
    """For a governance refusal: the kind of scope whose limit refused (`key`, `team`, ...)."""
    tokens: Tokens = NO_TOKENS
    usage_estimated: bool = False
    cost_usd: Decimal | None = None
    unpriced: bool = False
    """Something was served but it has no price (so `cost_usd` is None, not 0)."""
    ttft: float | None = None
    """Streams: seconds from arrival to the first chunk from upstream."""
    upstream: float | None = None
    """Seconds during which at least one upstream attempt was outstanding."""
    overhead: float | None = None
    """`latency - upstream`: the gateway's own time (None when no attempt was made)."""
    cache_saved_usd: Decimal | None = None
    """A response-cache hit: what the answer cost when it was first served."""
    guardrails: tuple[tuple[str, str], ...] = ()
    """Each guardrail that ran and its result (`passed`, `redacted`, `blocked`, ...)."""
    cache_bytes: int = 0
    """Bytes of the response-cache entry read (on a hit) or written (when stored)."""

    @property
    def status_class(self) -> str:
        return f"{self.status // 100}xx"
