"""`/ui/config`: the effective configuration with every secret masked, whether the last
reload worked, and a button that reloads the config file now (the master key only).

The config is shown as `model_dump(mode="json")` gives it: the secret types (`SecretStr`,
`SecretUrl`, `SecretHeaders`) serialize masked. What is shown then passes through the log redactor's
patterns too (API keys, bearer tokens, JWTs, URL passwords), so a credential pasted into a
free-form field (a hook's options) is masked as well. (Not its known values: those are
masked already, and a URL's user name would mask that word everywhere on the page.) The reload is the one
`POST /admin/config/reload` runs: validated fully, applied atomically or not at all.
"""

from __future__ import annotations

import yaml
from fastapi import APIRouter, Request
from starlette.responses import Response

from llm_gateway.api.ui.guard import Operator, form_of, runtime_of
from llm_gateway.api.ui.pages import render
from llm_gateway.api.ui.session import Viewer
from llm_gateway.observability.redaction import Redactor
from llm_gateway.reloader import ConfigReloader, ReloadFailed

router = APIRouter(include_in_schema=False)


def _page(
    request: Request,
    viewer: Viewer,
    status: int = 200,
    outcome: str | None = None,
    failure: str | None = None,
) -> Response:
    runtime = runtime_of(request)
    reloader: ConfigReloader = request.app.state.reloader
    redact = Redactor()
    text = yaml.safe_dump(
        runtime.config.model_dump(mode="json"), sort_keys=False, allow_unicode=True, default_flow_style=False
    )
    state = reloader.state
    return render(
        request,
        viewer,
        "config.html",
        status,
        config_text=redact(text),
        source=reloader.source.path,
        state=state,
        last_error=redact(state.error) if state.error else None,
        outcome=outcome,
        failure=redact(failure) if failure else None,
    )


@router.get("/ui/config")
async def config_page(request: Request, viewer: Operator) -> Response:
    return _page(request, viewer)


@router.post("/ui/config/reload")
async def reload_config(request: Request, viewer: Operator) -> Response:
    """Re-read the config file and apply it, then show the page again with how it went."""
    await form_of(request, viewer)  # the master key's own same-site form, with its token
    reloader: ConfigReloader = request.app.state.reloader
    try:
        state = await reloader.reload()
    except ReloadFailed as failed:
        return _page(request, viewer, 400, failure=str(failed))
    return _page(request, viewer, outcome=f"Reloaded: now serving generation {state.generation}.")
