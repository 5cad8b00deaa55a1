"""The native upstream client (http1, pool, proxy, native) against raw loopback servers.

Each server is a script over the connection's raw bytes, run in the test's own loop, so what
the client sees is exactly what a misbehaving upstream can send: split reads, closed idle
sockets, bad status lines, silence. Errors are checked as `HttpClient` maps them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from pathlib import Path

import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from llm_gateway.core.config import ProviderSettings
from llm_gateway.core.errors import (
    UpstreamConnectionError,
    UpstreamMalformed,
    UpstreamResponseTooLarge,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from llm_gateway.providers.http1 import request_head
from llm_gateway.providers.pool import Origin, Pool
from llm_gateway.providers.proxy import Proxies, parse_proxy
from llm_gateway.providers.transport import HttpClient, sse_events
from llm_gateway.providers.upstream import read_body
from tests.gateway import free_port

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter


class Raw:
    """A loopback server running `script(server, reader, writer, n)` for its n-th connection."""

    def __init__(
        self,
        script: Callable[[Raw, Reader, Writer, int], Awaitable[None]],
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._script = script
        self._tls = tls
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Raw:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def url(self, path: str = "/x", scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    async def _handle(self, reader: Reader, writer: Writer) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        n = self.connections
        self.connections += 1
        try:
            await self._script(self, reader, writer, n)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            pass  # stopped by __aexit__: ending quietly keeps asyncio from logging it
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()
            self.closed.set()

    async def request(self, reader: Reader) -> bytes:
        """The next request (head and Content-Length body), or b"" when the client closed."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return b""
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        request = head + await reader.readexactly(length)
        self.requests.append(request)
        return request


def ok(body: bytes = b'{"ok":true}', extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def answering(*answers: bytes) -> Callable[[Raw, Reader, Writer, int], Awaitable[None]]:
    """A script that answers each request on a connection with the next of `answers`, again and again."""

    async def script(server: Raw, reader: Reader, writer: Writer, n: int) -> None:
        i = 0
        while await server.request(reader):
            writer.write(answers[i % len(answers)])
            await writer.drain()
            i += 1

    return script


def client(**settings: object) -> HttpClient:
    return HttpClient("up", ProviderSettings(type="test", **settings), client="native")  # type: ignore[arg-type]


async def fetch(http: HttpClient, url: str, *, timeout: float | None = None, limit: int = 1 << 20) -> bytes:
    async with http.request(
        "POST", url, headers={"content-type": "application/json"}, body=b"{}", timeout=timeout
    ) as r:
        return await read_body(r, limit, "up")


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    http = client()
    yield http
    await http.aclose()


async def test_keep_alive_reuses_the_same_socket(http: HttpClient) -> None:
    async with Raw(answering(ok())) as server:
        assert await fetch(http, server.url()) == b'{"ok":true}'
        assert await fetch(http, server.url()) == b'{"ok":true}'
    assert server.connections == 1 and len(server.requests) == 2
    head = server.requests[0].split(b"\r\n\r\n")[0].split(b"\r\n")
    assert head[0] == b"POST /x HTTP/1.1"
    assert b"host: 127.0.0.1:%d" % server.port in head and b"content-length: 2" in head
    assert b"accept-encoding: identity" in head


async def test_a_closed_idle_connection_is_retried_once_on_a_fresh_one(http: HttpClient) -> None:
    async def script(server: Raw, reader: Reader, writer: Writer, n: int) -> None:
        await server.request(reader)
        writer.write(ok())
        await writer.drain()
        if n == 0:
            await server.request(reader)  # read the next request, then hang up without a byte

    async with Raw(script) as server:
        await fetch(http, server.url())
        assert await fetch(http, server.url()) == b'{"ok":true}'
    assert server.connections == 2 and len(server.requests) == 3


async def test_a_fresh_connection_closed_before_answering_is_not_retried(http: HttpClient) -> None:
    async def script(server: Raw, reader: Reader, writer: Writer, n: int) -> None:
        await server.request(reader)

    async with Raw(script) as server:
        with pytest.raises(UpstreamConnectionError):
            await fetch(http, server.url())
    assert server.connections == 1


async def test_a_reused_connection_that_fails_after_answering_in_part_is_not_retried(
    http: HttpClient,
) -> None:
    async def script(server: Raw, reader: Reader, writer: Writer, n: int) -> None:
        await server.request(reader)
        writer.write(ok())
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npart")
        await writer.drain()

    async with Raw(script) as server:
        await fetch(http, server.url())
        with pytest.raises(UpstreamConnectionError):
            await fetch(http, server.url())
    assert server.connections == 1


async def test_chunked_bodies_split_at_every_byte(http: HttpClient) -> None:
    body = b"5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n"

    async def script(server: Raw, reader: Reader, writer: Writer, n: int) -> None:
        while await server.request(reader):
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            for i in range(len(body)):
                writer.write(body[i : i + 1])
                await writer.drain()
                await asyncio.sleep(0)

    async with Raw(script) as server:
        for _ in range(2):
            assert await fetch(http, server.url()) == b"hello world!"
    assert server.connections == 1


async def test_a_body_until_close_is_read_to_the_end_and_not_reused(http: HttpClient) -> None:
    async def script(server: Raw, reader: Reader, writer: Writer, n: int) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it")

    async with Raw(script) as server:
        assert await fetch(http, server.url()) == b"all of it"
        assert await fetch(http, server.url()) == b"all of it"
    assert server.connections == 2


async def test_an_interim_answer_is_skipped(http: HttpClient) -> None:
    hints = b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"
    async with (
        Raw(answering(hints + ok(b"real"))) as server,
        http.request("GET", server.url(), headers={}) as response,
    ):
        assert response.status == 200 and "link" not in response.headers
        assert await read_body(response, 100, "up") == b"real"


async def test_headers_are_lower_case_and_repeats_joined(http: HttpClient) -> None:
    extra = b"X-Thing: a\r\nx-thing: b\r\nRetry-After: 3\r\n"
    async with (
        Raw(answering(ok(b"", extra))) as server,
        http.request("GET", server.url(), headers={}) as response,
    ):
        assert response.headers["x-thing"] == "a, b" and response.headers.get("retry-after") == "3"
        assert response.content_length == 0
    assert b"content-length" not in server.requests[0], "a GET without a body declares none"


def sse(*events: bytes) -> bytes:
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events)
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        + chunks
        + b"0\r\n\r\n"
    )


