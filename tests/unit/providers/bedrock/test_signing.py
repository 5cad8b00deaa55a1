"""Bedrock settings, SigV4 signing (checked by the fake's verifier) and credential sources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from llm_gateway.core.errors import ProviderError
from llm_gateway.providers.bedrock.provider import BedrockProvider, BedrockSettings, SigV4Signer
from llm_gateway.providers.transport import HttpClient
from tests.fakes.bedrock import verify_sigv4
from tests.gateway import UPSTREAM_CLIENT

KEY, SECRET, TOKEN = "AKIDUNITTEST0000001", "unit-secret/abcdefghijklmnop", "unit-session-token"
URL = "https://bedrock-runtime.eu-west-1.amazonaws.com/model/anthropic.claude-v2:1/converse"
BODY = b'{"messages":[]}'
HEADERS = {"content-type": "application/json", "accept": "application/json"}
AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


def settings(environ: dict[str, str] | None = None, **values: Any) -> BedrockSettings:
    """Validated as the loader does: environment variables come from `environ` alone."""
    block = {"type": "bedrock", "region": "eu-west-1", **values}
    return BedrockSettings.model_validate(block, context={"environ": environ or {}})


@pytest.fixture
def no_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("BOTO_CONFIG", str(tmp_path / "boto"))
    return monkeypatch


async def test_signed_headers_verify_with_the_same_keys() -> None:
    signer = SigV4Signer(settings(aws_access_key_id=KEY, aws_secret_access_key=SECRET), "b")
    headers = await signer.headers(URL, BODY, HEADERS)
    assert headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY}/")
    assert "/eu-west-1/bedrock/aws4_request" in headers["Authorization"]
    wire = {k.lower(): v for k, v in {**headers, "host": "bedrock-runtime.eu-west-1.amazonaws.com"}.items()}
    keys: dict[str, tuple[str, str | None]] = {KEY: (SECRET, None)}
    assert verify_sigv4("POST", URL, wire, BODY, keys, "eu-west-1") is None
    assert verify_sigv4("POST", URL, wire, BODY + b" ", keys, "eu-west-1") is not None
    assert (
        verify_sigv4("POST", URL.replace("converse", "converse-stream"), wire, BODY, keys, "eu-west-1")
        is not None
    )
    assert verify_sigv4("POST", URL, wire, BODY, {KEY: ("other", None)}, "eu-west-1") is not None
    assert verify_sigv4("POST", URL, wire, BODY, keys, "us-east-1") is not None


async def test_session_tokens_are_sent_and_signed() -> None:
    signer = SigV4Signer(
        settings(aws_access_key_id=KEY, aws_secret_access_key=SECRET, aws_session_token=TOKEN), "b"
    )
    headers = await signer.headers(URL, BODY, HEADERS)
    assert headers["X-Amz-Security-Token"] == TOKEN
    assert "x-amz-security-token" in headers["Authorization"]


async def test_credentials_come_from_the_environment_when_not_configured(
    no_aws_environment: pytest.MonkeyPatch,
) -> None:
    environ = {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN}
    headers = await SigV4Signer(settings(environ), "b").headers(URL, BODY, HEADERS)
    assert f"Credential={KEY}/" in headers["Authorization"]
    assert headers["X-Amz-Security-Token"] == TOKEN


def test_no_credentials_anywhere_is_a_config_error(no_aws_environment: pytest.MonkeyPatch) -> None:
    """Found missing when the config loads, not as a 500 at the first request."""
    with pytest.raises(ValidationError, match="no AWS credentials found: set aws_access_key_id"):
        settings()


async def test_a_settings_model_built_without_the_loader_still_fails_clearly_when_signing(
    no_aws_environment: pytest.MonkeyPatch,
) -> None:
    unchecked = BedrockSettings.model_construct(type="bedrock", region="eu-west-1")
    with pytest.raises(ProviderError) as caught:
        await SigV4Signer(unchecked, "bedrock-prod").headers(URL, BODY, HEADERS)
    assert caught.value.code == "provider_credentials_missing"
    assert "bedrock-prod" in caught.value.message


def test_region_comes_from_the_loaders_environment(no_aws_environment: pytest.MonkeyPatch) -> None:
    keys = {"aws_access_key_id": KEY, "aws_secret_access_key": SECRET}
    with pytest.raises(ValidationError, match="AWS_REGION"):
        settings(region=None, **keys)
    assert settings({"AWS_DEFAULT_REGION": "ap-south-1"}, region=None, **keys).region == "ap-south-1"
    both = {"AWS_DEFAULT_REGION": "ap-south-1", "AWS_REGION": "eu-central-1"}
    assert settings(both, region=None, **keys).region == "eu-central-1"


@pytest.mark.parametrize(
    "values",
    [
        {"aws_access_key_id": KEY},
        {"aws_secret_access_key": SECRET},
        {"aws_session_token": TOKEN},
        {"api_key": "k", "aws_access_key_id": KEY, "aws_secret_access_key": SECRET},
        {"api_key": "k", "aws_profile": "prod"},
        {"unknown_key": 1},
    ],
)
def test_incoherent_credentials_are_config_errors(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        settings(**values)


def test_secrets_stay_out_of_the_settings_repr() -> None:
    assert SECRET not in repr(settings(aws_access_key_id=KEY, aws_secret_access_key=SECRET))


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("anthropic.claude-3-haiku-20240307-v1:0", "/model/anthropic.claude-3-haiku-20240307-v1:0/converse"),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-2-1b-instruct-v1:0",
            "/model/arn:aws:bedrock:us-east-1:123456789012:inference-profile%2Fus.meta.llama3-2-1b-instruct-v1:0/converse",
        ),
    ],
)
def test_model_ids_are_one_path_segment(model: str, path: str) -> None:
    provider_settings = settings(aws_access_key_id=KEY, aws_secret_access_key=SECRET)
    provider = BedrockProvider(
        "b", provider_settings, HttpClient("b", provider_settings, client=UPSTREAM_CLIENT)
    )
    assert provider.url(model, "converse") == f"https://bedrock-runtime.eu-west-1.amazonaws.com{path}"
    local = settings(endpoint_url="http://127.0.0.1:9/", api_key="k")
    assert (
        BedrockProvider("b", local, HttpClient("b", local, client=UPSTREAM_CLIENT)).url(model, "converse")
        == f"http://127.0.0.1:9{path}"
    )
