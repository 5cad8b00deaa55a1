"""AWS Bedrock through the Converse and ConverseStream APIs, signed with SigV4 by botocore.

Translation lives beside this module: `request` and `response` (chat requests and answers),
`stream` (the binary event stream), `embeddings` (Titan, Cohere) and `errors`; `signing`
signs. This module holds the settings and the I/O around them.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import orjson
from pydantic import SecretStr, model_validator
from yarl import URL

from llm_gateway.core.capabilities import Capability
from llm_gateway.core.config import ProviderSettings
from llm_gateway.core.errors import ProviderError
from llm_gateway.core.types import ChatChunk, ChatCompletion, ChatRequest
from llm_gateway.providers.base import Provider
from llm_gateway.providers.bedrock.embeddings import (
    cohere_bodies,
    cohere_vectors,
    embedding_family,
    embedding_inputs,
    embeddings_response,
    titan_body,
)
from llm_gateway.providers.bedrock.errors import http_error
from llm_gateway.providers.bedrock.request import to_converse
from llm_gateway.providers.bedrock.response import completion_id, from_converse
from llm_gateway.providers.bedrock.signing import SigV4Signer
from llm_gateway.providers.bedrock.stream import BedrockStream, EventDecoder
from llm_gateway.providers.upstream import Reply, body_chunks, open_stream, post_json

JSON_TYPE = "application/json"
EVENT_STREAM_TYPE = "application/vnd.amazon.eventstream"


class BedrockSettings(ProviderSettings):
    region: str
    """From the config, else AWS_REGION / AWS_DEFAULT_REGION."""
    endpoint_url: str | None = None
    """Override `https://bedrock-runtime.{region}.amazonaws.com` (VPC endpoints, tests)."""
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    aws_profile: str | None = None
    """Without keys, credentials come from botocore's chain: env vars, this profile, SSO, IMDS."""
    api_key: SecretStr | None = None
    """A Bedrock API key, sent as a bearer token instead of SigV4 signing."""

    @model_validator(mode="before")
    @classmethod
    def _region_from_env(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("region"):
            region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            if not region:
                raise ValueError("region is required: set it here or in AWS_REGION / AWS_DEFAULT_REGION")
            return {**data, "region": region}
        return data

    @model_validator(mode="after")
    def _coherent_credentials(self) -> BedrockSettings:
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise ValueError("aws_access_key_id and aws_secret_access_key go together")
        if self.aws_session_token is not None and self.aws_access_key_id is None:
            raise ValueError("aws_session_token needs aws_access_key_id and aws_secret_access_key")
        if self.api_key is not None and (self.aws_access_key_id is not None or self.aws_profile):
            raise ValueError("use either api_key or AWS credentials, not both")
        return self


class BedrockProvider(Provider):
    settings_model = BedrockSettings
    capabilities = frozenset({Capability.CHAT, Capability.EMBEDDINGS})
    settings: BedrockSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        endpoint = (
            self.settings.endpoint_url or f"https://bedrock-runtime.{self.settings.region}.amazonaws.com"
        )
        self._endpoint = endpoint.rstrip("/")
        self._signer = SigV4Signer(self.settings, self.name)

    def url(self, model: str, operation: str) -> str:
        """The operation's URL, normalized as aiohttp will send it (so the signature matches)."""
        return str(URL(f"{self._endpoint}/model/{quote(model, safe='')}/{operation}"))

    async def _headers(self, url: str, body: bytes, accept: str) -> dict[str, str]:
        headers = {"content-type": JSON_TYPE, "accept": accept}
        if self.settings.api_key is not None:
            return {**headers, "authorization": f"Bearer {self.settings.api_key.get_secret_value()}"}
        return await self._signer.headers(url, body, headers)

    def _error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        return http_error(status, body, headers, provider=self.name)

    async def _post(self, model: str, operation: str, payload: Any, timeout: float | None) -> Reply:
        """POST JSON, return the parsed body and the response headers; error statuses raise."""
        url, body = self.url(model, operation), orjson.dumps(payload)
        headers = await self._headers(url, body, JSON_TYPE)
        return await post_json(self.http, url, body, headers=headers, error=self._error, timeout=timeout)

    async def complete(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> ChatCompletion:
        body, headers = await self._post(model, "converse", to_converse(request), timeout)
        return from_converse(body, model, headers.get("x-amzn-requestid"))

    async def stream(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        url, body = self.url(model, "converse-stream"), orjson.dumps(to_converse(request))
        headers = await self._headers(url, body, EVENT_STREAM_TYPE)
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        async with open_stream(
            self.http, url, body, headers=headers, error=self._error, timeout=timeout
        ) as response:
            chunk_id = completion_id(response.headers.get("x-amzn-requestid"))
            state = BedrockStream(chunk_id, model, int(time.time()), include_usage=include_usage)
            decoder = EventDecoder(self.name)
            async for data in body_chunks(response):
                for event, payload in decoder.feed(data):
                    for chunk in state.feed(event, payload):
                        yield chunk
        state.finish(self.name)

    async def embed(
        self, request: dict[str, Any], model: str, *, timeout: float | None = None
    ) -> dict[str, Any]:
        texts = embedding_inputs(request)
        if embedding_family(model) == "titan":
            calls = [self._post(model, "invoke", titan_body(t, request, model), timeout) for t in texts]
            answers = await asyncio.gather(*calls)
            vectors = [list(body["embedding"]) for body, _ in answers]
            tokens = sum(int(body.get("inputTextTokenCount") or 0) for body, _ in answers)
        else:
            calls = [self._post(model, "invoke", b, timeout) for b in cohere_bodies(texts, request, model)]
            answers = await asyncio.gather(*calls)
            vectors = [vector for body, _ in answers for vector in cohere_vectors(body)]
            tokens = sum(int(h.get("x-amzn-bedrock-input-token-count") or 0) for _, h in answers)
        return embeddings_response(vectors, model, tokens)
