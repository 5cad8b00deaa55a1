"""5,000 idle keep-alive client connections, held without errors (issue #14, "Memory").

Starts the mock upstream and one target as bench/run.py does, opens ``--connections``
client connections, sends one chat request on each (so each is a live keep-alive
connection the server has served), leaves them all idle for ``--hold`` seconds, then
sends a second request on every one of them. Every answer must be a 200 on the same
connection: a connection the server dropped, refused (503) or reset counts as an error.
Prints the target's RSS before, with the connections open, and after they are closed,
so the memory an idle connection costs is read off the same run.

Usage: ``.venv/bin/python bench/idle.py [--target "llm-gateway (governance, SQLite)"]
[--connections 5000] [--hold 30]``. Not part of ``make bench``'s default run (it needs a
file-descriptor limit above the connection count on both sides; it raises its own soft
limit to the hard one and says so when that is not enough).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from contextlib import ExitStack

import procstat
import targets
from phases import API_KEY
from run import RESULTS

BODY = b'{"model":"bench-model","messages":[{"role":"user","content":"hi"}]}'


def request(port: int, key: str) -> bytes:
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    )
    return head.encode() + BODY


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes) -> int:
    """One request on an open connection; the status of its answer, the body read whole."""
    writer.write(payload)
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed by the server")
    status = int(status_line.split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def hold(port: int, key: str, connections: int, hold_s: float, pid: int) -> dict[str, float]:
    payload = request(port, key)
    opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    errors = {"open": 0, "first": 0, "second": 0}
    gate = asyncio.Semaphore(64)

    async def first() -> None:
        async with gate:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                errors["open"] += 1
                return
            try:
                if await exchange(reader, writer, payload) != 200:
                    errors["first"] += 1
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                errors["first"] += 1
            opened.append((reader, writer))

    async def second(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with gate:
            try:
                if await exchange(reader, writer, payload) != 200:
                    errors["second"] += 1
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                errors["second"] += 1

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(200):  # warm-up: first-use costs (a tokenizer, pools) are not per connection
        await exchange(reader, writer, payload)
    writer.close()
    await asyncio.sleep(1)
    before = procstat.rss_mb(pid)
    await asyncio.gather(*(first() for _ in range(connections)))
    held = procstat.rss_mb(pid)
    print(f"{len(opened)} connections open and served once; idle for {hold_s:.0f} s", flush=True)
    await asyncio.sleep(hold_s)
    started = time.perf_counter()
    await asyncio.gather(*(second(r, w) for r, w in opened))
    second_s = time.perf_counter() - started
    for _, writer in opened:
        writer.close()
    await asyncio.sleep(2)
    after = procstat.rss_mb(pid)
    return {
        "connections": connections,
        "open errors": errors["open"],
        "first-request errors": errors["first"],
        "second-request errors (after idling)": errors["second"],
        "rss before MiB": before,
        "rss held MiB": held,
        "rss after close MiB": after,
        "KiB per idle connection": (held - before) * 1024 / max(1, len(opened)),
        "second round s": second_s,
    }


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < needed:
        print(f"!!! RLIMIT_NOFILE hard limit {hard} < {needed}: expect open errors", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--target", default=targets.GATEWAY_GOV_SQLITE)
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--hold", type=float, default=30.0)
    args = parser.parse_args()
    raise_fd_limit(args.connections + 100)
    logs = RESULTS / "logs"
    with ExitStack() as stack:
        upstream = stack.enter_context(
            targets.running(targets.shared_mock(), core=None, api_key=API_KEY, log_dir=logs)
        )
        target = targets.build(args.target, upstream.port, API_KEY)
        server = stack.enter_context(targets.running(target, core=None, api_key=API_KEY, log_dir=logs))
        result = asyncio.run(hold(server.port, server.api_key, args.connections, args.hold, server.pid))
    print(f"\n{args.target}, {args.connections} keep-alive connections idle {args.hold:.0f} s:")
    for name, value in result.items():
        print(f"  {name}: {value:,.1f}" if isinstance(value, float) else f"  {name}: {value}")
    failed = (
        result["open errors"]
        + result["first-request errors"]
        + result["second-request errors (after idling)"]
    )
    print("met" if not failed else "NOT met: some connections failed")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
