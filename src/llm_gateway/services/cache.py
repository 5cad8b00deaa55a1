"""The response cache hook: an exact-match answer for a request seen before, per tenant.

    before   the cache's settings for this model and caller (model `cache:`, then the team's
             and key's `cache` metadata) → the key: a digest of the model group, its
             deployment set, the operation, the whole body after templates and policies
             (every parameter but `stream`/`stream_options`) and the tenant scope → a hit
             answers (a stream is replayed in the client's dialect), a miss goes on
    after    a complete 2xx answer is stored (never an error, an answer calling tools only
             with `tool_calls: true`), with its cost
    streams  a chat or Messages stream that ends normally is stored as the completion or
             message it spells out (`wrap_stream`); a failed, cut or abandoned one never is

Scope `team` (the default) shares answers within the caller's team, or the key's own when
it has none; `key` within a key; `global` across tenants only when configured so. The
master key and open access are tenants of their own. Clients steer it with
`Cache-Control: no-cache` (skip the lookup), `no-store` (do not store) and
`x-llm-gateway-cache-ttl: <seconds>` (a shorter TTL, and no answer older than it). Every
response on a cache-enabled model says `x-llm-gateway-cache: hit|miss|bypass`.

After governance in the chain: a hit is admitted (it counts as a request) but costs
nothing (its spend row says `hit` and the cost saved) and settles no tokens.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from llm_gateway.core.config import GatewayConfig
from llm_gateway.core.context import Call, Operation, Principal, RequestContext
from llm_gateway.core.errors import InvalidRequest
from llm_gateway.core.policy_config import CacheSettings
from llm_gateway.routing.deployments import ModelCatalog
from llm_gateway.services.cache_replay import ChatCollector, MessageCollector, chat_chunks, message_events
from llm_gateway.services.costing import Costing, PricedCosting
from llm_gateway.services.hooks import Answer, Hook
from llm_gateway.services.pricing import PriceBook
from llm_gateway.store.response_cache import CacheStore, MemoryCache

CACHE_HEADER = "x-llm-gateway-cache"
TTL_HEADER = "x-llm-gateway-cache-ttl"
EXTRAS_KEY = "cache"
CACHED = (Operation.CHAT, Operation.MESSAGES)
UNKEYED = ("stream", "stream_options")
"""Fields that change how an answer is delivered, not what it says."""


@dataclass(frozen=True, slots=True)
class Lookup:
    key: str
    ttl: float
    keep: bool
    """False under `no-store`."""
    settings: CacheSettings
    store: CacheStore


@dataclass(frozen=True, slots=True)
class Entry:
    at: float
    """When it was stored (wall-clock seconds)."""
    cost: Decimal | None
    value: Any


def decoded(raw: bytes | None) -> Entry | None:
    """A stored entry, or None for none or one this version cannot read (then it is a miss)."""
    if raw is None:
        return None
    try:
        entry = orjson.loads(raw)
        cost = entry.get("cost")
        return Entry(float(entry["at"]), None if cost is None else Decimal(cost), entry["value"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, ArithmeticError, AttributeError):
        return None


def tenant(principal: Principal, scope: str) -> list[str]:
    """Whose answers a request may share. Never global unless the settings say `global`."""
    if scope == "global":
        return ["global"]
    if scope == "team" and principal.team_id is not None:
        return ["team", principal.team_id]
    if principal.key_id is not None:
        return ["key", principal.key_id]
    return ["principal", principal.kind]


def cache_key(call: Call, deployments: list[str], owner: list[str]) -> str:
    body = {name: value for name, value in call.body.items() if name not in UNKEYED}
    material = [
        str(call.operation),
        call.model,
        deployments,
        owner,
        body,
        call.options.get("beta"),
        call.options.get("version"),
    ]
    return hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()


def client_directives(call: Call) -> tuple[bool, bool, float | None]:
    """(no-cache, no-store, the client's TTL) from the request's headers."""
    control = str(call.options.get("cache_control") or "").lower()
    tokens = {part.strip().split("=", 1)[0] for part in control.split(",")}
    raw = call.options.get("cache_ttl")
    ttl: float | None = None
    if raw is not None:
        try:
            ttl = float(raw)
        except ValueError:
            ttl = -1.0
        if not ttl >= 0 or ttl != ttl or ttl == float("inf"):
            raise InvalidRequest(f"'{TTL_HEADER}' must be a number of seconds", param=TTL_HEADER)
    return "no-cache" in tokens, "no-store" in tokens or ttl == 0, ttl


def storable(call: Call, value: Any, settings: CacheSettings) -> bool:
    """A complete answer, calling no tool unless tool calls are cached too."""
    if not isinstance(value, dict):
        return False
    if call.operation is Operation.CHAT:
        choices = value.get("choices")
        if not choices or any(c.get("finish_reason") is None for c in choices):
            return False
        calls = any((c.get("message") or {}).get("tool_calls") for c in choices)
    else:
        if value.get("type") != "message" or value.get("stop_reason") is None:
            return False
        calls = any(block.get("type") == "tool_use" for block in value.get("content") or [])
    return settings.tool_calls or not calls


class CacheHook(Hook):
    name = "cache"

    def __init__(
        self,
        models: Mapping[str, CacheSettings],
        defaults: CacheSettings | None,
        stores: Mapping[str, CacheStore],
        catalog: ModelCatalog,
        costing: Costing | None = None,
    ) -> None:
        self._models = dict(models)
        self._defaults = defaults
        self._stores = dict(stores)
        """By model name, and `""` for the defaults' store."""
        self._catalog = catalog
        self._costing = costing
        self._deployments: dict[str, list[str]] = {}

    def settings(self, ctx: RequestContext, call: Call) -> tuple[CacheSettings, CacheStore] | None:
        model = call.model or ""
        settings, store = self._models.get(model), self._stores.get(model)
        for scope in ctx.principal.scopes:  # key first, then team: the key's word is final
            if scope.kind not in ("key", "team"):
                continue
            chosen = scope.metadata.get("cache")
            if chosen is False:
                return None
            if isinstance(chosen, dict):
                base = settings or self._defaults
                if base is None:
                    continue
                allowed = {k: v for k, v in chosen.items() if k in ("ttl", "scope", "tool_calls")}
                settings = CacheSettings.model_validate({**base.model_dump(), **allowed})
                store = store or self._stores.get("")
                break
        if settings is None or store is None:
            return None
        return settings, store

    def _deployment_set(self, model: str) -> list[str]:
        known = self._deployments.get(model)
        if known is None:
            known = sorted(target.key for target in self._catalog.group(model).targets)
            self._deployments[model] = known
        return known

    async def before(self, ctx: RequestContext, call: Call) -> Answer | None:
        if call.operation not in CACHED:
            return None
        chosen = self.settings(ctx, call)
        if chosen is None:
            return None
        settings, store = chosen
        no_cache, no_store, client_ttl = client_directives(call)
        key = cache_key(call, self._deployment_set(call.model or ""), tenant(ctx.principal, settings.scope))
        ttl = settings.ttl if client_ttl is None else min(settings.ttl, client_ttl)
        ctx.extras[EXTRAS_KEY] = Lookup(key, ttl, not no_store, settings, store)
        if no_cache:
            self._status(ctx, "bypass")
            return None
        raw = await store.get(key)
        entry = decoded(raw)
        if raw is None or entry is None or (client_ttl is not None and time.time() - entry.at > client_ttl):
            self._status(ctx, "miss")
            return None
        ctx.cache = "hit"
        ctx.cache_saved_usd = entry.cost
        ctx.cache_bytes = len(raw)
        return Answer(self._replay(call, entry.value) if call.stream else entry.value)

    @staticmethod
    def _status(ctx: RequestContext, status: str) -> None:
        ctx.cache = status
        ctx.headers.append((CACHE_HEADER, status))

    @staticmethod
    def _replay(call: Call, value: Any) -> Any:
        if call.operation is Operation.CHAT:
            options = call.body.get("stream_options")
            include = isinstance(options, dict) and bool(options.get("include_usage"))
            return chat_chunks(value, include)
        return message_events(value)

    async def after(self, ctx: RequestContext, call: Call, value: Any) -> Any:
        lookup = ctx.extras.get(EXTRAS_KEY)
        if not isinstance(lookup, Lookup) or ctx.cache == "hit" or not lookup.keep or lookup.ttl <= 0:
            return value
        if not storable(call, value, lookup.settings):
            return value
        await self._store(ctx, lookup, value)
        return value

    async def _store(self, ctx: RequestContext, lookup: Lookup, value: Any) -> None:
        cost = self._costing.cost(ctx) if self._costing is not None else None
        entry = {"at": time.time(), "cost": None if cost is None else str(cost), "value": value}
        raw = orjson.dumps(entry)
        await lookup.store.put(lookup.key, raw, lookup.ttl)
        ctx.cache_bytes = len(raw)

    def wrap_stream(self, ctx: RequestContext, call: Call, chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """A chat or Messages stream that ends normally fills the cache (as the completion or
        message it spells out); one that fails, is cut or is closed early stores nothing."""
        lookup = ctx.extras.get(EXTRAS_KEY)
        if call.operation not in CACHED or ctx.cache == "hit" or not isinstance(lookup, Lookup):
            return chunks
        if not lookup.keep or lookup.ttl <= 0:
            return chunks
        return self._filling(ctx, call, chunks, lookup)

    async def _filling(
        self, ctx: RequestContext, call: Call, chunks: AsyncIterator[Any], lookup: Lookup
    ) -> AsyncIterator[Any]:
        collector: ChatCollector | MessageCollector
        collector = ChatCollector() if call.operation is Operation.CHAT else MessageCollector()
        try:
            async for chunk in chunks:
                if not collector.lossy:
                    collector.feed(chunk)
                yield chunk
            if isinstance(collector, ChatCollector):
                completion = collector.completion(ctx.usage)
            else:
                completion = collector.message()
            if completion is not None and storable(call, completion, lookup.settings):
                await self._store(ctx, lookup, completion)
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    async def start(self) -> None:
        return None  # stores connect on first use

    async def aclose(self) -> None:
        for store in {id(store): store for store in self._stores.values()}.values():
            await store.aclose()


def build_cache(config: GatewayConfig, catalog: ModelCatalog, costing: Costing | None) -> CacheHook | None:
    """The cache hook when a model has `cache:` or top-level `cache:` is set (the defaults for
    keys and teams that turn it on), else None: no cost when unconfigured. `costing` prices
    what a hit saves (governance's, else a price book of its own)."""
    models = {name: group.cache for name, group in config.models.items() if group.cache is not None}
    if not models and config.cache is None:
        return None
    stores: dict[str, CacheStore]
    if config.redis_url is not None:
        from llm_gateway.store.redis_cache import RedisCache  # redis-py only when configured

        shared = RedisCache(config.redis_url.get_secret_value(), config.redis_prefix)
        stores = dict.fromkeys([*models, ""], shared)
    else:
        stores = {name: MemoryCache(settings.max_entries) for name, settings in models.items()}
        stores[""] = MemoryCache(config.cache.max_entries if config.cache is not None else 1000)
    costing = costing or PricedCosting(PriceBook(config), catalog)
    return CacheHook(models, config.cache, stores, catalog, costing)
