"""`embeddings`: OpenAI's embeddings API for any model whose provider can embed.

The gateway owns `encoding_format`: providers that answer floats (Gemini, say) get their
vectors packed here as base64 of little-endian float32, as OpenAI encodes them; providers
that forward the field (openai) answer base64 themselves and are left alone.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from llm_gateway.core.capabilities import Capability
from llm_gateway.core.context import Call
from llm_gateway.core.errors import InvalidRequest
from llm_gateway.core.types import JSON, Usage
from llm_gateway.providers.base import embedder
from llm_gateway.routing.deployments import Target
from llm_gateway.services.service import Attempt, Service
from llm_gateway.services.usage import embedding_usage

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


class EmbeddingService(Service):
    requires = Capability.EMBEDDINGS

    def attempt(self, call: Call) -> Attempt:
        body = call.body
        encoding = body.get("encoding_format")

        async def attempt(target: Target) -> JSON:
            provider = embedder(target.provider)
            if provider is None:  # the group holds embedders only: a wiring bug, not the caller's
                raise TypeError(f"provider {target.provider.name!r} cannot embed")
            response = await provider.embed(body, target.model, timeout=target.timeout)
            return apply_encoding(response, encoding)

        return attempt

    def usage(self, value: Any) -> Usage | None:
        return embedding_usage(value)
