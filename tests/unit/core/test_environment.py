"""Provider settings see the loader's environment (validation context), never `os.environ`.

The loader validates every block with `context={"environ": env}`: the process environment,
or the `environ` a caller passes, plus `.env.<ENVIRONMENT>`. Bedrock's region and its AWS
credential chain are read from there, so a missing credential is a config error at load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llm_gateway.core.config import GatewayConfig
from llm_gateway.core.loader import ConfigError, load_config
from llm_gateway.providers.registry import settings_model

KEYS = {"AWS_ACCESS_KEY_ID": "AKIDENVIRON00000001", "AWS_SECRET_ACCESS_KEY": "environ-secret"}
API_KEYED = "providers:\n  br: {type: bedrock, api_key: k}\nmodels: {}\n"
CHAINED = "providers:\n  br: {type: bedrock, region: eu-west-1}\nmodels: {}\n"
AWS_NAMES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


@pytest.fixture(autouse=True)
def _elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cwd, and a process environment whose AWS values must never be used."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    for name in AWS_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_REGION", "os-environ-region-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDOSENVIRON000001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "os-environ-secret")
    return cwd


def write(folder: Path, text: str) -> Path:
    path = folder / "gateway.yaml"
    path.write_text(text)
    return path


def bedrock(config: GatewayConfig) -> Any:
    settings = config.providers["br"]
    assert type(settings) is settings_model("bedrock")
    return settings


def load(path: Path, environ: dict[str, str]) -> GatewayConfig:
    return load_config(path, settings_model, environ=environ)[0]


def error(path: Path, environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        load(path, environ)
    return str(caught.value)


def test_the_region_comes_from_the_environ_passed_to_load_config(tmp_path: Path) -> None:
    config = load(write(tmp_path, API_KEYED), {"AWS_DEFAULT_REGION": "ap-south-1"})
    assert bedrock(config).region == "ap-south-1"
    both = {"AWS_DEFAULT_REGION": "ap-south-1", "AWS_REGION": "eu-central-1"}
    assert bedrock(load(write(tmp_path, API_KEYED), both)).region == "eu-central-1"


def test_the_region_comes_from_the_env_file_of_the_environment(tmp_path: Path) -> None:
    (tmp_path / ".env.dev").write_text("AWS_REGION=sa-east-1\n")
    config = load(write(tmp_path, API_KEYED), {"ENVIRONMENT": "dev"})
    assert bedrock(config).region == "sa-east-1"


def test_os_environ_is_not_consulted_when_an_environ_is_passed(tmp_path: Path) -> None:
    message = error(write(tmp_path, API_KEYED), {})
    assert message.endswith(
        "at providers.br: region is required: set it here or in AWS_REGION / AWS_DEFAULT_REGION"
    )
    message = error(write(tmp_path, CHAINED), {})
    assert "AKIDOSENVIRON" not in message and "no AWS credentials found" in message


def test_without_an_environ_the_process_environment_is_used(tmp_path: Path) -> None:
    config, _ = load_config(write(tmp_path, API_KEYED), settings_model)
    assert bedrock(config).region == "os-environ-region-1"


def test_missing_aws_credentials_are_a_config_error_naming_the_provider(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    message = error(write(tmp_path, CHAINED), {"HOME": str(home)})
    assert message.startswith(f"config error in {tmp_path / 'gateway.yaml'}: at providers.br: ")
    for what in ("aws_access_key_id", "api_key", "AWS_ACCESS_KEY_ID", "AWS_PROFILE"):
        assert what in message
    assert "\n" not in message


def test_credentials_from_the_environ_are_resolved_at_load_and_used_for_signing(tmp_path: Path) -> None:
    credentials = bedrock(load(write(tmp_path, CHAINED), KEYS)).chain_credentials
    assert credentials is not None and credentials.access_key == KEYS["AWS_ACCESS_KEY_ID"]
    assert credentials.method == "env"


def test_credentials_from_an_env_file_are_found(tmp_path: Path) -> None:
    (tmp_path / ".env.staging").write_text("".join(f"{k}={v}\n" for k, v in KEYS.items()))
    credentials = bedrock(load(write(tmp_path, CHAINED), {"ENVIRONMENT": "staging"})).chain_credentials
    assert credentials.access_key == KEYS["AWS_ACCESS_KEY_ID"]


def test_credentials_from_a_profile_in_the_environs_shared_files(tmp_path: Path) -> None:
    shared = tmp_path / "credentials"
    shared.write_text("[work]\naws_access_key_id = AKIDPROFILE00000001\naws_secret_access_key = s\n")
    environ = {"AWS_SHARED_CREDENTIALS_FILE": str(shared), "AWS_CONFIG_FILE": str(tmp_path / "none")}
    credentials = bedrock(
        load(write(tmp_path, CHAINED), {**environ, "AWS_PROFILE": "work"})
    ).chain_credentials
    assert credentials.access_key == "AKIDPROFILE00000001"
    text = CHAINED.replace("region: eu-west-1", "region: eu-west-1, aws_profile: nope")
    message = error(write(tmp_path, text), environ)
    assert message.endswith(
        "at providers.br: AWS credentials cannot be resolved: The config profile (nope) could not be found"
    )


def test_the_instance_metadata_service_is_not_asked_unless_enabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.credentials import InstanceMetadataProvider

    asked: list[bool] = []
    monkeypatch.setattr(InstanceMetadataProvider, "load", lambda self: asked.append(True))
    error(write(tmp_path, CHAINED), {})
    assert not asked
    text = CHAINED.replace("region: eu-west-1", "region: eu-west-1, aws_instance_metadata: true")
    error(write(tmp_path, text), {})
    assert asked == [True]
