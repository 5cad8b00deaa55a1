"""Process-wide logging set-up, done once by the CLI or `main`, never at import."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


TRACE = 5
"""uvicorn's level below DEBUG; named here too, so `trace` works before uvicorn is imported."""


def setup_logging(level: str = "info") -> None:
    """Log to stderr at `level`, one of `core.config.LogLevel` (validated with the config)."""
    logging.addLevelName(TRACE, "TRACE")
    root = logging.getLogger()
    if not any(getattr(h, "_llm_gateway", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._llm_gateway = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())
    # Our own access log line is not wanted per request on the hot path; uvicorn's is opt-in.
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
