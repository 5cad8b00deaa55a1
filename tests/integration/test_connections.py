"""Connections that never finish a request are closed by their deadline, and a flood beyond
`server.max_connections` is answered 503 while the gateway stays usable (raw sockets)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx2
import pytest

from tests.conftest import GatewayFactory
from tests.gateway import GatewayProcess

DEADLINE = 0.5
LIMIT = 20
MOCK = {
    "providers": {"mock": {"type": "mock"}},
    "models": {"mock": {"deployments": [{"provider": "mock"}]}},
}
HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
BODY = b'{"model": "mock", "messages": [{"role": "user", "content": "hi"}]}'


@pytest.fixture(scope="module")
def gateway(start_gateway: GatewayFactory) -> GatewayProcess:
    server = {"header_timeout": DEADLINE, "body_timeout": DEADLINE, "max_connections": LIMIT}
    return start_gateway({**MOCK, "server": server})


def connect(gateway: GatewayProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", gateway.port), timeout=10)


def read_until_closed(sock: socket.socket, limit: float = 5.0) -> tuple[bytes, float]:
    """Everything the gateway sends until it closes the connection, and how long that took."""
    started = time.monotonic()
    sock.settimeout(limit)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received, time.monotonic() - started


def read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length, leaving the connection open."""
    sock.settimeout(5)
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return received


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


def assert_timed_out(sock: socket.socket, *, answered: bool = True) -> None:
    received, elapsed = read_until_closed(sock)
    assert elapsed < DEADLINE + 2, f"still open after {elapsed:.1f}s"
    if answered:
        assert status(received) == 408
        assert b'"request_timeout"' in received


def test_a_silent_connection_is_closed(gateway: GatewayProcess) -> None:
    with connect(gateway) as sock:
        assert_timed_out(sock)


def test_trickled_headers_are_cut_off(gateway: GatewayProcess) -> None:
    """Slowloris: a header line now and then, never the blank line that ends the head."""
    with connect(gateway) as sock:
        sock.sendall(HEAD)
        started = time.monotonic()
        while time.monotonic() - started < DEADLINE * 0.8:
            sock.sendall(b"X-a: b\r\n")
            time.sleep(DEADLINE / 5)
        assert_timed_out(sock)


def test_a_slow_body_is_cut_off(gateway: GatewayProcess) -> None:
    with connect(gateway) as sock:
        sock.sendall(HEAD + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        for _ in range(3):
            time.sleep(DEADLINE / 4)
            sock.sendall(b" ")
        assert_timed_out(sock)


def test_a_keep_alive_connection_gets_a_fresh_head_deadline(gateway: GatewayProcess) -> None:
    with connect(gateway) as sock:
        request = HEAD + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY
        sock.sendall(request)
        assert status(read_response(sock)) == 200
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\n")
        assert_timed_out(sock)


def test_a_websocket_upgrade_is_not_held_open(gateway: GatewayProcess) -> None:
    with connect(gateway) as sock:
        sock.sendall(
            HEAD + b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 100\r\n\r\n{"
        )
        received, elapsed = read_until_closed(sock)
    assert elapsed < DEADLINE + 2
    assert status(received) == 400
    assert b"upgrade" in received.lower()
    assert b"101 Switching" not in received


def test_a_plain_upgrade_get_is_served_without_switching(gateway: GatewayProcess) -> None:
    with connect(gateway) as sock:
        sock.sendall(
            b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
        )
        received, _ = read_until_closed(sock)
    assert status(received) == 200


@pytest.fixture
def flood(gateway: GatewayProcess) -> Iterator[list[socket.socket]]:
    sockets = [connect(gateway) for _ in range(LIMIT)]
    yield sockets
    for sock in sockets:
        sock.close()


def test_a_flood_beyond_the_limit_gets_503_then_clients_get_through(
    gateway: GatewayProcess, flood: list[socket.socket]
) -> None:
    time.sleep(0.1)
    refused = []
    for _ in range(5):
        with connect(gateway) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            received, _ = read_until_closed(sock)
            refused.append(status(received))
            assert b'"connection_limit"' in received
    assert refused == [503] * 5
    time.sleep(DEADLINE + 0.5)  # the flood's silent connections reach their head deadline
    response = httpx2.post(f"{gateway.url}/v1/chat/completions", content=BODY,
                           headers={"content-type": "application/json"}, timeout=5)  # fmt: skip
    assert response.status_code == 200
    assert gateway.logged("connections closed or refused")


def test_workers_use_the_same_deadlines(start_gateway: GatewayFactory) -> None:
    server = {"header_timeout": DEADLINE, "workers": 2}
    gateway = start_gateway({**MOCK, "server": server})
    with connect(gateway) as sock:
        assert_timed_out(sock)


def test_an_idle_keep_alive_connection_lives_its_keep_alive_timeout(start_gateway: GatewayFactory) -> None:
    gateway = start_gateway({**MOCK, "server": {"keep_alive_timeout": 1.5}})
    request = HEAD + f"Content-Length: {len(BODY)}\r\nContent-Type: application/json\r\n\r\n".encode() + BODY
    with connect(gateway) as sock:
        sock.sendall(request)
        assert status(read_response(sock)) == 200
        time.sleep(0.7)  # idle, within the timeout: the same connection serves again
        sock.sendall(request)
        assert status(read_response(sock)) == 200
        received, elapsed = read_until_closed(sock)  # then idle past it: closed by the gateway
        assert received == b"" and 1.0 < elapsed < 3.5
