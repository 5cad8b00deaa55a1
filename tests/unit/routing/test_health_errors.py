"""A deployment keeps its newest few failures (type, status, when) for the deployments page:
bounded, newest first, and only failures that say something about the deployment."""

from __future__ import annotations

from llm_gateway.core.errors import UpstreamStatusError, UpstreamTimeout, UpstreamUnavailable
from llm_gateway.routing.health import RECENT_ERRORS, HealthBoard
from tests.stubs import QUICK_BREAKER, catalog, deployments


def test_recent_errors_are_bounded_newest_first_and_skip_the_callers_mistakes() -> None:
    wall = [1000.0]
    board = HealthBoard(QUICK_BREAKER, clock=lambda: 5.0, wall=lambda: wall[0])
    groups = catalog({"m": deployments("a")}).groups
    health = board.of(groups[0].targets[0])
    health.failed(5.0, 0.1, UpstreamStatusError("bad request", status=400))  # the caller's, not counted
    assert not health.recent_errors
    for index in range(RECENT_ERRORS + 2):
        wall[0] = 1000.0 + index
        health.failed(5.0, 0.1, UpstreamUnavailable("down") if index % 2 else UpstreamTimeout("slow"))
    assert len(health.recent_errors) == RECENT_ERRORS
    row = board.snapshot(groups)[0]
    errors = row["recent_errors"]
    assert [error["at"] for error in errors] == [1006.0, 1005.0, 1004.0, 1003.0, 1002.0]
    assert errors[0] == {"at": 1006.0, "type": "UpstreamTimeout", "status": 504}
    assert errors[1] == {"at": 1005.0, "type": "UpstreamUnavailable", "status": 502}
