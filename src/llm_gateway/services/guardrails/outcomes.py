"""What each guardrail did to one request, for the response header, logs and metrics.

Kept in `ctx.extras["guardrails"]` (an `Outcomes`), read by whoever reports on the request:
`outcomes.results` maps each guardrail that ran to `passed`, `redacted`, `warned`,
`blocked`, `failed` (it could not run and `on_error: block` refused the request) or
`skipped` (it could not run and `on_error: allow` let the request through).
"""

from __future__ import annotations

from dataclasses import dataclass, field

EXTRAS_KEY = "guardrails"
HEADER = "x-llm-gateway-guardrails"
RANK = {"passed": 0, "skipped": 1, "warned": 2, "redacted": 3, "failed": 4, "blocked": 5}
"""A guardrail that ran on input and output (or on many chunks) reports its strongest result."""


@dataclass(slots=True)
class Outcomes:
    results: dict[str, str] = field(default_factory=dict)

    def record(self, name: str, result: str) -> None:
        if RANK[result] >= RANK.get(self.results.get(name, "passed"), 0):
            self.results[name] = result

    def header(self) -> str:
        """`pii-guard=redacted;card-block=passed`."""
        return ";".join(f"{name}={result}" for name, result in self.results.items())
