"""`uvicorn llm_gateway.main:app`: the one module that does work at import.

Reads the config named by `LLM_GATEWAY_CONFIG` (or the embedded default) and builds the app;
`LLM_GATEWAY_LOG_LEVEL` overrides `server.log_level` and `logging.level` (how `serve
--workers N` hands its chosen level to each worker).
"""

from __future__ import annotations

import os
import sys

from llm_gateway.app import create_app
from llm_gateway.core.loader import ConfigError, load_config, with_server_overrides
from llm_gateway.observability.logging import setup_logging
from llm_gateway.observability.redaction import config_secrets
from llm_gateway.providers.registry import settings_model
from llm_gateway.reloader import ConfigSource

try:
    _config, _note = load_config(os.environ.get("LLM_GATEWAY_CONFIG") or None, settings_model)
    _level = {"log_level": os.environ.get("LLM_GATEWAY_LOG_LEVEL") or None}
    _config = with_server_overrides(_config, _level, "LLM_GATEWAY_LOG_LEVEL")
except ConfigError as _error:
    print(_error, file=sys.stderr)
    raise SystemExit(2) from None

_chosen = _config.server.log_level if _level["log_level"] else None  # the variable wins, validated
setup_logging(
    _chosen or _config.logging.level or _config.server.log_level, _config.logging, config_secrets(_config)
)
app = create_app(
    _config,
    _note,
    source=ConfigSource(os.environ.get("LLM_GATEWAY_CONFIG") or None, _level, "LLM_GATEWAY_LOG_LEVEL"),
)
