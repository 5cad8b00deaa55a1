"""Latency at concurrency 1, measured with a blocking raw-socket client.

Sub-millisecond differences are the point of these numbers, so the client
does as little as possible between the two clock reads: the request bytes are
built once, the socket is kept alive, and httptools parses the answer. Every
sample alternates between the upstream called directly and the target, so a
drift in machine speed during the run hits both sides equally and cancels in
the *added* figures. The prober itself is left unpinned: pinned to the core
of the mock upstream it sometimes waits behind it for the scheduler, which
put milliseconds on p99 without touching p50.
"""

from __future__ import annotations

import socket
import statistics
import time
from dataclasses import dataclass, field

import httptools
import orjson

CHAT_BODY = {"model": "bench-model", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 16}


def chat_request(port: int, api_key: str, *, stream: bool) -> bytes:
    """The raw HTTP/1.1 request for one small chat completion."""
    body = orjson.dumps({**CHAT_BODY, "stream": True} if stream else CHAT_BODY)
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\n"
        f"Authorization: Bearer {api_key}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def control_request(port: int, method: str, path: str, payload: object | None = None) -> bytes:
    """A raw request for the mock's control routes (``/_mock/delay``, ``/_mock/stats``)."""
    body = b"" if payload is None else orjson.dumps(payload)
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def call(port: int, request: bytes) -> bytes:
    """Send one request on a fresh connection and return the body of its 200 answer."""
    connection = Connection(port)
    try:
        return connection.exchange(request)[2]
    finally:
        connection.close()


class ProbeError(RuntimeError):
    """A probed server answered with something other than a good chat completion."""


class _Answer:
    """httptools callbacks for one response; records when the first SSE event arrived."""

    def __init__(self) -> None:
        self.body: list[bytes] = []
        self.first_event_ns = 0
        self.done = False

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        if not self.first_event_ns and b"data:" in body:
            self.first_event_ns = time.perf_counter_ns()

    def on_message_complete(self) -> None:
        self.done = True


class Connection:
    """One keep-alive connection to a server on 127.0.0.1."""

    def __init__(self, port: int, timeout_s: float = 10.0) -> None:
        self._port = port
        self._timeout_s = timeout_s
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.create_connection(("127.0.0.1", self._port), timeout=self._timeout_s)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def exchange(self, request: bytes) -> tuple[int, int, bytes]:
        """Send one request; return (total ns, ns to the first SSE event or 0, body)."""
        sock = self._connect()
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        start = time.perf_counter_ns()
        sock.sendall(request)
        while not answer.done:
            data = sock.recv(65536)
            if not data:
                self.close()
                raise ProbeError(f"port {self._port} closed the connection mid-response")
            parser.feed_data(data)
        elapsed = time.perf_counter_ns() - start
        status = parser.get_status_code()
        body = b"".join(answer.body)
        if status != 200:
            raise ProbeError(f"port {self._port} answered {status}: {body[:300]!r}")
        if not parser.should_keep_alive():
            self.close()
        first = answer.first_event_ns - start if answer.first_event_ns else 0
        return elapsed, first, body


@dataclass(frozen=True)
class Percentiles:
    """p50 and p99 of a sample, in milliseconds."""

    p50: float
    p99: float
    count: int

    @classmethod
    def of(cls, samples_ns: list[int]) -> Percentiles:
        ms = sorted(s / 1e6 for s in samples_ns)
        cuts = statistics.quantiles(ms, n=100, method="inclusive")
        return cls(p50=statistics.median(ms), p99=cuts[98], count=len(ms))


@dataclass(frozen=True)
class Paired:
    """The same measurement taken alternately on the upstream and on the target."""

    direct: Percentiles
    target: Percentiles

    @property
    def added_p50(self) -> float:
        return self.target.p50 - self.direct.p50

    @property
    def added_p99(self) -> float:
        return self.target.p99 - self.direct.p99


@dataclass
class Samples:
    """Raw times in ns, upstream-direct and target side by side, gathered over several rounds."""

    direct: list[int] = field(default_factory=list)
    target: list[int] = field(default_factory=list)

    def paired(self) -> Paired:
        if len(self.target) < 2:
            raise ProbeError("too few samples: raise the phase time limit or check the target")
        return Paired(direct=Percentiles.of(self.direct), target=Percentiles.of(self.target))


def collect(
    into: Samples,
    direct_port: int,
    target_port: int,
    api_key: str,
    *,
    stream: bool,
    samples: int,
    max_seconds: float,
    warmup: int = 20,
) -> None:
    """Alternate requests to the upstream and the target, adding their times to ``into``.

    Non-streaming requests are timed to the end of the answer, streaming ones to the
    first SSE event. Stops at ``samples`` pairs or after ``max_seconds``.
    """
    direct, target = Connection(direct_port), Connection(target_port)
    sides = (
        (into.direct, direct, chat_request(direct_port, api_key, stream=stream)),
        (into.target, target, chat_request(target_port, api_key, stream=stream)),
    )
    deadline = time.monotonic() + max_seconds
    try:
        for index in range(warmup + samples):
            if index >= warmup and time.monotonic() > deadline:
                break
            for times, conn, request in sides:
                elapsed, first_event, body = conn.exchange(request)
                _check(body, stream)
                if index >= warmup:
                    times.append(first_event if stream else elapsed)
    finally:
        direct.close()
        target.close()


def _check(body: bytes, stream: bool) -> None:
    """Refuse an answer that is not what the mock sent, so an error page cannot pass for speed."""
    if stream:
        if b"chat.completion.chunk" not in body or b"[DONE]" not in body:
            raise ProbeError(f"not an SSE chat stream: {body[:300]!r}")
    elif b"Hello from mock" not in body:
        raise ProbeError(f"not the mock's chat completion: {body[:300]!r}")
