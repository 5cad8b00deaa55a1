"""AWS Signature Version 4 for Bedrock requests, by botocore, with its credential chain."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials
from botocore.session import Session

from llm_gateway.core.errors import ProviderError

if TYPE_CHECKING:
    from llm_gateway.providers.bedrock.provider import BedrockSettings

SIGNING_NAME = "bedrock"


class SigV4Signer:
    """Signs requests with the configured keys or credentials from botocore's chain.

    The chain (and any refresh) may touch files or the network, so it runs in a thread;
    signing itself is a few HMACs, done inline.
    """

    def __init__(self, settings: BedrockSettings, provider: str) -> None:
        self._settings = settings
        self._provider = provider
        self._source: Credentials | None = settings.chain_credentials
        if settings.aws_access_key_id is not None and settings.aws_secret_access_key is not None:
            token = settings.aws_session_token.get_secret_value() if settings.aws_session_token else None
            self._source = Credentials(
                settings.aws_access_key_id.get_secret_value(),
                settings.aws_secret_access_key.get_secret_value(),
                token,
            )

    def credential_values(self) -> tuple[str | None, ...]:
        """The key id, secret and session token held now, read without a refresh: botocore's
        refreshable credentials keep them as `_access_key`..., plain ones as `access_key`..."""
        if self._source is None:
            return ()
        held = vars(self._source)
        return tuple(held.get(name) or held.get(f"_{name}") for name in ("access_key", "secret_key", "token"))

    async def headers(self, url: str, body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        """`headers` plus `authorization`, `x-amz-date` and, with a session, `x-amz-security-token`."""
        request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
        SigV4Auth(await self._credentials(), SIGNING_NAME, self._settings.region).add_auth(request)
        return dict(request.headers.items())

    async def _credentials(self) -> ReadOnlyCredentials:
        source: Credentials = self._source or await asyncio.to_thread(self._from_chain)
        self._source = source
        if getattr(source, "refresh_needed", lambda: False)():
            return await asyncio.to_thread(source.get_frozen_credentials)
        return source.get_frozen_credentials()

    def _from_chain(self) -> Credentials:
        credentials = Session(profile=self._settings.aws_profile).get_credentials()
        if credentials is None:
            raise ProviderError(
                f"provider {self._provider!r} has no AWS credentials: set aws_access_key_id and "
                "aws_secret_access_key, or the standard AWS environment variables or profile",
                provider=self._provider,
                code="provider_credentials_missing",
            )
        return credentials
