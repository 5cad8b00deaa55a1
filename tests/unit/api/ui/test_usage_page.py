"""`/ui/usage` and `/ui/usage.csv` in-process: sums per group from the daily rollup with the
keys' and teams' names, exact CSV (decimal cost, formula cells defused), filters checked
(a 400 page, never a 500), and a virtual key that sees its own usage only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest

from llm_gateway.runtime import Runtime
from llm_gateway.store.tables import usage_daily
from tests.stubs import mock_config
from tests.unit.api.asgi import running
from tests.unit.api.ui.signin_usage import MASTER, sign_in

TODAY = datetime.now(UTC).date()
INJECTED = '=HYPERLINK("http://evil","x")'
SCRIPT = "<script>alert(1)</script>"
HEADER = (
    "group,name,requests,prompt_tokens,completion_tokens,cached_tokens,reasoning_tokens,"
    "cost_usd,unpriced_requests,errors"
)


@dataclass
class Seeded:
    client: httpx.AsyncClient
    runtime: Runtime
    billing: str
    """A priced key in team `ops`."""
    injected: str
    """An unpriced key named like a spreadsheet formula; its secret is `injected_secret`."""
    injected_secret: str
    team: str


def _row(day: Any, key: str, team: str, model: str, user: str, **sums: int) -> dict[str, Any]:
    names = ("requests", "prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")
    values = {name: sums.get(name, 0) for name in names}
    values.update(
        cost_nanos=sums.get("cost_nanos", 0),
        unpriced_requests=sums.get("unpriced_requests", 0),
        errors=sums.get("errors", 0),
    )
    return {
        "day": day.isoformat(),
        "key_id": key,
        "team_id": team,
        "model": model,
        "end_user": user,
        **values,
    }


@asynccontextmanager
async def seeded() -> AsyncIterator[Seeded]:
    async with running(mock_config(master_key=MASTER)) as app:
        runtime: Runtime = app.state.runtime
        identities = runtime.identities
        assert identities is not None
        team = await identities.create_team("ops", {}, None)
        billing, _ = await identities.create_key({"name": "billing-service", "team_id": team.id})
        injected, secret = await identities.create_key({"name": INJECTED})
        scripted, _ = await identities.create_key({"name": SCRIPT})
        rows = [
            _row(
                TODAY,
                billing.id,
                team.id,
                "mock",
                "alice",
                requests=3,
                prompt_tokens=100,
                completion_tokens=50,
                cached_tokens=10,
                reasoning_tokens=5,
                cost_nanos=1_234_567_891,
                errors=1,
            ),
            _row(
                TODAY,
                injected.id,
                "",
                "@SUM(A1)",
                "-2+3",
                requests=2,
                prompt_tokens=20,
                completion_tokens=10,
                unpriced_requests=2,
            ),
            _row(
                TODAY - timedelta(days=40),
                billing.id,
                team.id,
                "mock",
                "bob",
                requests=7,
                prompt_tokens=70,
                completion_tokens=70,
                cost_nanos=5_000_000_000,
            ),
            _row(TODAY, "", "", "mock", "", requests=1, prompt_tokens=1, completion_tokens=1, cost_nanos=12),
            _row(
                TODAY,
                scripted.id,
                "",
                SCRIPT,
                "",
                requests=1,
                prompt_tokens=1,
                completion_tokens=1,
                cost_nanos=1,
            ),
        ]
        async with identities.database.engine.begin() as conn:
            await conn.execute(usage_daily.insert(), rows)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
            yield Seeded(client, runtime, billing.id, injected.id, secret, team.id)


async def test_usage_by_key_names_each_key_and_escapes_them() -> None:
    async with seeded() as seed:
        await sign_in(seed.client)
        page = await seed.client.get("/ui/usage", params={"group_by": "key"})
        assert page.status_code == 200
        html = page.text
        assert "billing-service" in html and seed.billing in html and seed.injected in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and SCRIPT not in html
        assert "$1.23" in html and "unpriced" in html
        assert 'href="/ui/usage.csv?group_by=key&amp;from=' in html
        assert html.count("<svg") == 2  # spend and tokens


async def test_usage_csv_is_exact_and_defuses_formulas() -> None:
    async with seeded() as seed:
        await sign_in(seed.client)
        start = (TODAY - timedelta(days=29)).isoformat()
        answer = await seed.client.get("/ui/usage.csv", params={"group_by": "key"})
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/csv; charset=utf-8"
        assert answer.headers["content-disposition"] == (
            f'attachment; filename="usage-by-key-{start}-to-{TODAY.isoformat()}.csv"'
        )
        scripted = answer.text.splitlines()[3].split(",")[0]
        assert answer.text == "\r\n".join(
            [
                HEADER,
                f"{seed.billing},billing-service,3,100,50,10,5,1.234567891,0,1",
                ",,1,1,1,0,0,0.000000012,0,0",
                f"{scripted},{SCRIPT},1,1,1,0,0,0.000000001,0,0",
                f'{seed.injected},"\'=HYPERLINK(""http://evil"",""x"")",2,20,10,0,0,,2,0',
                "",
            ]
        )
        users = await seed.client.get("/ui/usage.csv", params={"group_by": "user", "from": start})
        lines = users.text.splitlines()
        assert lines[1:] == [
            "alice,,3,100,50,10,5,1.234567891,0,1",
            ",,2,2,2,0,0,0.000000013,0,0",
            "'-2+3,,2,20,10,0,0,,2,0",
        ]
        models = (await seed.client.get("/ui/usage.csv", params={"group_by": "model"})).text
        assert "\r\n'@SUM(A1),,2,20,10,0,0,,2,0\r\n" in models


async def test_by_day_defaults_to_the_last_30_days_and_a_range_reaches_further() -> None:
    async with seeded() as seed:
        await sign_in(seed.client)
        default = (await seed.client.get("/ui/usage.csv")).text.splitlines()
        assert default[1:] == [f"{TODAY.isoformat()},,7,122,62,10,5,1.234567904,2,1"]
        old = (TODAY - timedelta(days=40)).isoformat()
        wide = await seed.client.get("/ui/usage.csv", params={"group_by": "day", "from": old})
        assert wide.text.splitlines()[1] == f"{old},,7,70,70,0,0,5,0,0"
        teams = await seed.client.get("/ui/usage", params={"group_by": "team"})
        assert "ops" in teams.text and seed.team in teams.text and "(none)" in teams.text
        empty = await seed.client.get("/ui/usage", params={"from": "2000-01-01", "to": "2000-01-31"})
        assert empty.status_code == 200 and "No requests in this range." in empty.text


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"group_by": "provider"}, "`group_by` must be one of"),
        ({"from": "2024-13-01"}, "`from` must be a day written YYYY-MM-DD"),
        ({"to": "yesterday"}, "`to` must be a day written YYYY-MM-DD"),
        ({"from": "0999-01-01"}, "between the years 1970 and 9999"),
        ({"from": "2024-02-02", "to": "2024-02-01"}, "`to` is before `from`"),
        ({"key_id": "no such key!"}, "`key_id` is not an id"),
    ],
)
async def test_a_bad_filter_re_renders_the_page_with_the_reason(params: dict[str, str], reason: str) -> None:
    async with seeded() as seed:
        await sign_in(seed.client)
        page = await seed.client.get("/ui/usage", params=params)
        assert page.status_code == 400 and reason in page.text and 'role="alert"' in page.text
        assert "<form" in page.text  # the filters, to correct
        csv = await seed.client.get("/ui/usage.csv", params=params)
        assert csv.status_code == 400 and reason in csv.text


async def test_a_virtual_key_sees_its_own_usage_only() -> None:
    async with seeded() as seed:
        await sign_in(seed.client, seed.injected_secret)
        for params in (
            {"group_by": "key"},
            {"group_by": "key", "key_id": seed.billing},
            {"group_by": "team"},
        ):
            page = await seed.client.get("/ui/usage", params=params)
            assert page.status_code == 200
            assert seed.billing not in page.text and "billing-service" not in page.text
            assert 'id="key_id"' not in page.text
        own = (
            await seed.client.get("/ui/usage.csv", params={"group_by": "key", "key_id": seed.billing})
        ).text
        assert own.splitlines()[1:] == [
            f'{seed.injected},"\'=HYPERLINK(""http://evil"",""x"")",2,20,10,0,0,,2,0'
        ]
        models = (await seed.client.get("/ui/usage.csv", params={"group_by": "model"})).text
        assert models.splitlines()[1:] == ["'@SUM(A1),,2,20,10,0,0,,2,0"]
        teams = (
            await seed.client.get("/ui/usage.csv", params={"group_by": "team", "team_id": seed.team})
        ).text
        assert teams.splitlines()[1:] == [",,2,20,10,0,0,,2,0"]


async def test_no_session_no_usage() -> None:
    async with seeded() as seed:
        for path in ("/ui/usage", "/ui/usage.csv"):
            answer = await seed.client.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/login")
