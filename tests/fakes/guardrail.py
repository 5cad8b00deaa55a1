"""A fake external guardrail service: the verdict JSON docs/policies.md describes.

POST /check    flagged when any text contains "forbidden"; `texts` with it replaced
POST /error    500 (the service is down)
POST /garbage  200 with a body that is no verdict
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class FakeGuardrail:
    received: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/check", self.check)
        app.router.add_post("/error", self.error)
        app.router.add_post("/garbage", self.garbage)
        return app

    async def check(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.received.append(body)
        texts = [str(text) for text in body.get("texts", [])]
        flagged = any("forbidden" in text for text in texts)
        verdict = {"flagged": flagged, "reason": "forbidden word" if flagged else None}
        verdict["texts"] = [text.replace("forbidden", "[removed]") for text in texts]
        return web.json_response(verdict)

    async def error(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        return web.json_response({"error": "down"}, status=500)

    async def garbage(self, request: web.Request) -> web.Response:
        return web.Response(text="<html>", content_type="text/html")