async def test_sse_streams_event_by_event_and_the_connection_is_reused(http: HttpClient) -> None:
    async with Raw(answering(sse(b"event: a\ndata: 1\n\n", b"data: 2\n", b"\ndata: [DONE]\n\n"))) as server:
        for _ in range(2):
            async with http.request("POST", server.url(), headers={}, body=b"{}", stream=True) as response:
                events = [e async for e in sse_events(response)]
            assert events == [("a", b"1"), (None, b"2"), (None, b"[DONE]")]
    assert server.connections == 1


async def test_a_slow_reader_pauses_the_socket_and_still_gets_every_byte(http: HttpClient) -> None:
    pieces = [b"data: " + b"x" * 60_000 + b"\n\n"] * 40  # ~2.4 MB, far over the high-water mark

    async with (
        Raw(answering(sse(*pieces))) as server,
        http.request("GET", server.url(), headers={}, stream=True) as response,
    ):
        count = 0
        async for _event in sse_events(response):
            count += 1
            await asyncio.sleep(0.001)
    assert count == 40


async def test_an_answer_over_the_limit_is_a_502(http: HttpClient) -> None:
    big = b"x" * 5000
    chunked = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + b"1000\r\n" + b"y" * 4096 + b"\r\n" * 1
    )
    async with Raw(answering(ok(big), chunked + b"1000\r\n" + b"y" * 4096 + b"\r\n0\r\n\r\n")) as server:
        with pytest.raises(UpstreamResponseTooLarge):  # declared
            await fetch(http, server.url(), limit=4096)
        with pytest.raises(UpstreamResponseTooLarge):  # counted as it arrives
            await fetch(http, server.url(), limit=4096)


