"""AWS Bedrock through the Converse and ConverseStream APIs, signed with SigV4 by botocore.

Translation lives beside this module: `request` and `response` (chat requests and answers),
`stream` (the binary event stream), `embeddings` (Titan, Cohere) and `errors`; `signing`
signs. This module holds the settings and the I/O around them.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, cast
from urllib.parse import quote

import orjson
from botocore.configprovider import BOTOCORE_DEFAUT_SESSION_VARIABLES, ConfigChainFactory, ConfigValueStore
from botocore.credentials import (
    BotoProvider,
    ContainerProvider,
    Credentials,
    EnvProvider,
    InstanceMetadataProvider,
    OriginalEC2Provider,
    create_credential_resolver,
)
from botocore.exceptions import BotoCoreError
from botocore.session import Session
from pydantic import PrivateAttr, SecretStr, ValidationInfo, model_validator
from yarl import URL

from llm_gateway.core.capabilities import Capability
from llm_gateway.core.config import ProviderSettings
from llm_gateway.core.errors import ProviderError
from llm_gateway.core.secrets import SecretUrl, environ_of
from llm_gateway.core.types import ChatChunk, ChatCompletion, ChatRequest
from llm_gateway.providers import shape
from llm_gateway.providers.base import Provider, credentials
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
from llm_gateway.providers.redaction import Secrets
from llm_gateway.providers.shape import TRANSLATION_ERRORS
from llm_gateway.providers.transport import malformed
from llm_gateway.providers.upstream import Reply, body_chunks, open_stream, post_json

JSON_TYPE = "application/json"
EVENT_STREAM_TYPE = "application/vnd.amazon.eventstream"


class BedrockSettings(ProviderSettings):
    region: str
    """From the config, else AWS_REGION / AWS_DEFAULT_REGION of the loader's environment."""
    endpoint_url: SecretUrl | None = None
    """Override `https://bedrock-runtime.{region}.amazonaws.com` (VPC endpoints, tests)."""
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    aws_profile: str | None = None
    """Without keys, credentials come from botocore's chain, resolved when the config is
    loaded: env vars, this profile (or AWS_PROFILE), SSO, web identity, the container role."""
    aws_instance_metadata: bool = False
    """Let the chain also ask the EC2 instance metadata service. Off by default: away from EC2
    that lookup would hold every config load up on a network timeout."""
    api_key: SecretStr | None = None
    """A Bedrock API key, sent as a bearer token instead of SigV4 signing."""
    _chain_credentials: Credentials | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _region_from_env(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and not data.get("region"):
            environ = environ_of(info)
            region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
            if not region:
                raise ValueError("region is required: set it here or in AWS_REGION / AWS_DEFAULT_REGION")
            return {**data, "region": region}
        return data

    @model_validator(mode="after")
    def _coherent_credentials(self, info: ValidationInfo) -> BedrockSettings:
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise ValueError("aws_access_key_id and aws_secret_access_key go together")
        if self.aws_session_token is not None and self.aws_access_key_id is None:
            raise ValueError("aws_session_token needs aws_access_key_id and aws_secret_access_key")
        if self.api_key is not None and (self.aws_access_key_id is not None or self.aws_profile):
            raise ValueError("use either api_key or AWS credentials, not both")
        if self.api_key is None and self.aws_access_key_id is None:
            self._chain_credentials = self._credential_chain(environ_of(info))
            if self._chain_credentials is None:
                raise ValueError(
                    "no AWS credentials found: set aws_access_key_id and aws_secret_access_key (or "
                    "api_key) here, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or "
                    "a shared credentials file in the environment (aws_instance_metadata: true to "
                    "use an EC2 instance role)"
                )
        return self

    @property
    def chain_credentials(self) -> Credentials | None:
        """What botocore's chain found at load time, when no keys or api_key are configured."""
        return self._chain_credentials

    def _credential_chain(self, environ: Mapping[str, str]) -> Credentials | None:
        """botocore's default chain, reading `environ` where botocore would read `os.environ`.

        The session's variables (profile, credential and config file paths, web identity, ...)
        and the env, container and legacy boto providers read `environ`; with no HOME there,
        the shared files are none rather than this process's. Assume-role and SSO credentials
        are deferred by botocore (fetched at first use); a `credential_process` runs now.
        An empty variable counts as unset (`AWS_PROFILE=` means no profile, as `${VAR:-}` gives).
        """
        env = {name: value for name, value in environ.items() if value}
        session = Session()
        chain = ConfigChainFactory(session=session, environ=env)
        variables = {
            name: chain.create_config_chain(
                instance_name=name,
                env_var_names=env_names,
                config_property_names=config_names,
                default=default,
                conversion_func=convert,
            )
            for name, (config_names, env_names, default, convert) in BOTOCORE_DEFAUT_SESSION_VARIABLES.items()
        }
        session.register_component("config_store", ConfigValueStore(mapping=variables))
        if "HOME" not in env:
            session.set_config_variable(
                "credentials_file", env.get("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
            )
            session.set_config_variable("config_file", env.get("AWS_CONFIG_FILE", os.devnull))
        if self.aws_profile:
            session.set_config_variable("profile", self.aws_profile)
        try:  # a missing profile, an unreadable file, a failing credential_process
            resolver = create_credential_resolver(session)
            reading_env = (EnvProvider, ContainerProvider, BotoProvider, OriginalEC2Provider)
            replacements = {kind.METHOD: kind(environ=env) for kind in reading_env}
            resolver.providers = [
                replacements.get(p.METHOD, p)
                for p in resolver.providers
                if self.aws_instance_metadata or p.METHOD != InstanceMetadataProvider.METHOD
            ]
            credentials: Credentials | None = resolver.load_credentials()
        except BotoCoreError as exc:
            raise ValueError(f"AWS credentials cannot be resolved: {exc}") from None
        return credentials


class BedrockProvider(Provider):
    settings_model = BedrockSettings
    capabilities = frozenset({Capability.CHAT, Capability.EMBEDDINGS})
    settings: BedrockSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        endpoint = (
            self.settings.endpoint_url.get_secret_value()
            if self.settings.endpoint_url is not None
            else f"https://bedrock-runtime.{self.settings.region}.amazonaws.com"
        )
        self._endpoint = endpoint.rstrip("/")
        self._signer = SigV4Signer(self.settings, self.name)
        self._signed_with: tuple[str | None, ...] = ()
        self.secrets()

    def secrets(self) -> Secrets:
        """The configured keys, plus the AWS credentials the signer holds now (the chain's may
        be refreshed while the gateway runs)."""
        current = self._signer.credential_values()
        if current != self._signed_with or not self._secrets:
            self._signed_with = current
            self._secrets = Secrets([*credentials(self.settings), *current])
        return self._secrets

    def url(self, model: str, operation: str) -> str:
        """The operation's URL, normalized as aiohttp will send it (so the signature matches)."""
        return str(URL(f"{self._endpoint}/model/{quote(model, safe='')}/{operation}"))

    async def _headers(self, url: str, body: bytes, accept: str) -> dict[str, str]:
        headers = {"content-type": JSON_TYPE, "accept": accept}
        if self.settings.api_key is not None:
            return {**headers, "authorization": f"Bearer {self.settings.api_key.get_secret_value()}"}
        return await self._signer.headers(url, body, headers)

    def _error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        secrets = self.secrets()
        mapped = http_error(status, secrets.body(body), headers, provider=self.name, secrets=secrets.values)
        return secrets.error(mapped)

    async def _post(self, model: str, operation: str, payload: Any, timeout: float | None) -> Reply:
        """POST JSON, return the parsed body and the response headers; error statuses raise."""
        url, body = self.url(model, operation), orjson.dumps(payload)
        headers = await self._headers(url, body, JSON_TYPE)
        return await post_json(self.http, url, body, headers=headers, error=self._error, timeout=timeout)

    async def complete(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> ChatCompletion:
        body, headers = await self._post(model, "converse", to_converse(request), timeout)
        try:
            return from_converse(body, model, headers.get("x-amzn-requestid"))
        except TRANSLATION_ERRORS:
            raise malformed(self.name, "returned an answer of the wrong shape") from None

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
            secrets = self.secrets()
            decoder = EventDecoder(self.name, self.http.max_event_bytes, secrets.values)
            async for data in body_chunks(response):
                for chunk in self._translated(decoder, state, data, secrets):
                    yield chunk
        state.finish(self.name)

    def _translated(
        self, decoder: EventDecoder, state: BedrockStream, data: bytes, secrets: Secrets
    ) -> Iterator[ChatChunk]:
        """The chunks of the events in `data`, one event at a time: an exception event after
        good ones in the same read still lets the good ones through first."""
        try:
            for event, payload in decoder.feed(data):
                yield from state.feed(event, payload)
        except TRANSLATION_ERRORS:
            raise malformed(self.name, "sent a stream event of the wrong shape") from None
        except ProviderError as error:
            raise secrets.error(error) from None

    async def embed(
        self, request: dict[str, Any], model: str, *, timeout: float | None = None
    ) -> dict[str, Any]:
        try:
            answer = await self._embed(request, model, timeout)
        except TRANSLATION_ERRORS:
            raise malformed(self.name, "returned embeddings of the wrong shape") from None
        return cast(dict[str, Any], shape.embeddings(answer, self.name))

    async def _embed(self, request: dict[str, Any], model: str, timeout: float | None) -> dict[str, Any]:
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
