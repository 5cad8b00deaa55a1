"""`ui:`: the admin web UI the gateway serves under `/ui/` (docs/ui.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from llm_gateway.core.strict import StrictModel


class UISettings(StrictModel):
    enabled: bool = True
    """Serve the UI at `/ui/` (and redirect `/` there). Off: both are plain 404s."""
    session_minutes: Annotated[int, Field(ge=5, le=7 * 24 * 60)] = 8 * 60
    """How long a sign-in lasts. A session also ends at once when its key is revoked, blocked,
    expired or rotated out, and every session ends when the master key changes."""
