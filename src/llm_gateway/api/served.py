"""The response headers that tell a client which deployment served, after how many attempts,
by fallback, hedge or cache; and the request header that turns retries off."""

from __future__ import annotations

from collections.abc import Mapping

from llm_gateway.core.context import Call, RequestContext
from llm_gateway.core.errors import AllDeploymentsFailed, GatewayError

NO_RETRY_HEADER = "x-llm-gateway-no-retry"
CACHE_TTL_HEADER = "x-llm-gateway-cache-ttl"
RawHeaders = list[tuple[bytes, bytes]]


def cache_headers(headers: Mapping[str, str], call: Call) -> None:
    """The client's cache directives (`Cache-Control`, the TTL header) for the cache hook."""
    control = headers.get("cache-control")
    if control:
        call.options["cache_control"] = control
    ttl = headers.get(CACHE_TTL_HEADER)
    if ttl is not None:
        call.options["cache_ttl"] = ttl


def served_headers(ctx: RequestContext) -> RawHeaders:
    headers = _route_headers(ctx)
    if ctx.headers:
        headers.extend(hook_headers(ctx))
    return headers


def hook_headers(ctx: RequestContext) -> RawHeaders:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in ctx.headers]


def _route_headers(ctx: RequestContext) -> RawHeaders:
    route = ctx.route
    if route is None:  # answered without an upstream: a cache hit, a local estimate
        headers = [(b"x-llm-gateway-attempts", b"0")]
        if ctx.cache is not None:
            headers.append((b"x-llm-gateway-cache", ctx.cache.encode()))
        return headers
    headers = [
        (b"x-llm-gateway-provider", route.provider.encode()),
        (b"x-llm-gateway-model", route.model.encode()),
        (b"x-llm-gateway-deployment", route.deployment.encode()),
        (b"x-llm-gateway-attempts", str(route.attempts).encode()),
    ]
    if route.fallback is not None:
        headers.append((b"x-llm-gateway-fallback", route.fallback.encode()))
    if route.hedged:
        headers.append((b"x-llm-gateway-hedged", b"true"))
    return headers


def error_headers(error: GatewayError) -> RawHeaders:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in error.headers.items()]
    if isinstance(error, AllDeploymentsFailed):
        headers.append((b"x-llm-gateway-attempts", str(error.attempts).encode()))
    return headers
