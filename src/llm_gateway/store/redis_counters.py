"""Governance counters shared by every gateway instance through Redis.

Each admission is one Lua script over all of a request's scopes (Redis runs a script
atomically, so no other instance's admission interleaves): it trims what aged out, checks
every scope, and counts the request into all of them or none. Per scope:

    gov:<scope>:req                  sorted set: admission id → admitted at (ms)       rpm
    gov:<scope>:tok, :tok:n, :tok:sum  sorted set, amounts, their sum                  tpm
    gov:<scope>:run                  sorted set: admission id → lease expiry (ms)      max_parallel
    gov:<scope>:<period>:holds, :holds:n, :holds:sum   holds, by expiry               budget
    gov:<scope>:<period>:spent       settled nano-dollars of the period

Slots and holds are leases: this instance renews its running admissions' leases every third
of `lease_ttl`, so a dead instance's slots and holds expire `lease_ttl` after it died and the
next admission trims them. Settling is a second script, guarded by a `SET NX` marker per
admission so a retried settlement applies once. It is not sent at once: it waits up to
`SETTLE_DELAY` to go in one pipeline ahead of this instance's next admission (Redis runs a
connection's commands in order, so that admission sees it applied), which makes a request
one round trip instead of two while requests keep coming. Time is Redis's own (`TIME`), one
clock for every instance, unless a clock is injected (tests). Sums are Redis integers (exact); the
scripts compare them as Lua doubles, exact below 2**53 nano-dollars (about $9M) per scope.

On Redis Cluster every key of one admission must hash to one slot: give `redis_prefix` a
hash tag (`llm-gateway:{gov}:`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

from llm_gateway.store.counters import (
    WINDOW,
    Ask,
    Clock,
    Counters,
    Quota,
    Standing,
    StoreUnavailable,
    Verdict,
    refusal_of,
)

log = logging.getLogger("llm_gateway.governance")

KEYS_PER_SCOPE = 9
SETTLE_RETRIES = (0.2, 1.0, 3.0)
SETTLED_TTL = 600
SETTLE_WAIT = 1.0
SETTLE_DELAY = 0.005
"""Seconds a settlement waits to ride with this instance's next admission (one round trip a
request instead of two: measured, the send is most of a governed request's CPU on Redis)
before it is sent by itself. Other instances see a slot or hold freed this much later."""
MAX_REMEMBERED_SCOPES = 10_000

COMMON = """
local function clock(arg)
  if arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function num(key) return tonumber(redis.call('GET', key) or '0') end
local function int(x) return string.format('%.0f', x) end
"""

ADMIT = (
    COMMON
    + """
local now = clock(ARGV[1])
local id, tokens, hold = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local lease, window, apply = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7] == '1'

local function trim(zset, amounts, total, cutoff)
  while true do
    local gone = redis.call('ZRANGEBYSCORE', zset, '-inf', cutoff, 'LIMIT', 0, 500)
    if #gone == 0 then return end
    local sum = 0
    for _, v in ipairs(redis.call('HMGET', amounts, unpack(gone))) do
      if v then sum = sum + tonumber(v) end
    end
    redis.call('ZREM', zset, unpack(gone))
    redis.call('HDEL', amounts, unpack(gone))
    if sum ~= 0 then redis.call('DECRBY', total, int(sum)) end
    if #gone < 500 then return end
  end
end
local function oldest(zset)
  local first = redis.call('ZRANGE', zset, 0, 0, 'WITHSCORES')
  if #first == 0 then return -1 end
  return tonumber(first[2])
end
local function fit_at(zset, amounts, total, limit)
  if tokens > limit then return -1 end
  if total + tokens <= limit then return now end
  local left = total
  local entries = redis.call('ZRANGE', zset, 0, -1, 'WITHSCORES')
  for i = 1, #entries, 2 do
    left = left - tonumber(redis.call('HGET', amounts, entries[i]) or '0')
    if left + tokens <= limit then return tonumber(entries[i + 1]) + window end
  end
  return now
end

