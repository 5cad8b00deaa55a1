"""What output guardrails cost per streamed chunk, in-process (no server, no network).

A streamed chat answer of `--chunks` chunks of a few characters each (the size of one
token) is read through the hook chain's stream twice: with no hook, and with the
guardrail set of bench/gateway-guardrails.yaml. The difference per chunk is the scanner's
cost; `make bench` measures what the same set adds to a request's time to first token.

    python bench/guardrail_stream.py [--chunks 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml

from llm_gateway.core.config import GatewayConfig
from llm_gateway.core.context import OPEN, Call, Operation, RequestContext
from llm_gateway.core.loader import build_config
from llm_gateway.providers.registry import settings_model
from llm_gateway.services.guardrails.hook import build_guardrails
from llm_gateway.services.hooks import Hook, HookChain

HERE = Path(__file__).resolve().parent
WORDS = ["The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "writes", "42", "lines"]


def config() -> GatewayConfig:
    data = yaml.safe_load(
        (HERE / "gateway-guardrails.yaml").read_text().replace("${BENCH_API_KEY:-sk-bench}", "k")
    )
    data["providers"]["up"]["base_url"] = "http://127.0.0.1:1/v1"
    return build_config(data, settings_model, "bench")


def chunks(count: int) -> list[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip

    pieces = [chunk({"content": " " + WORDS[i % len(WORDS)]}) for i in range(count)]
    return [chunk({"role": "assistant", "content": ""}), *pieces, chunk({}, "stop")]


async def read(hooks: list[Hook], items: list[dict[str, Any]]) -> float:
    call = Call(Operation.CHAT, {"model": "bench-model", "messages": [{"role": "user", "content": "hi"}]},
                model="bench-model", stream=True)  # fmt: skip
    ctx = RequestContext("bench", OPEN, "bench")

    async def upstream() -> AsyncIterator[Any]:
        for item in items:
            yield item

    async def proceed() -> AsyncIterator[Any]:
        return upstream()

    started = time.perf_counter()
    stream = await HookChain(hooks).stream(ctx, call, proceed, lambda _ctx: lambda _chunk: None)
    async for _ in stream:
        pass
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    guard = build_guardrails(config())
    assert guard is not None
    items = chunks(args.chunks)
    plain = min([await read([Hook()], items) for _ in range(args.rounds)])
    guarded = min([await read([guard], items) for _ in range(args.rounds)])
    per_chunk = (guarded - plain) / len(items) * 1e6
    print(f"{len(items)} chunks: no guardrails {plain * 1e3:.2f} ms, guardrails {guarded * 1e3:.2f} ms")
    print(f"added per chunk: {per_chunk:.1f} µs")


if __name__ == "__main__":
    asyncio.run(main())
