"""A graceful shutdown is observable: the drain is logged when it starts and ends, and under
`serve --workers N` a sibling worker's `/metrics` shows the draining worker and the requests
it is still finishing (`llm_gateway_draining`, `llm_gateway_draining_requests`).

A draining process closes its listening socket at once (uvicorn), so it cannot be scraped
itself: the first test proves that too, since it is what an operator's scraper sees.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import httpx2 as httpx
import orjson
import pytest

from tests.conftest import GatewayFactory, openai_config
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess
from tests.integration.observed import scrape, total

DRIP = "drip-50-120"  # 120 chunks 50 ms apart: a stream of six seconds, long on a loaded machine


class RawStream:
    """A streamed chat request on a socket of our own, so the test knows its local port
    (and so which worker holds the connection). `text` is everything received."""

    def __init__(self, gateway: GatewayProcess) -> None:
        body = orjson.dumps(
            {"model": "drip", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        )
        self.sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=30)
        self.port: int = self.sock.getsockname()[1]
        head = (
            "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.sock.sendall(head.encode() + body)
        self.received = bytearray()
        self.thread = threading.Thread(target=self._read)
        self.thread.start()

    def _read(self) -> None:
        with self.sock:
            while chunk := self.sock.recv(65536):
                self.received.extend(chunk)

    def wait_for_chunks(self, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while self.received.count(b"data: ") < 2:
            assert time.monotonic() < deadline, bytes(self.received)
            time.sleep(0.02)

    def finish(self, timeout: float = 15) -> str:
        self.thread.join(timeout)
        assert not self.thread.is_alive()
        return self.received.decode()


@pytest.fixture
def config(fake_openai: tuple[FakeOpenAI, FakeServer]) -> dict[str, object]:
    return openai_config(fake_openai[1].url, {"drip": DRIP}, server={"drain_timeout": 10})


def refused(gateway: GatewayProcess, timeout: float = 3) -> bool:
    """Whether connections are refused within `timeout`: uvicorn closes the listening
    socket on its next tick after the signal, which may come just after the log line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{gateway.url}/metrics", timeout=1)
        except httpx.ConnectError:
            return True
        except httpx.TransportError:
            pass  # accepted just before the close, then closed unanswered
        time.sleep(0.02)
    return False


def test_a_drain_is_logged_from_its_start_while_the_process_cannot_be_scraped(
    config: dict[str, object], start_gateway: GatewayFactory
) -> None:
    gateway = start_gateway(config)
    assert total(scrape(gateway), "llm_gateway_draining") == 0
    stream = RawStream(gateway)
    stream.wait_for_chunks()
    gateway.terminate()
    assert gateway.logged("draining: 1 request(s) in flight"), gateway.log()
    assert refused(gateway), "a draining gateway still answered /metrics"
    assert gateway.process is not None and gateway.process.poll() is None, "refused by a live process"
    assert "data: [DONE]" in stream.finish()
    assert gateway.process is not None and gateway.process.wait(timeout=15) in (0, -15)
    assert gateway.logged("drained in"), gateway.log()
    assert gateway.log().index("draining: 1 request(s)") < gateway.log().index("drained in")


def descendants(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return children + [grandchild for child in children for grandchild in descendants(child)]


def serving_worker(gateway: GatewayProcess, client_port: int) -> int:
    """The worker process holding the server end of the connection from `client_port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = (int(address.rsplit(":", 1)[1], 16) for address in fields[1:3])
            if local == gateway.port and remote == client_port:
                inodes.add(f"socket:[{fields[9]}]")
    assert gateway.process is not None
    for pid in descendants(gateway.process.pid):
        with_fds = Path(f"/proc/{pid}/fd")
        try:
            held = {os.readlink(fd) for fd in with_fds.iterdir()}
        except OSError:
            continue
        if held & inodes:
            return pid
    raise AssertionError(f"no worker holds the connection from port {client_port}")


def scrape_sibling(gateway: GatewayProcess) -> str:
    """A scrape once the draining worker no longer accepts (it closes its listening socket
    a loop tick after the signal): a connection it took just before is closed unanswered."""
    for _ in range(20):
        try:
            return scrape(gateway)
        except httpx.TransportError:
            time.sleep(0.05)
    return scrape(gateway)


def test_a_sibling_worker_shows_a_worker_draining_and_what_it_still_serves(
    config: dict[str, object], start_gateway: GatewayFactory
) -> None:
    gateway = start_gateway({**config, "server": {"workers": 2, "drain_timeout": 10}})
    before = scrape(gateway)
    assert total(before, "llm_gateway_draining") == total(before, "llm_gateway_draining_requests") == 0
    stream = RawStream(gateway)
    stream.wait_for_chunks()
    worker = serving_worker(gateway, stream.port)
    os.kill(worker, signal.SIGTERM)  # one worker stopped alone, as a scale-down or a restart does

    assert gateway.logged("draining: 1 request(s) in flight"), gateway.log()
    during = scrape_sibling(gateway)
    assert total(during, "llm_gateway_draining") == 1, during
    assert total(during, "llm_gateway_draining_requests") == 1, during
    assert "data: [DONE]" in stream.finish()

    deadline = time.monotonic() + 10
    while Path(f"/proc/{worker}").exists():  # until the supervisor has reaped it
        assert time.monotonic() < deadline, "the drained worker did not exit"
        time.sleep(0.05)
    after = scrape(gateway)  # the worker is gone, and counts as neither draining nor in flight
    assert total(after, "llm_gateway_draining") == total(after, "llm_gateway_draining_requests") == 0
    assert total(after, "llm_gateway_in_flight_requests") == 1  # this scrape itself
    assert gateway.logged("drained in")
