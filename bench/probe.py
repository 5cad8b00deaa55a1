"""Latency at concurrency 1, measured with a blocking raw-socket client.

Sub-millisecond differences are the point of these numbers, so the client
does as little as possible between the two clock reads: the request bytes are
built once, the socket is kept alive, and httptools parses the answer. Every
sample alternates between the upstream called directly and the target, so a
drift in machine speed during the run hits both sides equally and cancels in
the *added* figures.
"""

from __future__ import annotations

import socket
import statistics
import time
from dataclasses import dataclass

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


def paired(
    direct_port: int,
    target_port: int,
    api_key: str,
    *,
    stream: bool,
    samples: int,
    max_seconds: float,
    warmup: int = 20,
) -> Paired:
    """Alternate requests to the upstream and the target; for streams, time to first event.

    Stops at ``samples`` pairs or after ``max_seconds``, whichever comes first.
    """
    direct, target = Connection(direct_port), Connection(target_port)
    direct_request = chat_request(direct_port, api_key, stream=stream)
    target_request = chat_request(target_port, api_key, stream=stream)
    times: dict[str, list[int]] = {"direct": [], "target": []}
    deadline = time.monotonic() + max_seconds
    try:
        for index in range(warmup + samples):
            if index >= warmup and time.monotonic() > deadline:
                break
            for side, conn, request in (("direct", direct, direct_request), ("target", target, target_request)):
                elapsed, first_event, body = conn.exchange(request)
                _check(body, stream)
                if index >= warmup:
                    times[side].append(first_event if stream else elapsed)
    finally:
        direct.close()
        target.close()
    if len(times["target"]) < 2:
        raise ProbeError("too few samples: raise --max-seconds or check the target")
    return Paired(direct=Percentiles.of(times["direct"]), target=Percentiles.of(times["target"]))


def _check(body: bytes, stream: bool) -> None:
    """Refuse an answer that is not what the mock sent, so an error page cannot pass for speed."""
    if stream:
        if b"chat.completion.chunk" not in body or b"[DONE]" not in body:
            raise ProbeError(f"not an SSE chat stream: {body[:300]!r}")
    elif b"Hello from mock" not in body:
        raise ProbeError(f"not the mock's chat completion: {body[:300]!r}")
