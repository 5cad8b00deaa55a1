"""Embeddings on Bedrock through InvokeModel: Amazon Titan and Cohere, chosen by model id.

Titan embeds one text per call (`{"inputText"}` → `{"embedding", "inputTextTokenCount"}`);
Cohere embeds a batch (`{"texts", "input_type"}` → `{"embeddings"}`, token count in the
`x-amzn-bedrock-input-token-count` header). Answers are OpenAI embeddings responses.
"""

from __future__ import annotations

import re
from typing import Literal

from llm_gateway.core.errors import InvalidRequest
from llm_gateway.core.types import JSON

Family = Literal["titan", "cohere"]
COHERE_BATCH = 96
"""Cohere on Bedrock takes at most 96 texts per call."""
FIELDS = frozenset({"model", "input", "encoding_format", "dimensions", "user", "input_type"})
"""`user` is only an attribution hint (kept by the gateway, not sent); `input_type` is
Cohere's own field (search_document, search_query, classification, clustering)."""
_GEO_PREFIX = re.compile(r"^(us|eu|apac|global|us-gov|jp|au|ca)\.")


def embedding_family(model: str) -> Family:
    base = _GEO_PREFIX.sub("", model.rsplit("/", 1)[-1])
    if base.startswith("amazon.titan-embed"):
        return "titan"
    if base.startswith("cohere.embed"):
        return "cohere"
    raise InvalidRequest(
        f"model {model!r} is not a Bedrock embedding model this gateway speaks "
        "(amazon.titan-embed-*, cohere.embed-*)",
        param="model",
    )


def embedding_inputs(request: JSON) -> list[str]:
    """The texts to embed; every other field is checked here so none is silently dropped."""
    for key, value in request.items():
        if key not in FIELDS and value is not None:
            raise InvalidRequest(f"'{key}' is not supported for Bedrock embeddings", param=key)
    if request.get("encoding_format") not in (None, "float", "base64"):
        raise InvalidRequest("'encoding_format' must be float or base64", param="encoding_format")
    raw = request.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise InvalidRequest(
            "'input' must be a string or a non-empty array of strings (Bedrock takes no token arrays)",
            param="input",
        )
    return texts


def titan_body(text: str, request: JSON, model: str) -> JSON:
    """Titan v2 takes `dimensions` (256, 512 or 1024) and `normalize`; v1 only the text."""
    body: JSON = {"inputText": text}
    if "embed-text-v1" in model or "embed-image" in model:
        if request.get("dimensions") is not None:
            raise InvalidRequest(f"'dimensions' is not supported by {model}", param="dimensions")
        return body
    if request.get("dimensions") is not None:
        body["dimensions"] = request["dimensions"]
    body["normalize"] = True
    return body


def cohere_bodies(texts: list[str], request: JSON, model: str) -> list[JSON]:
    """Batches of at most 96 texts; `dimensions` only for embed v4 (`output_dimension`)."""
    template: JSON = {"input_type": request.get("input_type") or "search_document"}
    if request.get("dimensions") is not None:
        if "embed-v4" not in model:
            raise InvalidRequest(f"'dimensions' is not supported by {model}", param="dimensions")
        template["output_dimension"] = request["dimensions"]
    return [{"texts": texts[i : i + COHERE_BATCH], **template} for i in range(0, len(texts), COHERE_BATCH)]


def cohere_vectors(body: JSON) -> list[list[float]]:
    embeddings = body.get("embeddings")
    if isinstance(embeddings, dict):  # the shape when `embedding_types` was sent
        embeddings = embeddings.get("float")
    return list(embeddings or [])


def embeddings_response(vectors: list[list[float]], model: str, prompt_tokens: int) -> JSON:
    """Float vectors; the embeddings service packs them as base64 when the client asks."""
    data = [
        {"object": "embedding", "index": index, "embedding": vector} for index, vector in enumerate(vectors)
    ]
    usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
    return {"object": "list", "data": data, "model": model, "usage": usage}
