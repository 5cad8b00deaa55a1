"""Reading a config file: env files, `${VAR}` interpolation, strict validation, clear errors.

Every failure becomes one `ConfigError` whose message names the file, the key path and
the problem, so the CLI can print it and exit without a traceback.

Validation context: every model is validated with `context={"environ": env}`, where `env`
is the environment the file was interpolated from (`os.environ`, or the `environ` passed to
`load_config`, plus `.env.<ENVIRONMENT>`). A settings validator that needs an environment
variable (Bedrock's region and credential chain) reads it there, through
`core.config.environ_of(info)`, and never from `os.environ`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values
from pydantic import ValidationError

from llm_gateway.core.config import GatewayConfig, ProviderSettings, ServerSettings, default_config_data

SettingsLookup = Callable[[str], type[ProviderSettings] | None]
"""Maps a provider `type` to its settings model, or None when the type is unknown."""

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")
ENVIRONMENTS = ("dev", "staging", "prod")


class ConfigError(Exception):
    """The configuration cannot be used. The message is meant for a human, as is."""


def load_config(
    path: str | Path | None,
    settings_for: SettingsLookup,
    environ: Mapping[str, str] | None = None,
) -> tuple[GatewayConfig, str | None]:
    """Load and validate the config; returns it and an optional note to log at start-up."""
    env = dict(os.environ if environ is None else environ)
    source = str(path) if path else "<embedded default>"
    if not path:
        env = _with_env_file(env, Path.cwd(), source)
        data, note = default_config_data(env)
        return build_config(data, settings_for, source, env), note
    file = Path(path)
    env = _with_env_file(env, file.parent, source)
    try:
        raw = yaml.load(file.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except OSError as exc:
        raise ConfigError(f"config error in {source}: cannot read file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config error in {source}: invalid YAML{_yaml_problem(exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config error in {source}: the top level must be a mapping")
    data = interpolate(raw, env, source)
    return build_config(data, settings_for, source, env), None


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys: with plain YAML the last one silently wins."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # the base class reports unhashable keys
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: where, then what."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f": {' '.join(str(exc).split())}"
    mark = exc.problem_mark
    context = f"{exc.context}: " if exc.context else ""
    return f" at line {mark.line + 1}, column {mark.column + 1}: {context}{exc.problem}"


def _with_env_file(env: dict[str, str], folder: Path, source: str) -> dict[str, str]:
    """Add `.env.<ENVIRONMENT>` (beside the config file, else in the cwd); real env vars win."""
    environment = env.get("ENVIRONMENT")
    if not environment:
        return env
    if environment not in ENVIRONMENTS:
        raise ConfigError(
            f"config error in {source}: ENVIRONMENT={environment!r} must be one of " + ", ".join(ENVIRONMENTS)
        )
    for candidate in (folder / f".env.{environment}", Path.cwd() / f".env.{environment}"):
        if candidate.is_file():
            values = {k: v for k, v in dotenv_values(candidate).items() if v is not None}
            return {**values, **env}
    return env


def interpolate(node: Any, env: Mapping[str, str], source: str, where: str = "") -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string scalar of the tree."""
    if isinstance(node, dict):
        return {k: interpolate(v, env, source, _join(where, str(k))) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env, source, f"{where}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, str) or "${" not in node:
        return node

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if value is not None and (value != "" or default is None):
            return value
        if default is not None:
            return default
        raise ConfigError(f"config error in {source}: at {where}: environment variable {name} is not set")

    return _VAR.sub(substitute, node)


def build_config(
    data: dict[str, Any],
    settings_for: SettingsLookup,
    source: str,
    environ: Mapping[str, str] | None = None,
) -> GatewayConfig:
    """Validate each provider block with its own model, then the whole config, each with
    `context={"environ": environ}` (no environment at all when `environ` is None)."""
    context = {"environ": {} if environ is None else environ}
    providers = data.get("providers")
    if not isinstance(providers, dict):
        raise ConfigError(f"config error in {source}: at providers: a mapping of named providers is required")
    validated: dict[str, ProviderSettings] = {}
    for name, block in providers.items():
        validated[name] = _provider_settings(name, block, settings_for, source, context)
    try:
        return GatewayConfig.model_validate({**data, "providers": validated}, context=context)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def with_server_overrides(config: GatewayConfig, overrides: Mapping[str, Any], source: str) -> GatewayConfig:
    """`config` with some `server` keys replaced (`serve`'s flags, `LLM_GATEWAY_LOG_LEVEL`),
    validated by `ServerSettings` exactly as if the file had said so. None means "not given"."""
    given = {key: value for key, value in overrides.items() if value is not None}
    if not given:
        return config
    try:
        server = ServerSettings.model_validate({**config.server.model_dump(), **given})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source, prefix="server")) from None
    return config.model_copy(update={"server": server})


def _provider_settings(
    name: str, block: Any, settings_for: SettingsLookup, source: str, context: dict[str, Any]
) -> ProviderSettings:
    where = f"providers.{name}"
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise ConfigError(f"config error in {source}: at {where}.type: a provider type string is required")
    model = settings_for(block["type"])
    if model is None:
        raise ConfigError(
            f"config error in {source}: at {where}.type: unknown provider type {block['type']!r}"
        )
    try:
        return model.model_validate(block, context=context)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source, prefix=where)) from None


def _describe(exc: ValidationError, source: str, prefix: str = "") -> str:
    lines = []
    for error in exc.errors():
        where = prefix
        for part in error["loc"]:
            where = f"{where}[{part}]" if isinstance(part, int) else _join(where, str(part))
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"at {where}: {message}" if where else message)
    return f"config error in {source}: " + "; ".join(lines)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key
