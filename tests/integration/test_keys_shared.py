"""Key changes made on one gateway instance reach another within 5 s, measured from outside:
two processes sharing PostgreSQL and Redis (notified at once), and two sharing a SQLite
file without Redis (the revision check every `auth.refresh_seconds`)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory, openai_config
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess

BOUND = 5.0
ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}


def admin(gateway: GatewayProcess, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
    response = httpx.request(method, f"{gateway.url}{path}", json=body, headers=ADMIN, timeout=10)
    assert response.status_code == expect, response.text
    return response.json()


def status(gateway: GatewayProcess, secret: str) -> tuple[int, str]:
    response = httpx.get(f"{gateway.url}/v1/models", headers={"authorization": f"Bearer {secret}"}, timeout=5)
    return response.status_code, response.text


def until(check: Callable[[], bool], bound: float = BOUND) -> float:
    """Seconds until `check()` holds, polled every 20 ms; fails past `bound`."""
    start = time.monotonic()
    while not check():
        elapsed = time.monotonic() - start
        assert elapsed < bound, f"not seen within {bound} s"
        time.sleep(0.02)
    return time.monotonic() - start


def refused(gateway: GatewayProcess, secret: str, word: str) -> Callable[[], bool]:
    def check() -> bool:
        code, text = status(gateway, secret)
        return code == 401 and word in text

    return check


def accepted(gateway: GatewayProcess, secret: str) -> Callable[[], bool]:
    return lambda: status(gateway, secret)[0] == 200


def observe_every_change(writer: GatewayProcess, reader: GatewayProcess, grace: int) -> dict[str, float]:
    """Create, block, unblock, rotate with grace, expire and revoke on `writer`; the seconds
    until `reader` answered accordingly, per change."""
    seen: dict[str, float] = {}
    key = admin(writer, "POST", "/admin/keys", {"name": "shared"}, expect=201)
    seen["create"] = until(accepted(reader, key["key"]))
    admin(writer, "PATCH", f"/admin/keys/{key['id']}", {"blocked": True})
    seen["block"] = until(refused(reader, key["key"], "blocked"))
    admin(writer, "PATCH", f"/admin/keys/{key['id']}", {"blocked": False})
    seen["unblock"] = until(accepted(reader, key["key"]))
    rotated = admin(writer, "POST", f"/admin/keys/{key['id']}/rotate", {"grace_seconds": grace})
    seen["rotate"] = until(accepted(reader, rotated["key"]))
    assert status(reader, key["key"])[0] == 200  # the old secret, in its grace period
    seen["grace over"] = until(refused(reader, key["key"], "rotated"), bound=grace + BOUND)
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    admin(writer, "PATCH", f"/admin/keys/{key['id']}", {"expires_at": soon})
    seen["expire"] = until(refused(reader, rotated["key"], "expired"), bound=1 + BOUND)
    other = admin(writer, "POST", "/admin/keys", {"name": "shared-2"}, expect=201)
    until(accepted(reader, other["key"]))
    admin(writer, "DELETE", f"/admin/keys/{other['id']}")
    seen["revoke"] = until(refused(reader, other["key"], "revoked"))
    return seen


def pair(
    start_gateway: GatewayFactory, server: FakeServer, **shared: Any
) -> tuple[GatewayProcess, GatewayProcess]:
    config = openai_config(server.url, {"gpt-test": "upstream-gpt"}, master_key=MASTER_KEY, **shared)
    return start_gateway(config), start_gateway(config)


@pytest.mark.postgres
@pytest.mark.redis
def test_changes_reach_the_other_instance_through_postgres_and_redis(
    fake_openai: tuple[FakeOpenAI, FakeServer],
    start_gateway: GatewayFactory,
    postgres_database: str,
    redis_url: str,
) -> None:
    _, server = fake_openai
    # A slow timer, so what is measured is the Redis notification.
    shared = {"database_url": postgres_database, "redis_url": redis_url, "auth": {"refresh_seconds": 5}}
    writer, reader = pair(start_gateway, server, redis_prefix=f"test-{uuid.uuid4().hex}:", **shared)
    seen = observe_every_change(writer, reader, grace=2)
    print("seconds until the other instance saw it (Redis):", seen)
    for change in ("create", "block", "unblock", "rotate", "revoke"):
        assert seen[change] < 1.0, seen  # notified, not waiting for the 5 s timer


def test_changes_reach_the_other_instance_by_the_timer_without_redis(
    fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory, tmp_path: Any
) -> None:
    _, server = fake_openai
    shared = {"database_url": f"sqlite:///{tmp_path}/shared.db", "auth": {"refresh_seconds": 2}}
    writer, reader = pair(start_gateway, server, **shared)
    seen = observe_every_change(writer, reader, grace=5)
    print("seconds until the other instance saw it (timer):", seen)
    assert max(seen.values()) < BOUND + 2
