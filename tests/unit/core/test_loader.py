"""Loading a config file: every way it can be wrong gives one line naming file, key path and problem."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from llm_gateway.core.config import GatewayConfig
from llm_gateway.core.loader import ConfigError, interpolate, load_config, with_server_overrides
from llm_gateway.providers.mock import MockSettings
from llm_gateway.providers.openai import OpenAISettings
from llm_gateway.providers.registry import settings_model

GOOD = """
providers:
  up:
    type: openai
    base_url: http://127.0.0.1:9/v1
    api_key: sk-literal
  offline:
    type: mock
models:
  chat:
    deployments:
      - provider: up
        model: upstream-chat
  echo:
    deployments: [{provider: offline}]
default_model: chat
"""


def write(folder: Path, text: str, name: str = "gateway.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def load(path: Path, environ: dict[str, str] | None = None) -> GatewayConfig:
    config, note = load_config(path, settings_model, environ=environ or {})
    assert note is None
    return config


def config_error(path: Path, environ: dict[str, str] | None = None) -> str:
    """The message of the ConfigError loading `path` raises, checked for the shape every one has."""
    with pytest.raises(ConfigError) as caught:
        load_config(path, settings_model, environ=environ or {})
    message = str(caught.value)
    assert message.startswith(f"config error in {path}: "), message
    assert "\n" not in message, message
    # Raised `from None`: the CLI prints one line, nothing chained behind it.
    error = caught.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    return message


@pytest.fixture(autouse=True)
def _elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from an empty folder, so no `.env.*` in the real cwd is ever picked up."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)


def test_a_good_file_loads_with_each_provider_validated_by_its_own_model(tmp_path: Path) -> None:
    config = load(write(tmp_path, GOOD))
    assert isinstance(config.providers["up"], OpenAISettings)
    assert isinstance(config.providers["offline"], MockSettings)
    assert str(config.providers["up"].base_url) == "http://127.0.0.1:9/v1"
    assert config.models["chat"].deployments[0].model == "upstream-chat"
    assert config.models["echo"].deployments[0].model is None
    assert config.default_model == "chat"
    assert config.master_key is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("providers: {}\nmodels: {}\nbogus: 1\n", "at bogus: unknown key"),
        (
            "providers: {p: {type: mock, colour: red}}\nmodels: {}\n",
            "at providers.p.colour: unknown key",
        ),
        (
            "providers: {o: {type: openai, api_kye: x}}\nmodels: {}\n",
            "at providers.o.api_kye: unknown key",
        ),
        (
            "providers: {p: {type: mock}}\nmodels: {m: {deployments: [{provider: p, wieght: 2}]}}\n",
            "at models.m.deployments[0].wieght: unknown key",
        ),
        (
            "providers: {p: {type: mock}}\nmodels: {m: {deployments: [{provider: p}], aliases: [x]}}\n",
            "at models.m.aliases: unknown key",
        ),
        ("providers: {}\nmodels: {}\nserver: {prot: 80}\n", "at server.prot: unknown key"),
    ],
    ids=["top-level", "provider-block", "provider-specific", "deployment", "model-group", "server"],
)
def test_unknown_keys_anywhere_are_errors(tmp_path: Path, text: str, expected: str) -> None:
    assert config_error(write(tmp_path, text)).endswith(expected)


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("providers: {p: {type: mock, timeout: soon}}\nmodels: {}\n", "providers.p.timeout", "number"),
        ("providers: {p: {type: mock, timeout: 0}}\nmodels: {}\n", "providers.p.timeout", "greater than 0"),
        (
            "providers: {p: {type: mock, latency_ms: -1}}\nmodels: {}\n",
            "providers.p.latency_ms",
            "greater than",
        ),
        ("providers: {o: {type: openai, headers: [a]}}\nmodels: {}\n", "providers.o.headers", "dictionary"),
        ("providers: {p: {type: mock}}\nmodels: {m: {deployments: x}}\n", "models.m.deployments", "list"),
        (
            "providers: {p: {type: mock}}\nmodels: {m: {deployments: []}}\n",
            "models.m.deployments",
            "at least 1",
        ),
        (
            "providers: {p: {type: mock}}\nmodels: {m: {deployments: [{provider: p, weight: heavy}]}}\n",
            "models.m.deployments[0].weight",
            "number",
        ),
        ("providers: {}\nmodels: []\n", "models", "dictionary"),
        ("providers: {}\nmodels: {}\nserver: {port: eighty}\n", "server.port", "integer"),
        ("providers: {}\nmodels: {}\nserver: {port: 70000}\n", "server.port", "less than or equal to 65535"),
        ("providers: {}\nmodels: {}\ndefault_model: [a]\n", "default_model", "string"),
        ("providers: {}\nmodels: {}\nserver: {log_level: loud}\n", "server.log_level", "'debug'"),
        ("providers: {}\nmodels: {}\nserver: {host: 'a b'}\n", "server.host", "not an IP address"),
        ("providers: {}\nmodels: {}\nserver: {drain_timeout: .nan}\n", "server.drain_timeout", "finite"),
        ("providers: {}\nmodels: {}\nredis_url: 'redis://h:x/0'\n", "redis_url", "not a usable Redis URL"),
        ("providers: {p: {type: mock, timeout: .inf}}\nmodels: {}\n", "providers.p.timeout", "finite"),
    ],
)
def test_wrong_types_and_values_name_the_key(tmp_path: Path, text: str, where: str, problem: str) -> None:
    message = config_error(write(tmp_path, text))
    assert f"at {where}: " in message
    assert problem in message


def test_missing_models_section_is_named(tmp_path: Path) -> None:
    assert "at models: Field required" in config_error(write(tmp_path, "providers: {}\n"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "providers: {p: {type: nonesuch}}\nmodels: {}\n",
            "at providers.p.type: unknown provider type 'nonesuch'",
        ),
        (
            "providers: {p: {timeout: 3}}\nmodels: {}\n",
            "at providers.p.type: a provider type string is required",
        ),
        (
            "providers: {p: {type: 7}}\nmodels: {}\n",
            "at providers.p.type: a provider type string is required",
        ),
        ("providers: {p: mock}\nmodels: {}\n", "at providers.p.type: a provider type string is required"),
        ("providers: [mock]\nmodels: {}\n", "at providers: a mapping of named providers is required"),
        ("models: {}\n", "at providers: a mapping of named providers is required"),
    ],
)
def test_provider_blocks_need_a_known_type(tmp_path: Path, text: str, expected: str) -> None:
    assert config_error(write(tmp_path, text)).endswith(expected)


def test_a_deployment_naming_an_undefined_provider(tmp_path: Path) -> None:
    text = "providers: {p: {type: mock}}\nmodels: {m: {deployments: [{provider: p}, {provider: ghost}]}}\n"
    message = config_error(write(tmp_path, text))
    assert "models.m.deployments[1].provider: unknown provider 'ghost' (configured: p)" in message


def test_default_model_must_be_one_of_models(tmp_path: Path) -> None:
    text = "providers: {p: {type: mock}}\nmodels: {m: {deployments: [{provider: p}]}}\ndefault_model: nope\n"
    assert "default_model: 'nope' is not one of models" in config_error(write(tmp_path, text))


def test_several_problems_are_all_reported_on_one_line(tmp_path: Path) -> None:
    text = "providers: {}\nmodels: {}\nbogus: 1\nserver: {port: eighty}\n"
    message = config_error(write(tmp_path, text))
    assert "at bogus: unknown key" in message and "at server.port:" in message


def test_yaml_syntax_error_is_one_line_with_its_position(tmp_path: Path) -> None:
    text = "providers:\n  p:\n    type: mock\n   bad: indent\nmodels: {}\n"
    message = config_error(write(tmp_path, text))
    assert "invalid YAML at line 4, column 4" in message
    assert "<unicode string>" not in message


def test_an_unclosed_flow_sequence_is_reported(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, "providers: {}\nmodels: [a, b\n"))
    assert "invalid YAML at line " in message


def test_a_duplicate_key_is_an_error_not_a_silent_override(tmp_path: Path) -> None:
    text = (
        "providers: {p: {type: mock}}\nmodels:\n  m: {deployments: [{provider: p}]}\n  m: {deployments: []}\n"
    )
    assert config_error(write(tmp_path, text)).endswith("invalid YAML at line 4, column 3: duplicate key 'm'")


def test_a_missing_file(tmp_path: Path) -> None:
    message = config_error(tmp_path / "absent.yaml")
    assert message.endswith("cannot read file (No such file or directory)")


def test_a_folder_instead_of_a_file(tmp_path: Path) -> None:
    assert "cannot read file" in config_error(tmp_path)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "- a\n- b\n", "just a string\n", "42\n"])
def test_the_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    assert config_error(write(tmp_path, text)).endswith("the top level must be a mapping")


KEYED = """
providers:
  up:
    type: openai
    base_url: ${UP_URL:-http://127.0.0.1:9/v1}
    api_key: ${UP_KEY}
    timeout: ${UP_TIMEOUT:-7}
models:
  chat:
    deployments: [{provider: up, model: "${UP_MODEL:-upstream}"}]
master_key: ${GATEWAY_MASTER_KEY:-}
"""


def api_key(config: GatewayConfig) -> str | None:
    settings = config.providers["up"]
    assert isinstance(settings, OpenAISettings) and settings.api_key is not None
    return settings.api_key.get_secret_value()


def master_key(config: GatewayConfig) -> str | None:
    return None if config.master_key is None else config.master_key.get_secret_value()


def test_an_unset_variable_names_file_key_path_and_variable(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, KEYED))
    assert message.endswith("at providers.up.api_key: environment variable UP_KEY is not set")


def test_an_unset_variable_inside_a_list_names_its_index(tmp_path: Path) -> None:
    text = "providers: {p: {type: mock}}\nmodels: {m: {deployments: [{provider: p}, {provider: '${WHO}'}]}}\n"
    assert config_error(write(tmp_path, text)).endswith(
        "at models.m.deployments[1].provider: environment variable WHO is not set"
    )


def test_variables_and_defaults_are_substituted(tmp_path: Path) -> None:
    config = load(write(tmp_path, KEYED), {"UP_KEY": "sk-from-env", "UP_MODEL": "gpt-x"})
    assert api_key(config) == "sk-from-env"
    settings = config.providers["up"]
    assert isinstance(settings, OpenAISettings)
    assert settings.base_url.get_secret_value() == "http://127.0.0.1:9/v1"
    assert settings.timeout == 7.0  # "7" from the default, then validated as a number
    assert config.models["chat"].deployments[0].model == "gpt-x"
    assert master_key(config) == ""


def test_an_empty_default_gives_an_empty_string(tmp_path: Path) -> None:
    config = load(write(tmp_path, KEYED), {"UP_KEY": "k" * 8})
    assert master_key(config) == ""


def test_a_set_variable_beats_its_default(tmp_path: Path) -> None:
    config = load(
        write(tmp_path, KEYED), {"UP_KEY": "k" * 8, "GATEWAY_MASTER_KEY": "mk-1234", "UP_TIMEOUT": "2.5"}
    )
    assert master_key(config) == "mk-1234"
    assert config.providers["up"].timeout == 2.5


def test_a_variable_set_to_the_empty_string(tmp_path: Path) -> None:
    # Set but empty: `${VAR}` is the empty string, `${VAR:-default}` takes the default (as in sh).
    config = load(write(tmp_path, KEYED), {"UP_KEY": "", "UP_URL": "", "GATEWAY_MASTER_KEY": ""})
    settings = config.providers["up"]
    assert isinstance(settings, OpenAISettings)
    assert settings.api_key is not None and settings.api_key.get_secret_value() == ""
    assert settings.base_url.get_secret_value() == "http://127.0.0.1:9/v1"
    assert master_key(config) == ""


def test_an_interpolated_value_of_the_wrong_type_is_reported_without_echoing_it(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, KEYED), {"UP_KEY": "x", "UP_TIMEOUT": "sk-secret-ish"})
    assert "at providers.up.timeout:" in message
    assert "sk-secret-ish" not in message


def test_interpolate_handles_every_form() -> None:
    env = {"A": "1", "B": "two", "EMPTY": ""}
    tree = {
        "s": "${A}-${B}",
        "default": "${NOPE:-fallback}",
        "default_with_colon": "${NOPE:-http://h:1/x}",
        "empty_default": "x${NOPE:-}y",
        "empty_set": "[${EMPTY}]",
        "not_braced": "$A stays",
        "numbers": [1, 2.5, True, None],
        "nested": {"list": ["${B}", {"deep": "${A}"}]},
    }
    assert interpolate(tree, env, "f.yaml") == {
        "s": "1-two",
        "default": "fallback",
        "default_with_colon": "http://h:1/x",
        "empty_default": "xy",
        "empty_set": "[]",
        "not_braced": "$A stays",
        "numbers": [1, 2.5, True, None],
        "nested": {"list": ["two", {"deep": "1"}]},
    }


def test_interpolation_reads_the_process_environment_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UP_KEY", "sk-process-env")
    config, _ = load_config(write(tmp_path, KEYED), settings_model)
    assert api_key(config) == "sk-process-env"


def test_environment_selects_the_env_file_beside_the_config(tmp_path: Path) -> None:
    path = write(tmp_path, KEYED)
    (tmp_path / ".env.staging").write_text("UP_KEY=sk-staging\nUP_MODEL=staging-model\n")
    (tmp_path / ".env.prod").write_text("UP_KEY=sk-prod\n")
    (tmp_path / ".env").write_text("UP_KEY=sk-plain-dotenv\n")
    config = load(path, {"ENVIRONMENT": "staging"})
    assert api_key(config) == "sk-staging"
    assert config.models["chat"].deployments[0].model == "staging-model"
    assert api_key(load(path, {"ENVIRONMENT": "prod"})) == "sk-prod"


def test_real_environment_variables_win_over_the_env_file(tmp_path: Path) -> None:
    path = write(tmp_path, KEYED)
    (tmp_path / ".env.dev").write_text("UP_KEY=sk-file\nUP_MODEL=file-model\n")
    config = load(path, {"ENVIRONMENT": "dev", "UP_KEY": "sk-real"})
    assert api_key(config) == "sk-real"
    assert config.models["chat"].deployments[0].model == "file-model"


def test_without_environment_no_env_file_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, KEYED)
    (tmp_path / ".env.dev").write_text("UP_KEY=sk-file\n")
    assert "UP_KEY is not set" in config_error(path)


def test_an_environment_without_its_file_is_fine(tmp_path: Path) -> None:
    assert api_key(load(write(tmp_path, KEYED), {"ENVIRONMENT": "prod", "UP_KEY": "sk-x"})) == "sk-x"


def test_the_env_file_falls_back_to_the_working_directory(tmp_path: Path) -> None:
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    path = write(config_dir, KEYED)
    (Path.cwd() / ".env.staging").write_text("UP_KEY=sk-cwd\n")
    assert api_key(load(path, {"ENVIRONMENT": "staging"})) == "sk-cwd"
    (config_dir / ".env.staging").write_text("UP_KEY=sk-beside\n")
    assert api_key(load(path, {"ENVIRONMENT": "staging"})) == "sk-beside"


@pytest.mark.parametrize("value", ["production", "DEV", "test"])
def test_a_bad_environment_value(tmp_path: Path, value: str) -> None:
    message = config_error(write(tmp_path, GOOD), {"ENVIRONMENT": value})
    assert f"ENVIRONMENT={value!r} must be one of dev, staging, prod" in message


def test_no_path_means_the_embedded_default(tmp_path: Path) -> None:
    for path in (None, ""):
        config, note = load_config(path, settings_model, environ={})
        assert list(config.models) == ["mock"]
        assert note is not None and "OPENAI_API_KEY" in note


def test_the_embedded_default_reads_the_environment_file_too(tmp_path: Path) -> None:
    (Path.cwd() / ".env.prod").write_text("OPENAI_API_KEY=sk-from-file\nDEFAULT_MODEL=gpt-prod\n")
    config, _ = load_config(None, settings_model, environ={"ENVIRONMENT": "prod"})
    assert list(config.models) == ["gpt-prod"]
    with pytest.raises(ConfigError, match="config error in <embedded default>: ENVIRONMENT='qa'"):
        load_config(None, settings_model, environ={"ENVIRONMENT": "qa"})


def test_server_overrides_are_validated_like_the_file(tmp_path: Path) -> None:
    config = load(write(tmp_path, GOOD))
    changed = with_server_overrides(config, {"log_level": "DEBUG", "port": "9000", "host": None}, "flags")
    assert (changed.server.log_level, changed.server.port, changed.server.host) == (
        "debug",
        9000,
        "127.0.0.1",
    )
    assert with_server_overrides(config, {"log_level": None}, "flags") is config
    with pytest.raises(ConfigError) as caught:
        with_server_overrides(config, {"log_level": "loud"}, "LLM_GATEWAY_LOG_LEVEL")
    assert str(caught.value).startswith("config error in LLM_GATEWAY_LOG_LEVEL: at server.log_level: ")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "::1", "localhost", "gateway.internal", "10.0.0.7"])
def test_bindable_hosts_load(tmp_path: Path, host: str) -> None:
    config = load(write(tmp_path, GOOD + f"server: {{host: '{host}'}}\n"))
    assert config.server.host == host


def test_a_redis_url_keeps_its_password_for_redis_and_out_of_errors(tmp_path: Path) -> None:
    config = load(write(tmp_path, GOOD + "redis_url: 'rediss://:s3cr3t-pw@cache.internal:6380/2'\n"))
    assert config.redis_url is not None
    assert config.redis_url.get_secret_value() == "rediss://:s3cr3t-pw@cache.internal:6380/2"
    assert "s3cr3t-pw" not in repr(config)
    message = config_error(write(tmp_path, GOOD + "redis_url: 'redis://:s3cr3t-pw@cache.internal:port/2'\n"))
    assert "at redis_url: " in message and "s3cr3t-pw" not in message