async def test_an_event_over_the_limit_is_a_502() -> None:
    http = client(max_event_bytes=1024)
    try:
        async with Raw(answering(sse(b"data: " + b"x" * 2000 + b"\n\n"))) as server:
            with pytest.raises(UpstreamResponseTooLarge):
                async with http.request("GET", server.url(), headers={}, stream=True) as response:
                    [e async for e in sse_events(response, limit=http.max_event_bytes)]
    finally:
        await http.aclose()


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 2x0 OK\r\n\r\n",
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nx-long: " + b"a" * 20_000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"".join(b"x-%d: 1\r\n" % i for i in range(200)) + b"\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"x-endless: " + b"a" * 3_000_000,
    ],
    ids=["status", "not-http", "header", "long-header", "many-headers", "chunk-size", "endless-head"],
)
async def test_a_malformed_answer_is_a_502(http: HttpClient, answer: bytes) -> None:
    async with Raw(answering(answer)) as server:
        with pytest.raises(UpstreamMalformed) as caught:
            await fetch(http, server.url())
    assert "broke the HTTP protocol" in caught.value.message


async def test_a_line_break_in_a_request_header_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        request_head("GET", "/", "h", {"x-a": "1\r\nx-injected: 1"}, None)
    assert request_head("GET", "/", "h", {"x-a": "1"}, None).endswith(
        b"x-a: 1\r\naccept-encoding: identity\r\naccept: */*\r\n\r\n"
    )


async def test_a_redirect_is_refused_not_followed(http: HttpClient) -> None:
    redirect = (
        b"HTTP/1.1 302 Found\r\nlocation: https://elsewhere.example/k?key=s\r\ncontent-length: 0\r\n\r\n"
    )
    async with Raw(answering(redirect)) as server:
        with pytest.raises(UpstreamUnavailable) as caught:
            await fetch(http, server.url())
    assert caught.value.code == "upstream_redirect" and "elsewhere.example" in caught.value.message
    assert "key" not in caught.value.message and len(server.requests) == 1


async def test_connection_refused_is_a_connection_error(http: HttpClient) -> None:
    with pytest.raises(UpstreamConnectionError) as caught:
        await fetch(http, f"http://127.0.0.1:{free_port()}/x")
    assert caught.value.status_code == 502 and caught.value.__cause__ is None


async def silent(server: Raw, reader: Reader, writer: Writer, n: int) -> None:
    await server.request(reader)
    await asyncio.sleep(30)


async def test_a_plain_answer_must_be_complete_by_its_deadline(http: HttpClient) -> None:
    async def slow_body(server: Raw, reader: Reader, writer: Writer, n: int) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
        for _ in range(100):  # never silent for long, but too slow in all
            writer.write(b"x")
            await asyncio.sleep(0.01)

    loop = asyncio.get_running_loop()
    for script in (silent, slow_body):
        async with Raw(script) as server:
            start = loop.time()
            with pytest.raises(UpstreamTimeout):
                await fetch(http, server.url(), timeout=0.3)
            assert 0.29 <= loop.time() - start < 1.5  # uvloop keeps time in milliseconds


async def test_a_stream_may_be_long_but_not_silent(http: HttpClient) -> None:
    async def drip(server: Raw, reader: Reader, writer: Writer, n: int) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for _ in range(8):  # 0.4 s in all, over the timeout, never silent for long
            writer.write(b"c\r\ndata: tick\n\n\r\n")
            await asyncio.sleep(0.05)
        await asyncio.sleep(30)

    received = []
    async with Raw(drip) as server:
        with pytest.raises(UpstreamTimeout):
            async with http.request("GET", server.url(), headers={}, timeout=0.25, stream=True) as response:
                async for _event, data in sse_events(response):
                    received.append(data)
    assert received == [b"tick"] * 8


async def test_a_stream_whose_first_byte_never_comes_times_out(http: HttpClient) -> None:
    async with Raw(silent) as server:
        with pytest.raises(UpstreamTimeout):
            async with http.request("GET", server.url(), headers={}, timeout=0.2, stream=True):
                pass


