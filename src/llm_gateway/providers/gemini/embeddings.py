"""Embeddings on Google AI Studio: an OpenAI embeddings request as `embedContent` (one text)
or `batchEmbedContents` (a list), and the answer back as the OpenAI list. Pure functions."""

from __future__ import annotations

import math
from typing import Any

from llm_gateway.core.errors import InvalidRequest, UpstreamUnavailable
from llm_gateway.core.types import JSON
from llm_gateway.providers.gemini.request import model_path

EMBEDDING_FIELDS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})


def embedding_texts(request: JSON) -> list[str]:
    """The texts of an embeddings request; Gemini embeds text only, so token arrays are a 400."""
    for name, value in request.items():
        if name not in EMBEDDING_FIELDS and value is not None:
            raise InvalidRequest(f"'{name}' is not supported for Gemini embeddings", param=name)
    raw = request.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise InvalidRequest(
            "'input' must be a string or an array of strings for Gemini models", param="input"
        )
    return texts


def to_embed_request(request: JSON, model: str) -> tuple[str, JSON]:
    """(method, body): `embedContent` for one string, `batchEmbedContents` for a list."""
    texts = embedding_texts(request)
    dimensions = request.get("dimensions")
    if isinstance(request.get("input"), str):
        single: JSON = {"content": {"parts": [{"text": texts[0]}]}}
        if dimensions is not None:
            single["outputDimensionality"] = dimensions
        return "embedContent", single
    requests = []
    for text in texts:
        item: JSON = {"model": model_path(model), "content": {"parts": [{"text": text}]}}
        if dimensions is not None:
            item["outputDimensionality"] = dimensions
        requests.append(item)
    return "batchEmbedContents", {"requests": requests}


def from_embed_response(response: Any, texts: list[str], model: str, provider: str) -> JSON:
    """Gemini embeddings → the OpenAI list. Google reports no token count for AI Studio
    embeddings; when `usageMetadata` is absent, usage is estimated at 4 characters a token."""
    if isinstance(response, dict) and isinstance(response.get("embedding"), dict):
        vectors = [response["embedding"].get("values")]
    elif isinstance(response, dict) and isinstance(response.get("embeddings"), list):
        vectors = [e.get("values") if isinstance(e, dict) else None for e in response["embeddings"]]
    else:
        vectors = []
    if len(vectors) != len(texts) or not all(isinstance(v, list) for v in vectors):
        raise UpstreamUnavailable(
            f"upstream provider {provider!r} returned malformed embeddings", provider=provider
        )
    metadata = response.get("usageMetadata")
    tokens = metadata.get("promptTokenCount") if isinstance(metadata, dict) else None
    if not isinstance(tokens, int):
        tokens = sum(math.ceil(len(text) / 4) for text in texts)
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
