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
admission so a retried settlement applies once.

Round trips, not scripts, are most of what governance costs on Redis (the socket send and
the wake-ups, measured: docs/performance.md), so the admissions of one turn of the event
loop go in one pipeline, and a settlement is not sent at once: it waits up to
`SETTLE_DELAY` to go ahead of this instance's next admissions in their pipeline (Redis runs
a connection's commands in order, so they see it applied). While requests keep coming, a
request costs one round trip or less instead of two. Time is Redis's own (`TIME`), one
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
from llm_gateway.store.redis_scripts import ADMIT, RENEW, SETTLE

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


Key = str | bytes


@dataclass(frozen=True, slots=True)
class _Admission:
    keys: list[Key]
    args: list[Any]
    reply: asyncio.Future[Any]


@dataclass(frozen=True, slots=True)
class _Settlement:
    ask: Ask
    keys: list[Key]
    args: list[Any]


def _answer(reply: asyncio.Future[Any], value: Any) -> None:
    """An admission's reply, or its failure (a Redis or socket error as `StoreUnavailable`);
    nothing when the admission's caller has gone (the future is cancelled)."""
    if reply.done():
        return
    if isinstance(value, RedisError | OSError):
        reply.set_exception(StoreUnavailable(f"Redis: {value}"))
    elif isinstance(value, BaseException):
        reply.set_exception(value if isinstance(value, Exception) else StoreUnavailable("Redis: cancelled"))
    else:
        reply.set_result(value)


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
        self._admissions: list[_Admission] = []
        """Admissions of this turn of the event loop, sent together at its end."""
        self._queued: list[_Settlement] = []
        """Settlements not sent yet: they ride with this instance's next admission."""
        self._send_timer: asyncio.TimerHandle | None = None
        self._settling: set[asyncio.Future[None]] = set()
        self._settling_in: dict[str, set[asyncio.Future[None]]] = {}
        """Settlements under way by scope, which an admission to a slot or budget there awaits."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._scripts_loaded = False
        self._scope_keys: dict[tuple[str, str], list[Key]] = {}
        self._renewer: asyncio.Task[None] | None = None

    def _now(self) -> str:
        return "" if self._clock is None else str(int(self._clock() * 1000))

    def _keys(self, ask_id: str, quotas: Sequence[Quota]) -> list[Key]:
        keys: list[Key] = [f"{self._prefix}settled:{ask_id}"]
        for q in quotas:
            keys += self._keys_of(q)
        return keys

    def _keys_of(self, q: Quota) -> list[Key]:
        """A scope's nine keys in this period, made once (every request needs them twice),
        encoded once: redis-py sends bytes as they are and encodes every `str` it is given."""
        found = self._scope_keys.get((q.scope, q.period))
        if found is None:
            if len(self._scope_keys) >= MAX_REMEMBERED_SCOPES:
                self._scope_keys.clear()
            scope, budget = f"{self._prefix}{q.scope}", f"{self._prefix}{q.scope}:{q.period}"
            names = [f"{scope}:req", f"{scope}:tok", f"{scope}:tok:n", f"{scope}:tok:sum", f"{scope}:run"]
            names += [f"{budget}:holds", f"{budget}:holds:n", f"{budget}:holds:sum", f"{budget}:spent"]
            found = [name.encode() for name in names]
            self._scope_keys[(q.scope, q.period)] = found
        return found

    async def admit(self, ask: Ask) -> Verdict:
        # A client that sends its next request as soon as the last answered must find that
        # one's slot free and its spend settled: wait for this instance's settlements there
        # that are on their way; those not sent yet go first in this admission's pipeline.
        pending = [
            future
            for q in ask.quotas
            if q.max_parallel is not None or q.budget is not None
            for future in self._settling_in.get(q.scope, ())
        ]
        if pending:
            await asyncio.wait(pending, timeout=SETTLE_WAIT)
        verdict = await self._run_admit(ask, apply=True)
        if verdict.admitted:
            self._active[ask.id] = ask
        return verdict

    async def standing(self, quota: Quota) -> Standing:
        verdict = await self._run_admit(Ask("-", (quota,)), apply=False)
        return verdict.standings[0]

    async def _run_admit(self, ask: Ask, *, apply: bool) -> Verdict:
        args: list[Any] = [self._now(), ask.id, ask.tokens, ask.hold, self._lease_ms, int(WINDOW * 1000)]
        args.append("1" if apply else "0")
        for q in ask.quotas:
            args += [_limit(q.rpm), _limit(q.tpm), _limit(q.max_parallel), _limit(q.budget), 0]
        reply = await self._submit(self._keys(ask.id, ask.quotas), args)
        now = int(reply[1]) / 1000
        standings = tuple(_standing(q.scope, reply[2 + i * 8 : 10 + i * 8]) for i, q in enumerate(ask.quotas))
        admitted = bool(int(reply[0]))
        refusal = None if admitted or not apply else refusal_of(ask, standings, now)
        return Verdict(admitted, now, standings, refusal)

    def _submit(self, keys: list[Key], args: list[Any]) -> asyncio.Future[Any]:
        """The admission script's reply, sent with every other admission of this turn of the
        event loop in one round trip (`_send_turn`); `StoreUnavailable` when it failed."""
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Any] = loop.create_future()
        self._admissions.append(_Admission(keys, args, reply))
        if len(self._admissions) == 1:
            loop.call_soon(self._send_turn)
        return reply

    def _send_turn(self) -> None:
        admissions, self._admissions = self._admissions, []
        task = asyncio.get_running_loop().create_task(self._send_batch(admissions, self._take_queued()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_batch(self, admissions: list[_Admission], riding: list[_Settlement]) -> None:
        """The settlements not sent yet, then the admissions, in one pipeline: Redis runs a
        connection's commands in order, so the admissions see the settlements applied, and
        each script still runs atomically. A settlement that fails here (or whose fate is
        unknown: an error, a cancellation) is sent again by itself; it applies once however
        often it is sent."""
        applied = self._under_way(riding) if riding else None
        try:
            if not self._scripts_loaded:
                await self._load_scripts()
            async with self._redis.pipeline(transaction=False) as pipe:
                for settlement in riding:
                    pipe.evalsha(self._settle.sha, len(settlement.keys), *settlement.keys, *settlement.args)
                for admission in admissions:
                    pipe.evalsha(self._admit.sha, len(admission.keys), *admission.keys, *admission.args)
                replies = await pipe.execute(raise_on_error=False)
        except BaseException as exc:
            if applied is not None:
                self._send_later(riding, applied)
            for admission in admissions:
                _answer(admission.reply, exc)
            if not isinstance(exc, Exception):
                raise
            return
        if any(isinstance(reply, NoScriptError) for reply in replies):
            self._scripts_loaded = False  # Redis restarted or flushed its scripts
        if applied is not None:
            failed = [s for s, reply in zip(riding, replies, strict=False) if isinstance(reply, Exception)]
            if failed:  # once more now, before any admission behind them runs again
                with contextlib.suppress(RedisError, OSError):
                    failed = await self._send_settlements(failed)
            if failed:
                self._send_later(failed, applied)
            else:
                applied.set_result(None)
        for admission, reply in zip(admissions, replies[len(riding) :], strict=True):
            if isinstance(reply, NoScriptError):  # not run: load the script, run it alone
                try:
                    reply = await self._admit(keys=admission.keys, args=admission.args)
                except (RedisError, OSError) as exc:
                    reply = exc
            _answer(admission.reply, reply)

    async def _load_scripts(self) -> None:
        """Load the scripts a pipeline calls by hash before its first use (a pipeline cannot
        load one half-way, and a settlement that fails there is not seen by the admissions
        behind it)."""
        for script in (self._admit, self._settle):
            script.sha = await self._redis.script_load(script.script)
        self._scripts_loaded = True

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
