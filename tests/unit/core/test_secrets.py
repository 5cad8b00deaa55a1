"""No credential ever shows in a config model's repr, str or dump, for every model there is.

The walk covers `GatewayConfig` and each model nested in it, and every registered provider
type's settings model (through the registry, not by module path). A field whose name says
"credential" must be a secret type, so a key added later as a plain `str` fails here.
"""

from __future__ import annotations

import itertools
import types
import typing
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from llm_gateway.core.config import GatewayConfig, ProviderSettings
from llm_gateway.core.secrets import RedisUrl, SecretHeaders, SecretUrl, mask_url
from llm_gateway.providers.registry import PROVIDER_TYPES, settings_model

CANARY = "canary-c4n4ry-0042"
SECRET_TYPES = (SecretStr, SecretUrl, SecretHeaders)
# A field is a credential when one of the words of its name is one of these.
CREDENTIAL_WORDS = {
    "key",
    "secret",
    "token",
    "password",
    "passwd",
    "credential",
    "credentials",
    "auth",
    "authorization",
    "headers",
    "url",
    "uri",
    "endpoint",
    "dsn",
}
# Values for required fields that are not credentials, by name.
REQUIRED = {
    "providers": {},
    "models": {},
    "provider": "p",
    "deployments": [{"provider": "p"}],
    "region": "eu-west-1",
    "issuer": "https://idp.example",
    "audience": "llm-gateway",
}


def annotation_types(annotation: Any) -> set[Any]:
    """Every class named in an annotation (through `X | None`, `Annotated`, `dict[K, V]`)."""
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return {annotation}
    found: set[Any] = set()
    origin = typing.get_origin(annotation)
    if isinstance(origin, type) and origin is not types.UnionType:
        found.add(origin)
    for arg in typing.get_args(annotation):
        if isinstance(arg, type) or typing.get_args(arg):
            found |= annotation_types(arg)
    return found


def config_models() -> dict[str, type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}

    def walk(model: type[BaseModel], name: str) -> None:
        if model in found.values():
            return
        found[name] = model
        for field in model.model_fields.values():
            for kind in annotation_types(field.annotation):
                if issubclass(kind, BaseModel):
                    walk(kind, kind.__name__)

    walk(GatewayConfig, "GatewayConfig")
    for type_name in PROVIDER_TYPES:
        model = settings_model(type_name)
        assert model is not None
        walk(model, f"{type_name}:{model.__name__}")
    return found


MODELS = dict(sorted(config_models().items()))  # a stable order: pytest-xdist workers must agree


NOT_CREDENTIALS = {"per_key_labels"}
"""Names with a credential word that hold none (`metrics.per_key_labels` is a bool the issue names)."""


def is_credential(name: str) -> bool:
    return name not in NOT_CREDENTIALS and bool(CREDENTIAL_WORDS & set(name.lower().split("_")))


def is_block(model: type[BaseModel], name: str) -> bool:
    """A nested settings block (`auth:`) is no credential itself; the walk checks its fields."""
    kinds = annotation_types(model.model_fields[name].annotation) - {type(None)}
    return bool(kinds) and all(issubclass(kind, BaseModel) for kind in kinds)


def secret_kind(model: type[BaseModel], name: str) -> type:
    kinds = annotation_types(model.model_fields[name].annotation) - {type(None)}
    secret = [kind for kind in kinds if issubclass(kind, SECRET_TYPES)]
    assert secret and len(kinds) == 1, (
        f"{model.__name__}.{name} looks like a credential but is {kinds}: make it SecretStr, "
        "SecretUrl (or a subclass) or SecretHeaders"
    )
    return secret[0]


def canary_values(kind: type) -> list[Any]:
    if issubclass(kind, SecretUrl):
        scheme = sorted(kind.schemes)[0]
        base = f"{scheme}://user-{CANARY}:{CANARY}@host.example:1234/0"
        return [f"{base}?key={CANARY}", base]
    if issubclass(kind, SecretHeaders):
        return [{"x-api-key": CANARY, "authorization": f"Bearer {CANARY}"}]
    return [CANARY]


def type_value(label: str) -> dict[str, str]:
    return {"type": label.partition(":")[0]} if ":" in label else {"type": "mock"}


