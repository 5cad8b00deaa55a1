"""Each request's upstream attempts, gathered for its spend row (the request log).

Attempt reports carry no request id; they are made on the request's own task (or a
hedge's, which copies its context). So the governance hook's `before` puts a fresh list
in a context variable (`begin`) and keeps it for `on_end`; `AttemptRecorder`, an attempt
observer installed only when there is a spend log, appends each report to whatever list
is current. Per request that is one list and one append per attempt; `records` turns the
reports into the row's compact `AttemptRecord`s when the request ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar

from llm_gateway.routing.observers import AttemptReport
from llm_gateway.store.spend import AttemptRecord

_CURRENT: ContextVar[list[AttemptReport] | None] = ContextVar("llm_gateway_attempt_log", default=None)


def begin() -> list[AttemptReport]:
    """A fresh list the current request's attempts will be appended to."""
    attempts: list[AttemptReport] = []
    _CURRENT.set(attempts)
    return attempts


class AttemptRecorder:
    """The attempt observer that feeds the current request's list (see `begin`)."""

    def on_attempt(self, report: AttemptReport) -> None:
        attempts = _CURRENT.get()
        if attempts is not None:
            attempts.append(report)


def records(reports: Sequence[AttemptReport]) -> tuple[AttemptRecord, ...]:
    """The reports as the spend row keeps them: no message, no upstream body, no secret."""
    return tuple(
        AttemptRecord(
            deployment=report.deployment,
            provider=report.provider,
            outcome=str(report.outcome),
            latency_s=report.latency,
            ttft_s=report.first_chunk,
            error=None if report.error is None else type(report.error).__name__,
            status=None if report.error is None else report.error.status_code,
            group=report.group,
            hedge=report.hedge,
        )
        for report in reports
    )
