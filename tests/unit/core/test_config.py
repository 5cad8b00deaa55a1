"""The config models (strict, frozen, secrets hidden) and the zero-config default from the environment."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from llm_gateway.core.config import (
    Deployment,
    GatewayConfig,
    MiB,
    ProviderSettings,
    ServerSettings,
    default_config_data,
)
from llm_gateway.core.loader import ConfigError, build_config, load_config
from llm_gateway.providers.mock import MockSettings
from llm_gateway.providers.openai import OpenAISettings
from llm_gateway.providers.registry import build_providers, settings_model

SECRET = "sk-upstream-very-secret-4242"
MASTER = "mk-gateway-very-secret-2424"


def zero_config(env: dict[str, str]) -> tuple[GatewayConfig, str | None]:
    return load_config(None, settings_model, environ=env)


def only_provider(config: GatewayConfig) -> ProviderSettings:
    assert len(config.providers) == 1
    return next(iter(config.providers.values()))


def test_without_openai_api_key_it_serves_the_mock_model() -> None:
    config, note = zero_config({})
    assert config.models.keys() == {"mock"}
    assert config.default_model == "mock"
    assert isinstance(config.providers["mock"], MockSettings)
    assert config.models["mock"].deployments[0].provider == "mock"
    assert config.master_key is None
    assert note is not None and "\n" not in note
    assert "mock" in note and "OPENAI_API_KEY" in note and "--config" in note


def test_an_empty_openai_api_key_counts_as_none() -> None:
    config, _ = zero_config({"OPENAI_API_KEY": "", "OPENAI_BASE_URL": "http://x/v1", "DEFAULT_MODEL": "m"})
    assert config.models.keys() == {"mock"}


def test_openai_api_key_serves_gpt_4o_mini_from_openai() -> None:
    config, note = zero_config({"OPENAI_API_KEY": SECRET})
    settings = only_provider(config)
    assert isinstance(settings, OpenAISettings)
    assert settings.base_url.get_secret_value() == "https://api.openai.com/v1"
    assert settings.api_key is not None and settings.api_key.get_secret_value() == SECRET
    assert config.models.keys() == {"gpt-4o-mini"}
    assert config.default_model == "gpt-4o-mini"
    deployment = config.models["gpt-4o-mini"].deployments[0]
    assert deployment.provider == "openai" and deployment.model is None  # upstream id = public name
    assert note is not None and "gpt-4o-mini" in note and SECRET not in note


def test_base_url_and_default_model_come_from_the_environment() -> None:
    env = {
        "OPENAI_API_KEY": SECRET,
        "OPENAI_BASE_URL": "http://127.0.0.1:11434/v1",
        "DEFAULT_MODEL": "llama3",
    }
    config, _ = zero_config(env)
    settings = only_provider(config)
    assert isinstance(settings, OpenAISettings)
    assert settings.base_url.get_secret_value() == "http://127.0.0.1:11434/v1"
    assert config.models.keys() == {"llama3"} and config.default_model == "llama3"


def test_empty_base_url_and_default_model_fall_back() -> None:
    config, _ = zero_config({"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": "", "DEFAULT_MODEL": ""})
    settings = only_provider(config)
    assert isinstance(settings, OpenAISettings)
    assert settings.base_url.get_secret_value() == "https://api.openai.com/v1"
    assert config.default_model == "gpt-4o-mini"


@pytest.mark.parametrize("env", [{}, {"OPENAI_API_KEY": SECRET}])
def test_gateway_master_key_requires_auth_in_either_default(env: dict[str, str]) -> None:
    config, _ = zero_config({**env, "GATEWAY_MASTER_KEY": MASTER})
    assert config.master_key is not None and config.master_key.get_secret_value() == MASTER
    config, _ = zero_config({**env, "GATEWAY_MASTER_KEY": ""})
    assert config.master_key is None


def test_default_config_data_is_plain_data() -> None:
    data, _ = default_config_data({"OPENAI_API_KEY": SECRET, "DEFAULT_MODEL": "m"})
    assert data == {
        "providers": {"openai": {"type": "openai", "api_key": SECRET}},
        "models": {"m": {"deployments": [{"provider": "openai"}]}},
        "default_model": "m",
        "master_key": None,
    }


def test_secrets_never_show_in_repr_or_str() -> None:
    config, _ = zero_config({"OPENAI_API_KEY": SECRET, "GATEWAY_MASTER_KEY": MASTER})
    settings = only_provider(config)
    assert isinstance(settings, OpenAISettings) and isinstance(settings.api_key, SecretStr)
    for text in (repr(config), str(config), repr(settings), str(settings), f"{config}", f"{config!r}"):
        assert SECRET not in text
        assert MASTER not in text
    assert SECRET not in settings.model_dump_json()


def test_config_is_frozen() -> None:
    config, _ = zero_config({})
    with pytest.raises(ValidationError):
        config.default_model = "other"
    with pytest.raises(ValidationError):
        config.server.port = 1


@pytest.mark.parametrize("model", [GatewayConfig, ServerSettings, Deployment, ProviderSettings, MockSettings])
def test_every_model_forbids_unknown_keys(model: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate({"type": "mock", "provider": "p", "providers": {}, "models": {}, "nope": 1})
    assert any(e["type"] == "extra_forbidden" and e["loc"] == ("nope",) for e in caught.value.errors())


def test_defaults() -> None:
    server = ServerSettings()
    assert (server.host, server.port, server.workers) == ("127.0.0.1", 8000, 1)
    assert server.max_request_bytes == 16 * MiB
    assert server.drain_timeout > 0
    settings = ProviderSettings(type="x")
    assert settings.timeout == 60.0
    assert 0 < settings.connect_timeout < settings.timeout
    assert Deployment(provider="p").weight == 1.0


def test_provider_settings_subclasses_survive_into_the_config() -> None:
    """`build_providers` reads type-specific settings, so the config must keep the subclass."""
    data: dict[str, Any] = {
        "providers": {
            "o": {"type": "openai", "api_key": SECRET, "organization": "org-1"},
            "m": {"type": "mock"},
        },
        "models": {"x": {"deployments": [{"provider": "o"}, {"provider": "m"}]}},
    }
    config = build_config(data, settings_model, "test.yaml")
    openai_settings = config.providers["o"]
    assert isinstance(openai_settings, OpenAISettings) and openai_settings.organization == "org-1"
    assert isinstance(config.providers["m"], MockSettings)


def test_server_upstream_client_picks_every_providers_client_and_a_change_rebuilds_them() -> None:
    def config(client: str | None) -> Any:
        data: dict[str, Any] = {
            "providers": {"o": {"type": "openai", "api_key": SECRET}},
            "models": {"x": {"deployments": [{"provider": "o"}]}},
        }
        if client is not None:
            data["server"] = {"upstream_client": client}
        return build_config(data, settings_model, "test.yaml")

    native = build_providers(config(None))
    assert native["o"].http.client == "native"
    assert build_providers(config("native"), keep=native)["o"] is native["o"]
    switched = build_providers(config("aiohttp"), keep=native)
    assert switched["o"] is not native["o"] and switched["o"].http.client == "aiohttp"
    with pytest.raises(ConfigError, match=r"server\.upstream_client: Input should be 'native' or 'aiohttp'"):
        config("httpx")


def test_references_are_checked_when_the_model_is_built_directly() -> None:
    with pytest.raises(ValidationError, match=r"models\.x\.deployments\[0\]\.provider: unknown provider 'q'"):
        GatewayConfig.model_validate(
            {
                "providers": {"p": ProviderSettings(type="mock")},
                "models": {"x": {"deployments": [{"provider": "q"}]}},
            }
        )
    with pytest.raises(ValidationError, match="default_model: 'y' is not one of models"):
        GatewayConfig.model_validate({"providers": {}, "models": {}, "default_model": "y"})
