"""The base every configuration model shares, kept apart so each config section's module can
use it without importing the whole configuration."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Seconds = Annotated[float, Field(gt=0)]


class StrictModel(BaseModel):
    """Base for config models: unknown keys are errors and values never change after load.

    Numbers must be finite (`.inf` in YAML would pass `gt=0` and break later), and a
    validation error never echoes its input, which may be a secret.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, hide_input_in_errors=True)