def filled_instances(label: str, model: type[BaseModel]) -> list[tuple[set[str], BaseModel]]:
    """Valid instances that, together, hold a canary in every credential field.

    Fields that exclude each other (Bedrock's api_key and AWS keys) cannot all be set at
    once, so for each field the largest valid set of filled fields containing it is used.
    """
    secrets = [name for name in model.model_fields if is_credential(name) and not is_block(model, name)]
    base: dict[str, Any] = {k: v for k, v in REQUIRED.items() if k in model.model_fields}
    if "type" in model.model_fields:
        base.update(type_value(label))
        literal = typing.get_args(model.model_fields["type"].annotation)
        if typing.get_origin(model.model_fields["type"].annotation) is typing.Literal and literal:
            base["type"] = literal[0]  # a config section's discriminated type (guardrails)
    built: list[tuple[set[str], BaseModel]] = []
    for field in secrets:
        if any(field in names for names, _ in built):
            continue
        others = [name for name in secrets if name != field]
        instance = None
        for size in range(len(others), -1, -1):
            for chosen in itertools.combinations(others, size):
                names = {field, *chosen}
                choices = [canary_values(secret_kind(model, name)) for name in names]
                for values in itertools.product(*choices):
                    try:
                        instance = model.model_validate(
                            {**base, **dict(zip(names, values, strict=True))}, context={"environ": {}}
                        )
                        break
                    except ValidationError as exc:
                        assert CANARY not in str(exc), f"a validation error echoed a secret: {exc}"
                if instance is not None:
                    built.append((names, instance))
                    break
            if instance is not None:
                break
        assert instance is not None, f"no valid {label} with {field} set: teach REQUIRED a value"
    return built


def shown(value: Any) -> list[str]:
    """Every way a value is commonly turned into text for a log line."""
    return [repr(value), str(value), f"{value}", f"{value!r}"]


@pytest.mark.parametrize("label", list(MODELS))
def test_every_credential_field_is_a_secret_type(label: str) -> None:
    model = MODELS[label]
    for name in model.model_fields:
        if is_credential(name) and not is_block(model, name):
            secret_kind(model, name)


@pytest.mark.parametrize("label", list(MODELS))
def test_no_repr_str_or_dump_shows_a_credential(label: str) -> None:
    model = MODELS[label]
    for names, instance in filled_instances(label, model):
        texts = [
            *shown(instance),
            *shown(instance.model_dump()),
            instance.model_dump_json(),
            str(instance.model_dump(mode="json")),
        ]
        for name in names:
            texts += shown(getattr(instance, name))
        if isinstance(instance, ProviderSettings):  # as it sits inside the whole config
            config = GatewayConfig.model_validate({"providers": {"p": instance}, "models": {}})
            texts += [*shown(config), *shown(config.model_dump()), config.model_dump_json()]
        elif "type" in model.model_fields:  # a guardrail, as it sits inside the whole config
            data = {"providers": {}, "models": {}, "guardrails": {"g": instance}}
            config = GatewayConfig.model_validate(data)
            texts += [*shown(config), *shown(config.model_dump()), config.model_dump_json()]
        for text in texts:
            assert CANARY not in text, f"{label} ({sorted(names)}) shows a secret: {text}"


def test_the_walk_finds_the_models_and_credentials_it_should() -> None:
    """Guards the walk itself: were it to find nothing, the tests above would pass vacuously."""
    names = {model.__name__ for model in MODELS.values()}
    assert {"GatewayConfig", "ServerSettings", "ModelGroup", "Deployment", "BreakerSettings"} <= names
    assert len([label for label in MODELS if ":" in label]) == len(PROVIDER_TYPES)
    credentials = {(model.__name__, name) for model in MODELS.values() for name in model.model_fields}
    credentials = {pair for pair in credentials if is_credential(pair[1])}
    assert {("GatewayConfig", "master_key"), ("GatewayConfig", "redis_url")} <= credentials
    for type_name in ("openai", "anthropic", "gemini", "azure"):
        model = settings_model(type_name)
        assert model is not None and "headers" in model.model_fields
        assert secret_kind(model, "headers") is SecretHeaders


def test_secret_headers_are_a_plain_mapping_to_the_code_that_sends_them() -> None:
    model = settings_model("openai")
    assert model is not None
    settings = model.model_validate({"type": "openai", "headers": {"x-api-key": CANARY}})
    headers = settings.headers  # type: ignore[attr-defined]
    assert isinstance(headers, dict) and isinstance(headers, SecretHeaders)
    assert {"content-type": "application/json", **headers} == {
        "content-type": "application/json",
        "x-api-key": CANARY,
    }
    assert repr(headers) == "{'x-api-key': '**********'}"
    assert model.model_validate({"type": "openai"}).headers == {}  # type: ignore[attr-defined]


def test_a_secret_url_masks_userinfo_and_query_values_but_gives_the_url_on_request() -> None:
    url = SecretUrl._validate(f"https://me:{CANARY}@proxy.example:8443/v1?api-key={CANARY}&x=1")
    assert url.get_secret_value() == f"https://me:{CANARY}@proxy.example:8443/v1?api-key={CANARY}&x=1"
    assert str(url) == "https://**********@proxy.example:8443/v1?api-key=**********&x=**********"
    assert repr(url) == f"SecretUrl({str(url)!r})"
    assert str(SecretUrl._validate("https://api.openai.com/v1")) == "https://api.openai.com/v1"
    assert mask_url(f"redis://:{CANARY}@h:6379/0") == "redis://**********@h:6379/0"
    redis = RedisUrl._validate(f"redis://:{CANARY}@h:6379/0")
    assert CANARY not in repr(redis) and redis.get_secret_value().endswith("@h:6379/0")
