"""From a key's or team's HTML form to the admin API's own models, and back.

A form sends every field as text; `grants_input` turns it into what `KeyCreate`,
`KeyUpdate`, `TeamCreate` and `TeamUpdate` validate (the same rules as the JSON API: one
definition of what is allowed), and `problems` turns their validation error into lines a
person can act on. A blank field is "no limit" (every model, no budget); on an edit it
clears what was set.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from llm_gateway.core.errors import GatewayError
from llm_gateway.store.records import Grants

WHOLE = ("rpm", "tpm", "max_parallel")
MONEY = ("budget_usd", "max_hold_usd", "end_user_budget_usd")


class FormProblem(ValueError):
    """A field that cannot even be read as its kind (not a number, not JSON, ...)."""


def _whole(name: str, text: str) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise FormProblem(f"{name}: must be a whole number") from None


def _moment(text: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FormProblem("expires_at: must be a date and time (UTC)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _metadata(text: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise FormProblem('metadata: must be a JSON object, e.g. {"app": "search"}') from None
    if not isinstance(value, dict):
        raise FormProblem('metadata: must be a JSON object, e.g. {"app": "search"}')
    return value


def _models(text: str) -> list[str] | None:
    names = [name.strip() for name in text.replace("\n", ",").split(",") if name.strip()]
    return names or None


def grants_input(fields: Mapping[str, str], names: tuple[str, ...]) -> dict[str, Any]:
    """The fields in `names`, read from the form as the admin models expect them."""
    values: dict[str, Any] = {}
    for name in names:
        text = fields.get(name, "").strip()
        if name in WHOLE:
            values[name] = _whole(name, text)
        elif name in MONEY:
            values[name] = text or None
        elif name == "models":
            values[name] = _models(text)
        elif name == "metadata":
            values[name] = _metadata(text)
        elif name == "expires_at":
            values[name] = _moment(text)
        elif name == "blocked":
            values[name] = name in fields
        elif name == "budget_period":
            values[name] = text or "none"
        else:
            values[name] = text or None
    return values


def problems(error: ValidationError | FormProblem) -> list[str]:
    """What is wrong, one line per field ('rpm: must be at least 1')."""
    if isinstance(error, FormProblem):
        return [str(error)]
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"] if part != "__root__") or "form"
        lines.append(f"{where}: {item['msg']}")
    return lines


def failure(error: ValidationError | FormProblem | GatewayError) -> tuple[int, list[str]]:
    """A failed change as (status, lines): the form's own problems a 400, the store's (a
    conflict, an unknown team) its status and message."""
    if isinstance(error, GatewayError):
        return error.status_code, [error.message]
    return 400, problems(error)


def grants_form(grants: Grants) -> dict[str, str]:
    """A record's grants as the form shows them."""
    return {
        "models": ", ".join(grants.models) if grants.models is not None else "",
        "rpm": "" if grants.rpm is None else str(grants.rpm),
        "tpm": "" if grants.tpm is None else str(grants.tpm),
        "max_parallel": "" if grants.max_parallel is None else str(grants.max_parallel),
        "budget_usd": "" if grants.budget_usd is None else str(grants.budget_usd),
        "budget_period": grants.budget_period,
        "max_hold_usd": "" if grants.max_hold_usd is None else str(grants.max_hold_usd),
        "metadata": orjson.dumps(grants.metadata).decode() if grants.metadata else "",
    }
