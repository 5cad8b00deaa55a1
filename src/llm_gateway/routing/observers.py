"""Attempt reports: what routing tells whoever subscribes (metrics, tracing, logs).

The executor reports every attempt once, when its outcome is known: a non-streaming call
when it answers or fails, a stream when it ends (completed, failed, or abandoned by its
reader or a hedge race). Routing imports none of its subscribers; with none subscribed,
no report is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from llm_gateway.core.errors import ProviderError


class Outcome(StrEnum):
    ANSWERED = "answered"
    """A complete answer, or a stream that ran to its end."""
    FAILED = "failed"
    """The upstream failed (before or after the first chunk)."""
    ABANDONED = "abandoned"
    """Nobody waits any more: the client left, or a hedge race was won by the other attempt."""


@dataclass(frozen=True, slots=True)
class AttemptReport:
    group: str
    """The public model (or fallback model) the attempt served."""
    deployment: str
    provider: str
    model: str
    """The upstream model id."""
    number: int
    """1 for the request's first attempt, counting across retries, hedges and fallbacks."""
    outcome: Outcome
    latency: float
    """Seconds from sending to the answer, or to the stream's end."""
    first_chunk: float | None
    """Streams: seconds to the first chunk, if one came."""
    streaming: bool
    hedge: bool
    """This attempt was the hedge: the second of two racing attempts."""
    error: ProviderError | None = None


class AttemptObserver(Protocol):
    def on_attempt(self, report: AttemptReport) -> None:
        """Called on the event loop: must not block, must not raise."""