async def test_waiting_for_a_connection_is_bounded_by_the_connect_timeout() -> None:
    http = client(max_connections=1, connect_timeout=0.2)
    try:
        async with Raw(silent) as server:
            busy = asyncio.create_task(fetch(http, server.url(), timeout=5))
            await asyncio.sleep(0.05)
            with pytest.raises(UpstreamTimeout):
                await fetch(http, server.url(), timeout=5)
            busy.cancel()
            with pytest.raises(asyncio.CancelledError):
                await busy
    finally:
        await http.aclose()


async def test_a_connection_freed_by_one_request_serves_the_next_waiting() -> None:
    one = client(max_connections=1)
    try:
        async with Raw(answering(ok())) as server:
            results = await asyncio.gather(*(fetch(one, server.url()) for _ in range(5)))
        assert results == [b'{"ok":true}'] * 5 and server.connections == 1
    finally:
        await one.aclose()


async def test_cancelling_mid_stream_closes_the_connection(http: HttpClient) -> None:
    started = asyncio.Event()

    async def script(server: Raw, reader: Reader, writer: Writer, n: int) -> None:
        await server.request(reader)
        if n == 0:
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n8\r\ndata: 1\n\r\n")
            await writer.drain()
            await reader.read()  # until the client hangs up
            return
        writer.write(ok())
        while await server.request(reader):
            writer.write(ok())

    async def consume() -> None:
        async with http.request("GET", server.url(), headers={}, stream=True) as response:
            async for _piece in response.chunks():
                started.set()

    async with Raw(script) as server:
        task = asyncio.create_task(consume())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(server.closed.wait(), 2)  # the first connection was closed
        assert await fetch(http, server.url()) == b'{"ok":true}'
    assert server.connections == 2


async def test_an_abandoned_stream_that_was_read_to_its_end_is_reused(http: HttpClient) -> None:
    async with Raw(answering(sse(b"data: 1\n\ndata: [DONE]\n\n"))) as server:
        for _ in range(2):
            async with (
                http.request("GET", server.url(), headers={}, stream=True) as response,
                aclosing(sse_events(response)) as events,  # type: ignore[type-var]
            ):
                async for _event, data in events:
                    if data == b"[DONE]":
                        break
    assert server.connections == 1


async def test_bytes_after_the_answer_keep_the_connection_out_of_the_pool(http: HttpClient) -> None:
    async with Raw(answering(ok() + b"HTTP/1.1 200 OK\r\n")) as server:
        await fetch(http, server.url())
        await fetch(http, server.url())
    assert server.connections == 2


async def test_idle_connections_expire() -> None:
    loop = asyncio.get_running_loop()
    async with Raw(answering(ok())) as server:
        pool = Pool(Origin("127.0.0.1", server.port, None, None), limit=4, keepalive=0.1)
        connection = await pool.connect()
        response = connection.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", None, loop.time() + 5, 0)
        await response.head()
        assert [piece async for piece in response] == [b'{"ok":true}']
        response.release(True)
        assert pool.take() is connection
        response = connection.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", None, loop.time() + 5, 0)
        await response.head()
        [piece async for piece in response]
        response.release(True)
        await asyncio.wait_for(server.closed.wait(), 2)
        assert pool.take() is None
        pool.close()


def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, as (cert, key) files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path: Path) -> tuple[ssl.SSLContext, Path, list[str | None]]:
    """A server TLS context, its certificate's file, and the SNI names it was offered."""
    cert, key = certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    return context, cert, names


