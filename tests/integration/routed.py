"""Routing test configs over the fake OpenAI upstream, and counting what each deployment got.

Every deployment is the one fake upstream with a different upstream model id, which picks
its behaviour (see tests/fakes/openai.py): `error-500`, `hang`, `flaky-2-503`, ... so one
fake plays a whole group of failing and healthy providers, and `received(fake)` tells
how many requests each of them saw.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.conftest import MASTER_KEY, UPSTREAM_KEY
from tests.fakes.openai import FakeOpenAI

HI = [{"role": "user", "content": "hi"}]


def ordered(*upstreams: str | dict[str, Any], **group: Any) -> dict[str, Any]:
    """A model group whose deployments are tried in the given order (`cost` strategy, rising
    prices). An upstream is a model id, or a dict of deployment fields including `model`."""
    deployments = []
    for price, upstream in enumerate(upstreams):
        fields = {"model": upstream} if isinstance(upstream, str) else dict(upstream)
        deployments.append({"provider": "fake", "pricing": {"input_per_mtok": price}, **fields})
    routing = {"strategy": "cost", **group.pop("routing", {})}
    return {"deployments": deployments, "routing": routing, **group}


def routed_config(upstream_url: str, models: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "providers": {
            "fake": {
                "type": "openai",
                "base_url": f"{upstream_url}/v1",
                "api_key": UPSTREAM_KEY,
                "timeout": 5,
            },
        },
        "models": models,
        "master_key": MASTER_KEY,
        **extra,
    }


def received(fake: FakeOpenAI) -> Counter[str]:
    """Chat requests the fake got, by upstream model id."""
    return Counter(r.body.get("model") for r in fake.requests if r.path.endswith("/chat/completions"))


def arrival_order(fake: FakeOpenAI) -> list[str]:
    return [str(r.body.get("model")) for r in fake.requests]
