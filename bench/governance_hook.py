"""The governance hook's own cost per request, in-process: no server, no network, no noise
from the HTTP stack, so a change to the hook reads off directly.

The benchmark's request (one short chat message, `max_tokens` 64) runs through the request
pipeline over an in-process stub upstream (`tests/stubs.py`), once with the governance hook
and a virtual key like `bench/governed.py`'s (rpm, tpm and a monthly budget, counters in
process, the spend log in memory) and once with no hook; the difference is the hook. Rounds
alternate between the two and the fastest of each is kept (the least disturbed by other
load on the machine). CPU time, not wall time.

Usage: ``.venv/bin/python bench/governance_hook.py [--requests 2000] [--rounds 7]``; run it
with ``PYTHONPATH=<checkout>/src`` to measure another checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # tests.stubs

from tests.stubs import StubProvider, no_sleep, stub_catalog

from llm_gateway.core.config import GatewayConfig
from llm_gateway.core.context import Call, Limits, Operation, Principal, RequestContext, Scope
from llm_gateway.core.governance_config import GovernanceSettings
from llm_gateway.routing.executor import Executor
from llm_gateway.services.costing import PricedCosting
from llm_gateway.services.governance import GovernanceHook
from llm_gateway.services.hooks import Hook, HookChain
from llm_gateway.services.pipeline import Pipeline
from llm_gateway.services.pricing import PriceBook
from llm_gateway.store.counters import LocalCounters
from llm_gateway.store.spend import MemorySink, SpendLog

MODEL = "bench-model"
MODELS = {
    MODEL: {
        "deployments": [
            {"provider": "up", "model": MODEL, "pricing": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}
        ]
    }
}
LIMITS = Limits(rpm=10**9, tpm=10**12, budget_usd=Decimal(1_000_000), budget_period="monthly")
PRINCIPAL = Principal("key", key_id="k1", scopes=(Scope("key", "k1", "bench", LIMITS),))


class Rig:
    def __init__(self, governed: bool) -> None:
        self.upstream = StubProvider("up")
        catalog = stub_catalog([self.upstream], MODELS)
        config = GatewayConfig.model_validate({"providers": {"up": self.upstream.settings}, "models": MODELS})
        self.spend = SpendLog(MemorySink())
        hooks: list[Hook] = []
        if governed:
            costing = PricedCosting(PriceBook(config), catalog)
            hooks.append(GovernanceHook(GovernanceSettings(), LocalCounters(), costing, catalog, self.spend))
        executor = Executor(random.Random(0), catalog=catalog, sleep=no_sleep)
        self.pipeline = Pipeline(catalog, executor, HookChain(hooks))

    async def round(self, requests: int) -> float:
        """CPU µs per request over `requests` requests."""
        started = time.process_time()
        for index in range(requests):
            ctx = RequestContext(f"req-{index}", PRINCIPAL, "openai")
            body = {
                "model": MODEL,
                "messages": [{"role": "user", "content": "Say hello in one short sentence."}],
                "max_tokens": 64,
            }
            await self.pipeline.complete(ctx, Call(Operation.CHAT, body, model=MODEL))
        await self.spend.flush()
        self.upstream.requests.clear()
        return (time.process_time() - started) / requests * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    governed, bare = Rig(governed=True), Rig(governed=False)
    await governed.round(args.requests // 4)  # warm: encodings, price lookups, caches
    await bare.round(args.requests // 4)
    on, off = [], []
    for _ in range(args.rounds):
        on.append(await governed.round(args.requests))
        off.append(await bare.round(args.requests))
    print(
        f"governed {min(on):.1f} µs, no hook {min(off):.1f} µs: "
        f"the governance hook costs {min(on) - min(off):.1f} µs of CPU a request"
    )


if __name__ == "__main__":
    asyncio.run(main())
