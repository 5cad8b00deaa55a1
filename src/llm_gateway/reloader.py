"""Hot reload: re-read the config file, validate it fully, swap it in atomically.

`SIGHUP` or `POST /admin/config/reload` runs `ConfigReloader.reload`: the file is loaded
and validated exactly as `serve` would (the same loader, the same flag overrides, the same
start-up checks), a successor runtime is built from it (`Runtime.build(previous=…)`, which
carries over every connection and counter), and `app.state.runtime` is replaced in one
assignment. A request keeps the runtime it started on, so in-flight calls finish on the old
config; the old runtime closes the providers its successor dropped once its last request is
done. A file that fails anywhere changes nothing: the error is logged, returned to the
caller and shown in `/ready` until a reload succeeds.

Some keys cannot change under a running process (the bind address, the store, the master
key, JWT verification, the counters' store): a file that changes them is refused with the
list, and applies at the next restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llm_gateway.core.config import GatewayConfig, shared_state_problem
from llm_gateway.core.loader import ConfigError, load_config, with_server_overrides
from llm_gateway.observability.logging import remember_secrets
from llm_gateway.observability.redaction import config_secrets
from llm_gateway.providers.registry import settings_model
from llm_gateway.runtime import Runtime, hook_problem

log = logging.getLogger("llm_gateway.reload")

RESTART_KEYS = (
    "master_key",
    "database_url",
    "responses",
    "redis_url",
    "redis_prefix",
    "server",
    "auth",
    "logging",
    "metrics",
    "tracing",
)
"""Top-level keys a reload may not change (their resources are made once per process)."""


class ReloadFailed(Exception):
    """The new config was not applied; the message says why (never a secret: the loader's
    errors name places, not values)."""


@dataclass(frozen=True, slots=True)
class ConfigSource:
    """Where the running config came from, so a reload reads it the same way."""

    path: str | None
    """The config file; None: the embedded default (re-derived from the environment)."""
    overrides: Mapping[str, str | None] = field(default_factory=dict)
    """`server` keys set by `serve`'s flags or `LLM_GATEWAY_LOG_LEVEL`, applied again."""
    origin: str = "command-line options"

    def load(self) -> GatewayConfig:
        config, _ = load_config(self.path, settings_model)
        return with_server_overrides(config, self.overrides, self.origin)


def restart_needed(old: GatewayConfig, new: GatewayConfig) -> str | None:
    """What `new` changes that only a restart can apply, as a sentence; None if nothing."""
    changed = [key for key in RESTART_KEYS if getattr(old, key) != getattr(new, key)]
    if (old.governance is None) != (new.governance is None):
        changed.append("governance (added or removed)")
    elif old.governance is not None and new.governance is not None:
        for key in ("spend_log", "lease_ttl"):
            if getattr(old.governance, key) != getattr(new.governance, key):
                changed.append(f"governance.{key}")
    if not changed:
        return None
    return f"changing {', '.join(changed)} needs a restart"


@dataclass(slots=True)
class ReloadState:
    generation: int = 1
    """1 for the config the process started with, +1 per successful reload."""
    loaded_at: float = field(default_factory=time.time)
    error: str | None = None
    """Why the last reload failed, until one succeeds."""
    failed_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "loaded_at": self.loaded_at,
            "error": self.error,
            "failed_at": self.failed_at,
        }


class ConfigReloader:
    """Swaps `app.state.runtime` for one built from a re-read config; one reload at a time."""

    def __init__(self, state: Any, source: ConfigSource) -> None:
        self._app_state = state
        """The app's `state`, whose `runtime` attribute every request reads once."""
        self.source = source
        self.state = ReloadState()
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()

    async def reload(self) -> ReloadState:
        """Apply the config file now, or raise `ReloadFailed` having changed nothing."""
        async with self._lock:
            current: Runtime = self._app_state.runtime
            try:
                successor = await self._successor(current)
            except ReloadFailed as failure:
                self.state.error, self.state.failed_at = str(failure), time.time()
                log.error(
                    "config reload failed, still serving generation %d: %s", self.state.generation, failure
                )
                raise
            self._app_state.runtime = successor
            self.state = ReloadState(generation=self.state.generation + 1)
            retiring = asyncio.create_task(current.retire(successor))
            self._retiring.add(retiring)
            retiring.add_done_callback(self._retiring.discard)
            log.info(
                "config reloaded from %s: generation %d",
                self.source.path or "<embedded default>",
                self.state.generation,
            )
            return self.state

    async def _successor(self, current: Runtime) -> Runtime:
        try:
            config = await asyncio.to_thread(self.source.load)
        except ConfigError as error:
            raise ReloadFailed(str(error)) from None
        remember_secrets(config_secrets(config))  # before anything could log one of them
        problem = (
            shared_state_problem(config) or hook_problem(config) or restart_needed(current.config, config)
        )
        if problem is not None:
            raise ReloadFailed(f"config error in {self.source.path or '<embedded default>'}: {problem}")
        try:
            successor = Runtime.build(
                config, hooks=current.extra_hooks, observers=current.observers, previous=current
            )
            await successor.start()
        except Exception as exc:  # a hook factory or provider that fails to build: keep serving
            raise ReloadFailed(f"the new config could not be applied: {type(exc).__name__}: {exc}") from None
        return successor

    def reload_in_background(self) -> None:
        """The SIGHUP handler: a reload whose failure is logged (and shown in `/ready`)."""
        task = asyncio.get_running_loop().create_task(self._quiet_reload())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _quiet_reload(self) -> None:
        with contextlib.suppress(ReloadFailed):  # logged and recorded by reload
            await self.reload()

    def readiness(self) -> tuple[bool, str]:
        """A failed reload leaves the previous config serving: reported, never 'not ready'
        (pulling every instance out of the load balancer over a bad file would be an outage)."""
        state = self.state
        if state.error is None:
            return True, f"generation {state.generation}"
        return True, f"generation {state.generation}; the last reload failed: {state.error}"

    async def aclose(self) -> None:
        """At shutdown: let retirements finish closing what they close (bounded)."""
        if self._retiring:
            await asyncio.wait(list(self._retiring), timeout=5)
