"""One `/v1/embeddings` request: validate, resolve the model, route, return OpenAI's shape.

The gateway owns `encoding_format`: providers that answer floats (Gemini, say) get their
vectors packed here as base64 of little-endian float32, as OpenAI encodes them; providers
that forward the field (openai) answer base64 themselves and are left alone.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import replace
from typing import Any

from llm_gateway.core.errors import InvalidRequest
from llm_gateway.core.types import JSON
from llm_gateway.providers.base import Provider, embedder
from llm_gateway.routing.deployments import Group, ModelCatalog, Target
from llm_gateway.routing.executor import Executor, Served

ENCODING_FORMATS = ("float", "base64")


def check_embedding_request(body: JSON) -> None:
    """The OpenAI contract for an embeddings request, with 400s that name the field."""
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise InvalidRequest("'model' must be a string", param="model")
    if "input" not in body:
        raise InvalidRequest(
            "'input' is a required property", param="input", code="missing_required_parameter"
        )
    check_input(body["input"])
    encoding = body.get("encoding_format")
    if encoding is not None and encoding not in ENCODING_FORMATS:
        raise InvalidRequest("'encoding_format' must be 'float' or 'base64'", param="encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and not (_is_token(dimensions) and dimensions > 0):
        raise InvalidRequest("'dimensions' must be a positive integer", param="dimensions")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise InvalidRequest("'user' must be a string", param="user")


def check_input(value: Any) -> None:
    """`input`: a string, an array of strings, an array of tokens, or an array of token arrays."""
    if isinstance(value, str):
        if not value:
            raise InvalidRequest("'input' must not be an empty string", param="input")
        return
    if not isinstance(value, list) or not value:
        raise InvalidRequest(
            "'input' must be a string, an array of strings, or an array of token arrays", param="input"
        )
    if all(_is_token(item) for item in value):
        return
    for index, item in enumerate(value):
        where = f"input[{index}]"
        if isinstance(item, str):
            if not item:
                raise InvalidRequest(f"'{where}' must not be an empty string", param=where)
        elif isinstance(item, list):
            if not item or not all(_is_token(token) for token in item):
                raise InvalidRequest(f"'{where}' must be a non-empty array of integer tokens", param=where)
        else:
            raise InvalidRequest(f"'{where}' must be a string or an array of integer tokens", param=where)
    if len({isinstance(item, str) for item in value}) > 1:
        raise InvalidRequest("'input' must not mix strings and token arrays", param="input")


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def can_embed(provider: Provider) -> bool:
    return embedder(provider) is not None


def encode_base64(vector: list[float]) -> str:
    """OpenAI's base64 encoding: the vector's little-endian float32 bytes."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def apply_encoding(response: JSON, encoding_format: str | None) -> JSON:
    """Pack float vectors as base64 when the client asked for it and the upstream did not."""
    if encoding_format != "base64":
        return response
    data = []
    for item in response.get("data") or []:
        vector = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(vector, list):
            item = {**item, "embedding": encode_base64(vector)}
        data.append(item)
    return {**response, "data": data}


class EmbeddingService:
    def __init__(self, catalog: ModelCatalog, executor: Executor) -> None:
        self._catalog = catalog
        self._executor = executor
        self._embedders: dict[str, Group] = {}

    def resolve(self, body: JSON) -> Group:
        model = body.get("model") or self._catalog.default_model
        if not model:
            raise InvalidRequest(
                "you must provide a model parameter", param="model", code="missing_required_parameter"
            )
        return self._embedding_group(self._catalog.group(model))

    def _embedding_group(self, group: Group) -> Group:
        """The group's deployments that can embed: a group mixing chat-only and embedding
        deployments routes embeddings to the latter only (derived once, then cached)."""
        cached = self._embedders.get(group.name)
        if cached is not None:
            return cached
        targets = tuple(t for t in group.targets if can_embed(t.provider))
        if not targets:
            raise _not_an_embedder(group.name)
        derived = group if len(targets) == len(group.targets) else replace(group, targets=targets)
        self._embedders[group.name] = derived
        return derived

    async def embed(self, body: JSON) -> Served[JSON]:
        check_embedding_request(body)
        group = self.resolve(body)

        async def attempt(target: Target) -> JSON:
            provider = embedder(target.provider)
            if provider is None:
                raise _not_an_embedder(group.name)
            response = await provider.embed(body, target.model, timeout=target.timeout)
            return apply_encoding(response, body.get("encoding_format"))

        return await self._executor.call(group, attempt)


def _not_an_embedder(model: str) -> InvalidRequest:
    return InvalidRequest(
        f"The model {model!r} cannot create embeddings: its provider does not support /v1/embeddings.",
        param="model",
        code="model_not_supported",
    )
