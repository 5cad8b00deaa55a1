"""Only the configured `Host` names are served (`server.allowed_hosts`).

A page on another site can make a browser send requests to a gateway on localhost or a
private address; with DNS rebinding its own host name resolves there, so the browser treats
the gateway's answers as same-origin. The one thing such a request cannot fake is `Host`:
it names the attacker's domain. A request whose `Host` is not allowed is a 421 before any
route runs, in the dialect of the route it hit.

Patterns: `*` (anything), `*.example.com` (any subdomain), `name` (any port), `name:port`.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from llm_gateway.api.refusals import HostNotAllowed
from llm_gateway.api.routes import RouteTable


def split_host(value: str) -> tuple[str, str | None]:
    """`host[:port]` (IPv6 in brackets) as the lower-cased name and the port, if any."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value.partition("]")
        port = rest[1:] if rest.startswith(":") else None
        return name + "]", port
    name, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        return value.removesuffix("."), None
    return name.removesuffix("."), port


class HostMatcher:
    def __init__(self, patterns: Sequence[str]) -> None:
        self.any = "*" in patterns
        self.names: set[str] = set()
        self.with_port: set[tuple[str, str]] = set()
        self.suffixes: list[str] = []
        for pattern in patterns:
            if pattern == "*":
                continue
            name, port = split_host(pattern)
            if name.startswith("*."):
                self.suffixes.append(name[1:])
            elif port is None:
                self.names.add(name)
            else:
                self.with_port.add((name, port))

    def allows(self, host: str | None) -> bool:
        if self.any:
            return True
        if not host:
            return False
        name, port = split_host(host)
        if name in self.names or (port is not None and (name, port) in self.with_port):
            return True
        return any(name.endswith(suffix) for suffix in self.suffixes)


class AllowedHostsMiddleware:
    def __init__(self, app: ASGIApp, *, routes: RouteTable, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.routes = routes
        self.matcher = HostMatcher(allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.matcher.any:
            await self.app(scope, receive, send)
            return
        host = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
                break
        if self.matcher.allows(host):
            await self.app(scope, receive, send)
            return
        error = HostNotAllowed(
            "this gateway does not serve the host this request names; "
            "add it to server.allowed_hosts if it should"
        )
        scope["state"]["error"] = error  # for the access log and metrics
        body = self.routes.dialect_for(scope["path"]).error_body(error, scope["state"].get("request_id"))
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": body})
