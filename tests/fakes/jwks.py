"""A JWKS endpoint on loopback: an identity provider's public keys, rotatable by the test."""

from __future__ import annotations

import json
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa


class SigningKey:
    """A key pair generated in the test, with its `kid`, that signs tokens and publishes itself."""

    def __init__(self, kid: str, kind: str = "RSA") -> None:
        self.kid = kid
        self.alg = "RS256" if kind == "RSA" else "ES256"
        self.private: Any = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if kind == "RSA"
            else ec.generate_private_key(ec.SECP256R1())
        )

    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.algorithms.RSAAlgorithm if self.alg == "RS256" else jwt.algorithms.ECAlgorithm
        public: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**public, "kid": self.kid, "use": "sig", "alg": self.alg}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(claims, self.private, algorithm=self.alg, headers={"kid": self.kid, **header})


class FakeJWKS:
    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.requests = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/jwks.json", self._jwks)
        return app

    async def _jwks(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.json_response({"keys": [key.jwk() for key in self.keys]})