local n = (#KEYS - 1) / 9
local out = {0, now}
local fits = true
for i = 0, n - 1 do
  local k, a = 1 + i * 9, 8 + i * 5
  local rpm, tpm = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local par, budget = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  redis.call('ZREMRANGEBYSCORE', KEYS[k + 1], '-inf', now - window)
  trim(KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], now - window)
  redis.call('ZREMRANGEBYSCORE', KEYS[k + 5], '-inf', now)
  trim(KEYS[k + 6], KEYS[k + 7], KEYS[k + 8], now)
  local requests, used = redis.call('ZCARD', KEYS[k + 1]), num(KEYS[k + 4])
  local running, spent, held = redis.call('ZCARD', KEYS[k + 5]), num(KEYS[k + 9]), num(KEYS[k + 8])
  local fit = now
  if tpm >= 0 then fit = fit_at(KEYS[k + 2], KEYS[k + 3], used, tpm) end
  if rpm >= 0 and requests + 1 > rpm then fits = false end
  if tpm >= 0 and used + tokens > tpm then fits = false end
  if par >= 0 and running + 1 > par then fits = false end
  if budget >= 0 and spent + held + math.max(hold, 1) > budget then fits = false end
  for _, v in ipairs({requests, oldest(KEYS[k + 1]), int(used), fit, oldest(KEYS[k + 2]),
                      running, int(spent), int(held)}) do
    table.insert(out, v)
  end
end
if not (fits and apply) then return out end
out[1] = 1
for i = 0, n - 1 do
  local k, a = 1 + i * 9, 8 + i * 5
  if tonumber(ARGV[a]) >= 0 then
    redis.call('ZADD', KEYS[k + 1], now, id)
    redis.call('PEXPIRE', KEYS[k + 1], window + 1000)
  end
  if tonumber(ARGV[a + 1]) >= 0 then
    redis.call('ZADD', KEYS[k + 2], now, id)
    redis.call('HSET', KEYS[k + 3], id, ARGV[3])
    redis.call('INCRBY', KEYS[k + 4], ARGV[3])
    for j = 2, 4 do redis.call('PEXPIRE', KEYS[k + j], window + lease) end
  end
  if tonumber(ARGV[a + 2]) >= 0 then
    redis.call('ZADD', KEYS[k + 5], now + lease, id)
    redis.call('PEXPIRE', KEYS[k + 5], 2 * lease)
  end
  if tonumber(ARGV[a + 3]) >= 0 and hold > 0 then
    redis.call('ZADD', KEYS[k + 6], now + lease, id)
    redis.call('HSET', KEYS[k + 7], id, ARGV[4])
    redis.call('INCRBY', KEYS[k + 8], ARGV[4])
    for j = 6, 8 do redis.call('PEXPIRE', KEYS[k + j], 2 * lease) end
  end
end
return out
"""
)

RENEW = (
    COMMON
    + """
