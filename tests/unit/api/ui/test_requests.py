"""`/ui/requests` and `/ui/requests/{id}` in-process: filters, cursor pages, a key's viewer held
to its own requests (another key's request a 404), user strings escaped, a bad filter an
error page (never a 500), no session a redirect to sign-in."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx2 as httpx
import pytest

from llm_gateway.api.ui.requests import timeline
from llm_gateway.runtime import Runtime
from llm_gateway.store.spend import AttemptRecord, SpendRow
from llm_gateway.store.spend_db import DatabaseSink
from tests.unit.api.asgi import CHAT
from tests.unit.api.ui.signing import MASTER, new_key, sign_in, ui_gateway

NOW = datetime.now(UTC).replace(microsecond=0)


def row(n: int, **changes: object) -> SpendRow:
    base = SpendRow(
        at=NOW - timedelta(minutes=n),
        request_id=f"row-{n}",
        key_id="k-seeded",
        team_id=None,
        end_user=None,
        model="seeded",
        deployment="seeded/0:mock/up",
        provider="mock",
        prompt_tokens=3,
        completion_tokens=4,
        cached_tokens=0,
        reasoning_tokens=0,
        cost_usd=Decimal("0.000011"),
        estimated=False,
        latency_s=0.5,
        ttft_s=None,
        status=200,
        error=None,
        attempts=1,
        fallback=None,
        attempt_log=(AttemptRecord("seeded/0:mock/up", "mock", "answered", 0.4),),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


async def seed(runtime: Runtime, rows: list[SpendRow]) -> None:
    assert runtime.identities is not None
    await DatabaseSink(runtime.identities.database).write(rows)


async def chat(client: httpx.AsyncClient, key: dict[str, object], rid: str, **body: object) -> None:
    answer = await client.post(
        "/v1/chat/completions",
        json={**CHAT, **body},
        headers={"authorization": f"Bearer {key['key']}", "x-request-id": rid},
    )
    assert answer.status_code == 200, answer.text


async def flush(runtime: Runtime) -> None:
    assert runtime.governance is not None and runtime.governance.spend is not None
    assert await runtime.governance.spend.flush()


def ids(html: str) -> list[str]:
    """The request ids a log page lists, in order."""
    return re.findall(r'<a href="/ui/requests/[^"]*">([^<]+)</a>', html)


async def test_the_log_lists_requests_newest_first_and_filters_them() -> None:
    async with ui_gateway() as (client, runtime):
        alpha, beta = await new_key(client, "alpha"), await new_key(client, "beta")
        for n in range(3):
            await chat(client, alpha, f"alpha-{n}", user="alice")
        await chat(client, beta, "beta-0")
        await flush(runtime)
        await seed(runtime, [row(1, status=502, error="UpstreamServerError", cost_usd=None, team_id="t-1")])
        await sign_in(client, MASTER)
        page = await client.get("/ui/requests")
        assert page.status_code == 200
        assert ids(page.text) == ["beta-0", "alpha-2", "alpha-1", "alpha-0", "row-1"]
        assert "unpriced" in page.text and 'class="badge bad">502<' in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        cases = {
            "key_id": (alpha["id"], ["alpha-2", "alpha-1", "alpha-0"]),
            "team_id": ("t-1", ["row-1"]),
            "model": ("seeded", ["row-1"]),
            "status": ("502", ["row-1"]),
        }
        for field, (value, expected) in cases.items():
            filtered = await client.get("/ui/requests", params={field: value})
            assert filtered.status_code == 200 and ids(filtered.text) == expected, field
        later = (NOW + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        assert ids((await client.get("/ui/requests", params={"from": later})).text) == []
        earlier = (NOW - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%S")
        recent = await client.get("/ui/requests", params={"from": earlier, "model": "mock", "key_id": ""})
        assert ids(recent.text) == ["beta-0", "alpha-2", "alpha-1", "alpha-0"]
        assert ids((await client.get("/ui/requests", params={"to": earlier})).text) == ["row-1"]
        assert "No requests match" in (await client.get("/ui/requests", params={"status": 404})).text


async def test_pages_follow_the_cursor_and_keep_the_filters() -> None:
    async with ui_gateway() as (client, runtime):
        await seed(runtime, [row(n) for n in range(120)] + [row(200, model="other", request_id="other")])
        await sign_in(client, MASTER)
        seen: list[str] = []
        target: str | None = "/ui/requests?model=seeded"
        pages = 0
        while target is not None:
            page = await client.get(target)
            assert page.status_code == 200
            seen += ids(page.text)
            pages += 1
            found = re.search(r'<a href="([^"]+)" rel="next">', page.text)
            target = found.group(1).replace("&amp;", "&") if found else None
            if target is not None:
                assert "model=seeded" in target and "cursor=" in target
        assert pages == 3 and seen == [f"row-{n}" for n in range(120)]
        assert "First page" in page.text


async def test_a_key_sees_only_its_own_requests() -> None:
    async with ui_gateway() as (client, runtime):
        mine, theirs = await new_key(client, "mine"), await new_key(client, "theirs")
        await chat(client, mine, "mine-0")
        await chat(client, theirs, "theirs-0")
        await flush(runtime)
        await sign_in(client, str(mine["key"]))
        page = await client.get("/ui/requests")
        assert page.status_code == 200 and ids(page.text) == ["mine-0"]
        assert 'name="key_id"' not in page.text  # no key filter to try
        asked = await client.get("/ui/requests", params={"key_id": theirs["id"]})
        assert ids(asked.text) == ["mine-0"]
        assert (await client.get("/ui/requests/mine-0")).status_code == 200
        other = await client.get("/ui/requests/theirs-0")
        missing = await client.get("/ui/requests/nobody")
        assert other.status_code == missing.status_code == 404
        assert other.text.replace("theirs-0", "") == missing.text.replace("nobody", "")
        assert "theirs-0" not in other.text
        await sign_in(client, MASTER)
        assert (await client.get("/ui/requests/theirs-0")).status_code == 200


async def test_one_request_shows_its_facts_timeline_and_bodies() -> None:
    async with ui_gateway() as (client, runtime):
        loud = await new_key(client, "loud", metadata={"log_bodies": True})
        await chat(client, loud, "loud-0", user="<b>bob</b>")
        await flush(runtime)
        attempts = (
            AttemptRecord("seeded/0:mock/a", "mock", "failed", 0.25, error="UpstreamServerError", status=502),
            AttemptRecord("seeded/1:mock/b", "mock", "answered", 0.5, ttft_s=0.1),
        )
        await seed(
            runtime, [row(1, request_id="two", attempt_log=attempts, attempts=2, latency_s=0.8, ttft_s=0.3)]
        )
        await sign_in(client, MASTER)
        page = await client.get("/ui/requests/loud-0")
        assert page.status_code == 200, page.text
        text = page.text
        assert "&lt;b&gt;bob&lt;/b&gt;" in text and "<b>bob</b>" not in text
        assert '<pre data-test="request-body">' in text and "hello there" in text and "choices" in text
        assert '<svg class="timeline"' in text and "gateway overhead" in text
        two = (await client.get("/ui/requests/two")).text
        # the attempts one after the other, then the overhead: the rest of the 800 ms
        assert "attempt 1: seeded/0:mock/a: 0.0 ms + 250.0 ms (failed)" in two
        assert "attempt 2: seeded/1:mock/b: 250.0 ms + 500.0 ms (answered)" in two
        assert "time to first token: 0.0 ms + 300.0 ms (ttft)" in two
        assert "gateway overhead: 750.0 ms + 50.0 ms (overhead)" in two
        assert "750 ms upstream, 50.0 ms gateway overhead" in two
        assert "UpstreamServerError" in two and "Not captured" in two
        missing = await client.get("/ui/requests/" + "x" * 300)
        assert missing.status_code == 404 and "no request with that id" in missing.text


async def test_user_strings_are_escaped() -> None:
    script = "<script>alert(1)</script>"
    async with ui_gateway() as (client, runtime):
        await seed(
            runtime, [row(1, model=script, end_user=script, request_id="x<script>", deployment=script)]
        )
        await sign_in(client, MASTER)
        for path in ("/ui/requests", "/ui/requests/x%3Cscript%3E", f"/ui/requests?model={script}"):
            page = await client.get(path)
            assert page.status_code in (200, 400), path
            assert (
                "<script>alert" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
            ), path
        assert ids((await client.get("/ui/requests", params={"model": script})).text) == ["x&lt;script&gt;"]


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"status": "ok"}, "Status"),
        ({"status": "99"}, "Status"),
        ({"from": "yesterday"}, "From"),
        ({"from": "2025-02-01T00:00", "to": "2025-01-01T00:00"}, "To: is before From"),
        ({"model": "a\x00"}, "Model"),
        ({"key_id": "' OR 1=1 --"}, "Key"),
        ({"team_id": "x" * 500}, "Team"),
        ({"cursor": "garbage"}, "Page"),
        ({"cursor": "\x00"}, "Page"),
        ({"from": "0001-01-01T00:00:00+14:00"}, "From"),
    ],
)
async def test_a_bad_filter_is_an_error_on_the_page(params: dict[str, str], said: str) -> None:
    async with ui_gateway() as (client, _):
        await sign_in(client, MASTER)
        page = await client.get("/ui/requests", params=params)
        assert page.status_code == 400, page.text
        assert page.headers["content-type"].startswith("text/html")
        error = re.search(r'<p class="error" role="alert" data-test="filter-error">([^<]*)</p>', page.text)
        assert error is not None and error.group(1).startswith(said), page.text
        assert '<form class="filters card"' in page.text  # the form is there to fix it


async def test_no_session_is_sent_to_sign_in() -> None:
    async with ui_gateway() as (client, runtime):
        await seed(runtime, [row(1)])
        for path in ("/ui/requests", "/ui/requests/row-1", "/ui/requests?model=seeded"):
            answer = await client.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/ui/login?next=/ui/requests")
            assert "row-1" not in answer.text
        client.cookies.set("gw_session", "forged.cookie", path="/ui")
        answer = await client.get("/ui/requests")
        assert answer.status_code == 303 and "reason=" in answer.headers["location"]


def test_the_timeline_lays_attempts_in_turn_and_hedges_from_the_start() -> None:
    attempt = {"ttft_s": None, "error": None, "status": None, "group": None, "hedge": False}
    item = {
        "latency_s": 1.0,
        "ttft_s": None,
        "attempt_log": [
            {**attempt, "deployment": "a", "provider": "p", "outcome": "failed", "latency_s": 0.2},
            {**attempt, "deployment": "b", "provider": "p", "outcome": "abandoned", "latency_s": 0.5},
            {
                **attempt,
                "deployment": "c",
                "provider": "p",
                "outcome": "answered",
                "latency_s": 0.6,
                "hedge": True,
            },
        ],
    }
    drawn = timeline(item)
    assert drawn.segments[:3] == [
        ("attempt 1: a", 0.0, 0.2, "failed"),
        ("attempt 2: b", 0.2, 0.5, "abandoned"),
        ("hedge 3: c", 0.0, 0.6, "answered"),
    ]
    assert drawn.upstream_s == pytest.approx(0.7) and drawn.overhead_s == pytest.approx(0.3)
    assert drawn.segments[-2][0] == "gateway overhead" and drawn.segments[-1] == ("total", 0.0, 1.0, "total")
    slow = timeline({**item, "latency_s": 0.5})  # the upstream times overrun the total (clocks)
    assert slow.overhead_s == 0.0 and slow.segments[-2][1] == 0.5


async def test_without_a_master_key_the_loopback_viewer_reads_every_request() -> None:
    async with ui_gateway(master_key=None) as (client, runtime):
        await seed(runtime, [row(1), row(2, key_id="k-other", request_id="other")])
        page = await client.get("/ui/requests")
        assert page.status_code == 200 and ids(page.text) == ["row-1", "other"]
        assert "read-only" in page.text and 'name="key_id"' in page.text
        assert (await client.get("/ui/requests/other")).status_code == 200