async def test_tls_verifies_the_upstream_and_sends_sni(
    tls_server: tuple[ssl.SSLContext, Path, list[str | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    context, cert, names = tls_server
    async with Raw(answering(ok()), tls=context) as server:
        untrusting = client()
        try:
            with pytest.raises(UpstreamConnectionError):
                await fetch(untrusting, server.url(scheme="https", host="localhost"))
        finally:
            await untrusting.aclose()
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        http = client()
        try:
            for _ in range(2):
                assert await fetch(http, server.url(scheme="https", host="localhost")) == b'{"ok":true}'
        finally:
            await http.aclose()
    assert names[-1] == "localhost" and server.connections == 1  # the refused one never got in


class ConnectProxy:
    """A loopback HTTP proxy: CONNECT tunnels, and absolute-form requests it answers itself."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []
        self.port = 0

    async def __aenter__(self) -> ConnectProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: Reader, writer: Writer) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.seen.append(head)
        method, target, _ = head.split(b"\r\n")[0].split(b" ")
        if method != b"CONNECT":
            writer.write(ok(b"from the proxy", b"connection: close\r\n"))
            await writer.drain()
            writer.close()
            return
        _host, port = target.rsplit(b":", 1)
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(source: Reader, sink: Writer) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except ConnectionError:
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


async def test_https_goes_through_a_connect_proxy_and_http_in_absolute_form(
    tls_server: tuple[ssl.SSLContext, Path, list[str | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    context, cert, names = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    async with ConnectProxy() as proxy, Raw(answering(ok()), tls=context) as server:
        monkeypatch.setenv("HTTPS_PROXY", f"http://user:pa%40ss@127.0.0.1:{proxy.port}")
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("NO_PROXY", "bypassed.example")
        http = client()
        try:
            for _ in range(2):
                assert await fetch(http, server.url(scheme="https", host="localhost")) == b'{"ok":true}'
            assert await fetch(http, "http://plain.example:8080/v1/x?y=1") == b"from the proxy"
        finally:
            await http.aclose()
    connect, absolute = proxy.seen
    assert connect.startswith(b"CONNECT localhost:%d HTTP/1.1\r\n" % server.port)
    assert b"proxy-authorization: Basic dXNlcjpwYUBzcw==" in connect  # user:pa@ss
    assert absolute.startswith(b"POST http://plain.example:8080/v1/x?y=1 HTTP/1.1\r\n")
    assert names[-1] == "localhost" and server.connections == 1


def test_no_proxy_and_unusable_proxies() -> None:
    proxies = Proxies({"https": "http://p:3128", "no": "internal.example,.corp"})
    assert proxies.for_origin("https", "api.example") == parse_proxy("http://p:3128", "https")
    assert proxies.for_origin("https", "internal.example") is None
    assert proxies.for_origin("https", "x.corp") is None
    assert proxies.for_origin("http", "api.example") is None
    with pytest.raises(ValueError, match="only http:// proxies"):
        Proxies({"https": "socks5://p:1080"})


async def test_a_proxy_that_refuses_the_tunnel_is_a_connection_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(server: Raw, reader: Reader, writer: Writer, n: int) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()

    async with Raw(refuse) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
        http = client()
        try:
            with pytest.raises(UpstreamConnectionError):
                await fetch(http, "https://api.example/x")
        finally:
            await http.aclose()


ON_UVLOOP: list[Callable[[HttpClient], Awaitable[None]]] = [
    test_keep_alive_reuses_the_same_socket,
    test_a_closed_idle_connection_is_retried_once_on_a_fresh_one,
    test_chunked_bodies_split_at_every_byte,
    test_sse_streams_event_by_event_and_the_connection_is_reused,
    test_a_slow_reader_pauses_the_socket_and_still_gets_every_byte,
    test_a_stream_may_be_long_but_not_silent,
    test_a_plain_answer_must_be_complete_by_its_deadline,
    test_cancelling_mid_stream_closes_the_connection,
    test_connection_refused_is_a_connection_error,
]


def on_uvloop(case: Callable[[], Awaitable[None]]) -> None:
    """Run `case` on uvloop, as the gateway serves: its transports are not asyncio's."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(case())  # type: ignore[arg-type]


@pytest.mark.parametrize("case", ON_UVLOOP, ids=lambda case: case.__name__.removeprefix("test_"))
def test_on_uvloop(case: Callable[[HttpClient], Awaitable[None]]) -> None:
    async def run() -> None:
        http = client()
        try:
            await case(http)
        finally:
            await http.aclose()

    on_uvloop(run)


def test_tls_and_the_proxy_on_uvloop(
    tls_server: tuple[ssl.SSLContext, Path, list[str | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    on_uvloop(
        lambda: test_https_goes_through_a_connect_proxy_and_http_in_absolute_form(tls_server, monkeypatch)
    )