local now, lease, id = clock(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
for k = 2, #KEYS, 9 do
  if redis.call('ZADD', KEYS[k + 4], 'XX', 'CH', now + lease, id) == 1 then
    redis.call('PEXPIRE', KEYS[k + 4], 2 * lease)
  end
  if redis.call('ZADD', KEYS[k + 5], 'XX', 'CH', now + lease, id) == 1 then
    for j = 5, 7 do redis.call('PEXPIRE', KEYS[k + j], 2 * lease) end
  end
end
return 1
"""
)

SETTLE = (
    COMMON
    + """
local id, tokens, cost, refund = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == '1'
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[5]) then return 0 end
local n = (#KEYS - 1) / 9
for i = 0, n - 1 do
  local k, a = 1 + i * 9, 6 + i * 2
  redis.call('ZREM', KEYS[k + 5], id)
  local h = redis.call('HGET', KEYS[k + 7], id)
  if h then
    redis.call('HDEL', KEYS[k + 7], id)
    redis.call('ZREM', KEYS[k + 6], id)
    redis.call('DECRBY', KEYS[k + 8], h)
  end
  if cost >= 0 and ARGV[a] == '1' then
    redis.call('INCRBY', KEYS[k + 9], ARGV[3])
    local ttl = tonumber(ARGV[a + 1])
    if ttl > 0 then redis.call('EXPIRE', KEYS[k + 9], ttl) end
  end
  local t = redis.call('HGET', KEYS[k + 3], id)
  if refund then
    redis.call('ZREM', KEYS[k + 1], id)
    if t then
      redis.call('HDEL', KEYS[k + 3], id)
      redis.call('ZREM', KEYS[k + 2], id)
      redis.call('DECRBY', KEYS[k + 4], t)
    end
  elseif tokens >= 0 and t then
    redis.call('HSET', KEYS[k + 3], id, ARGV[2])
    redis.call('INCRBY', KEYS[k + 4], int(tokens - tonumber(t)))
  end
end
return 1
"""
)


@dataclass(frozen=True, slots=True)
class _Settlement:
    ask: Ask
    keys: list[str]
    args: list[Any]


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _limit(value: int | None) -> int:
    return -1 if value is None else value


class RedisCounters(Counters):
    def __init__(
        self,
        url: str,
        prefix: str = "llm-gateway:",
        *,
        lease_ttl: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        self._redis = aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._prefix = f"{prefix}gov:"
        self._lease_ms = int(lease_ttl * 1000)
        self._clock = clock
        self._admit = self._redis.register_script(ADMIT)
        self._renew = self._redis.register_script(RENEW)
        self._settle = self._redis.register_script(SETTLE)
        self._active: dict[str, Ask] = {}
        self._queued: list[_Settlement] = []
        """Settlements not sent yet: they ride with this instance's next admission."""
        self._send_timer: asyncio.TimerHandle | None = None
        self._settling: set[asyncio.Future[None]] = set()
        self._settling_in: dict[str, set[asyncio.Future[None]]] = {}
        """Settlements under way by scope, which an admission to a slot or budget there awaits."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._scope_keys: dict[tuple[str, str], list[str]] = {}
        self._renewer: asyncio.Task[None] | None = None

    def _now(self) -> str:
        return "" if self._clock is None else str(int(self._clock() * 1000))

    def _keys(self, ask_id: str, quotas: Sequence[Quota]) -> list[str]:
        keys = [f"{self._prefix}settled:{ask_id}"]
        for q in quotas:
            keys += self._keys_of(q)
        return keys

    def _keys_of(self, q: Quota) -> list[str]:
        """A scope's nine keys in this period, made once (every request needs them twice)."""
        found = self._scope_keys.get((q.scope, q.period))
        if found is None:
            if len(self._scope_keys) >= MAX_REMEMBERED_SCOPES:
                self._scope_keys.clear()
            scope, budget = f"{self._prefix}{q.scope}", f"{self._prefix}{q.scope}:{q.period}"
            found = [f"{scope}:req", f"{scope}:tok", f"{scope}:tok:n", f"{scope}:tok:sum", f"{scope}:run"]
            found += [f"{budget}:holds", f"{budget}:holds:n", f"{budget}:holds:sum", f"{budget}:spent"]
            self._scope_keys[(q.scope, q.period)] = found
        return found

    async def admit(self, ask: Ask) -> Verdict:
        # A client that sends its next request as soon as the last answered must find that
        # one's slot free and its spend settled: wait for this instance's settlements there
        # that are on their way; those not sent yet go first in this admission's round trip.
        pending = [
            future
            for q in ask.quotas
            if q.max_parallel is not None or q.budget is not None
            for future in self._settling_in.get(q.scope, ())
        ]
        if pending:
            await asyncio.wait(pending, timeout=SETTLE_WAIT)
        verdict = await self._run_admit(ask, apply=True, riding=self._take_queued())
        if verdict.admitted:
            self._active[ask.id] = ask
        return verdict

    async def standing(self, quota: Quota) -> Standing:
        verdict = await self._run_admit(Ask("-", (quota,)), apply=False)
        return verdict.standings[0]

    async def _run_admit(self, ask: Ask, *, apply: bool, riding: list[_Settlement] | None = None) -> Verdict:
        args: list[Any] = [self._now(), ask.id, ask.tokens, ask.hold, self._lease_ms, int(WINDOW * 1000)]
        args.append("1" if apply else "0")
        for q in ask.quotas:
            args += [_limit(q.rpm), _limit(q.tpm), _limit(q.max_parallel), _limit(q.budget), 0]
        keys = self._keys(ask.id, ask.quotas)
        try:
            if riding:
                reply = await self._admit_after(riding, keys, args)
            else:
                reply = await self._admit(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"Redis: {exc}") from exc
        now = int(reply[1]) / 1000
        standings = tuple(_standing(q.scope, reply[2 + i * 8 : 10 + i * 8]) for i, q in enumerate(ask.quotas))
        admitted = bool(int(reply[0]))
        refusal = None if admitted or not apply else refusal_of(ask, standings, now)
        return Verdict(admitted, now, standings, refusal)

    async def _admit_after(self, riding: list[_Settlement], keys: list[str], args: list[Any]) -> Any:
        """The admission script after the `riding` settlements, in one pipeline: Redis runs one
        connection's commands in order, so the admission sees them applied. Settlements that
        fail here (or whose fate is unknown: an error, a cancellation) are sent again on their
        own; a settlement applies once however often it is sent."""
        applied = self._under_way(riding)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for settlement in riding:
                    pipe.evalsha(self._settle.sha, len(settlement.keys), *settlement.keys, *settlement.args)
                pipe.evalsha(self._admit.sha, len(keys), *keys, *args)
                replies = await pipe.execute(raise_on_error=False)
        except BaseException:
            self._send_later(riding, applied)
            raise
        failed = [s for s, reply in zip(riding, replies, strict=False) if isinstance(reply, Exception)]
        if failed:
            self._send_later(failed, applied)
        else:
            applied.set_result(None)
        reply = replies[-1]
        if isinstance(reply, NoScriptError):  # Redis restarted or flushed its scripts: load, rerun
            return await self._admit(keys=keys, args=args)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def settle(self, ask: Ask, *, tokens: int | None, cost: int | None, refund: bool = False) -> None:
        self._active.pop(ask.id, None)
        args: list[Any] = [ask.id, _limit(tokens), _limit(cost), "1" if refund else "0", SETTLED_TTL]
        for q in ask.quotas:
            args += ["1" if q.budget is not None else "0", q.period_ttl or 0]
        self._queued.append(_Settlement(ask, self._keys(ask.id, ask.quotas), args))
        if self._send_timer is None:
            self._send_timer = asyncio.get_running_loop().call_later(SETTLE_DELAY, self._send_queued)

    def _take_queued(self) -> list[_Settlement]:
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None
        queued, self._queued = self._queued, []
        return queued

    def _send_queued(self) -> None:
        """No admission came for them in time: send the queued settlements by themselves."""
        queued = self._take_queued()
        if queued:
            self._send_later(queued, self._under_way(queued))

    def _under_way(self, batch: list[_Settlement]) -> asyncio.Future[None]:
        """A future done once `batch` is applied (or given up on), which this instance's
        admissions to the batch's scopes wait for."""
        applied: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        scopes = {q.scope for settlement in batch for q in settlement.ask.quotas}
        self._settling.add(applied)
        for scope in scopes:
            self._settling_in.setdefault(scope, set()).add(applied)
        applied.add_done_callback(lambda done: self._settled(done, scopes))
        return applied

    def _settled(self, applied: asyncio.Future[None], scopes: set[str]) -> None:
        self._settling.discard(applied)
        for scope in scopes:
            futures = self._settling_in.get(scope)
            if futures is not None:
                futures.discard(applied)
                if not futures:
                    del self._settling_in[scope]

    def _send_later(self, batch: list[_Settlement], applied: asyncio.Future[None]) -> None:
        task = asyncio.get_running_loop().create_task(self._settle_with_retries(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: _resolve(applied))

    async def _settle_with_retries(self, batch: list[_Settlement]) -> None:
        for delay in (*SETTLE_RETRIES, None):
            try:
                batch = await self._send_settlements(batch)
                if not batch:
                    return
                error: Exception | None = None
            except (RedisError, OSError) as exc:
                error = exc
            if delay is None:
                # Their slots and holds expire by themselves; the spend is what is lost.
                for settlement in batch:
                    cost = settlement.args[2]
                    log.error(
                        "could not settle admission %s (cost %s nano-USD): %s", settlement.ask.id, cost, error
                    )
                return
            await asyncio.sleep(delay)

    async def _send_settlements(self, batch: list[_Settlement]) -> list[_Settlement]:
        """The batch in one round trip (and once more after loading the script, if Redis
        lost it); the settlements whose script failed."""
        for _ in range(2):
            async with self._redis.pipeline(transaction=False) as pipe:
                for settlement in batch:
                    pipe.evalsha(self._settle.sha, len(settlement.keys), *settlement.keys, *settlement.args)
                replies = await pipe.execute(raise_on_error=False)
            batch = [s for s, reply in zip(batch, replies, strict=True) if isinstance(reply, Exception)]
            if not any(isinstance(reply, NoScriptError) for reply in replies):
                break
            self._settle.sha = await self._redis.script_load(SETTLE)
        return batch

    async def renew(self) -> None:
        """Extend the leases of this instance's running admissions by `lease_ttl`."""
        active = list(self._active.values())
        if not active:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for ask in active:
                await self._renew(
                    keys=self._keys(ask.id, ask.quotas),
                    args=[self._now(), self._lease_ms, ask.id],
                    client=pipe,
                )
            await pipe.execute()

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            try:
                await self.renew()
            except (RedisError, OSError) as exc:
                log.warning("could not renew %d lease(s) in Redis: %s", len(self._active), exc)

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"Redis: {exc}") from exc

    async def start(self) -> None:
        self._renewer = asyncio.get_running_loop().create_task(self._renew_forever())

    async def drain(self) -> None:
        self._send_queued()
        while self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)

    async def aclose(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), timeout=5)
        await self._redis.aclose()


def _standing(scope: str, values: Sequence[Any]) -> Standing:
    requests, oldest_request, tokens, fit, oldest_tokens, parallel, spent, held = (int(v) for v in values)
    return Standing(
        scope,
        requests=requests,
        oldest_request=None if oldest_request < 0 else oldest_request / 1000,
        tokens=tokens,
        tokens_fit_at=None if fit < 0 else fit / 1000,
        oldest_tokens=None if oldest_tokens < 0 else oldest_tokens / 1000,
        parallel=parallel,
        spent=spent,
        held=held,
    )
