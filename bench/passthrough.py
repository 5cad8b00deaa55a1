"""The Python floor: the least a FastAPI proxy can do per request.

It forwards the body of POST /v1/chat/completions to the upstream through one
pooled client made in the lifespan and returns the upstream's bytes, streaming
them through when the upstream answers with SSE. It parses nothing and checks
nothing, so no real gateway on the same stack can be faster; llm-gateway's
throughput is reported as a share of this one's.

``--client`` picks the HTTP client (aiohttp or httpx2); comparing the two on
this floor is how the project chose its upstream client.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
import httpx2
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

SSE = "text/event-stream"


def aiohttp_app(upstream: str) -> FastAPI:
    """The floor on aiohttp: one ClientSession, unlimited pool, no per-request timeout object."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None)
        async with aiohttp.ClientSession(upstream, connector=connector) as session:
            app.state.session = session
            yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        session: aiohttp.ClientSession = request.app.state.session
        body = await request.body()
        upstream_response = await session.post("chat/completions", data=body, headers=_JSON)
        media_type = upstream_response.content_type
        if media_type != SSE:
            async with upstream_response:
                content = await upstream_response.read()
            return Response(content, upstream_response.status, media_type=media_type)

        async def relay() -> AsyncIterator[bytes]:
            async with upstream_response:
                async for piece in upstream_response.content.iter_any():
                    yield piece

        return StreamingResponse(relay(), upstream_response.status, media_type=SSE)

    return app


def httpx2_app(upstream: str) -> FastAPI:
    """The same floor on httpx2, with a pool as large as aiohttp's in practice."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limits = httpx2.Limits(max_connections=None, max_keepalive_connections=256)
        async with httpx2.AsyncClient(base_url=upstream, limits=limits, trust_env=False) as client:
            app.state.client = client
            yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        client: httpx2.AsyncClient = request.app.state.client
        upstream_request = client.build_request(
            "POST", "chat/completions", content=await request.body(), headers=_JSON
        )
        upstream_response = await client.send(upstream_request, stream=True)
        media_type = upstream_response.headers.get("content-type", "application/json")
        if not media_type.startswith(SSE):
            try:
                content = await upstream_response.aread()
            finally:
                await upstream_response.aclose()
            return Response(content, upstream_response.status_code, media_type=media_type)

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for piece in upstream_response.aiter_raw():
                    yield piece
            finally:
                await upstream_response.aclose()

        return StreamingResponse(relay(), upstream_response.status_code, media_type=SSE)

    return app


_JSON = {"content-type": "application/json"}
APPS: dict[str, Callable[[str], FastAPI]] = {"aiohttp": aiohttp_app, "httpx2": httpx2_app}


def main() -> None:
    parser = argparse.ArgumentParser(description="bare FastAPI passthrough proxy (the benchmark's floor)")
    parser.add_argument("--client", choices=sorted(APPS), default="aiohttp")
    parser.add_argument("--upstream", default="http://127.0.0.1:18000/v1/", help="base URL ending in /v1/")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18100)
    args = parser.parse_args()
    upstream = args.upstream if args.upstream.endswith("/") else args.upstream + "/"
    app = APPS[args.client](upstream)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
