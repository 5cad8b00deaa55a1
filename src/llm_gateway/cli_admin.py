"""`llm-gateway keys|teams|db`: the admin commands.

`keys` and `teams` talk to a running gateway's admin API (`--url`, default
`$LLM_GATEWAY_URL` or http://127.0.0.1:8000; the master key from `--master-key` or
`$LLM_GATEWAY_MASTER_KEY`), print readable tables, or the API's JSON with `--json`.
`db upgrade` migrates the configured database directly, without a gateway running.
Exit status: 0 done, 1 the gateway refused or could not be reached, 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000"
KEY_COLUMNS = (
    "id",
    "name",
    "team_id",
    "key_hint",
    "models",
    "rpm",
    "tpm",
    "max_parallel",
    "budget",
    "status",
)
TEAM_COLUMNS = ("id", "name", "models", "rpm", "tpm", "max_parallel", "budget", "end_user_budget")


class AdminClient:
    def __init__(self, url: str, master_key: str | None) -> None:
        self.url = url.rstrip("/")
        self.master_key = master_key

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        request.add_header("content-type", "application/json")
        if self.master_key:
            request.add_header("authorization", f"Bearer {self.master_key}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise SystemExit(f"error: {error.code} {_message(error.read())}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise SystemExit(f"error: cannot reach the gateway at {self.url}: {reason}") from None


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace")[:500]


def _grants(args: argparse.Namespace) -> dict[str, Any]:
    """The grant fields given on the command line (left out: not sent)."""
    values: dict[str, Any] = {}
    if args.models:
        values["models"] = [m.strip() for value in args.models for m in value.split(",") if m.strip()]
    for name in ("rpm", "tpm", "max_parallel", "budget_period"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    if args.budget is not None:
        values["budget_usd"] = args.budget
    if args.max_hold is not None:
        values["max_hold_usd"] = args.max_hold
    if args.metadata is not None:
        values["metadata"] = json.loads(args.metadata)
    return values


def _cell(row: dict[str, Any], column: str) -> str:
    if column == "budget":
        budget = row.get("budget_usd")
        return "-" if budget is None else f"{budget:g}/{row.get('budget_period')}"
    if column == "end_user_budget":
        budget = row.get("end_user_budget_usd")
        return "-" if budget is None else f"{budget:g}/{row.get('budget_period')}"
    if column == "status":
        return "revoked" if row.get("revoked_at") else "blocked" if row.get("blocked") else "active"
    value = row.get(column)
    if isinstance(value, list):
        return ",".join(map(str, value))
    return "-" if value is None else str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[_cell(row, column) for column in columns] for row in rows]
    widths = [max([len(column), *(len(line[i]) for line in cells)]) for i, column in enumerate(columns)]
    lines = [[column.upper() for column in columns], *cells]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def _show(args: argparse.Namespace, value: Any, columns: Sequence[str]) -> None:
    if args.json:
        print(json.dumps(value, indent=2))
        return
    rows = value["data"] if isinstance(value, dict) and value.get("object") == "list" else [value]
    print(table(rows, columns))
    if isinstance(value, dict) and value.get("key"):
        print(f"\nkey (shown once, store it now): {value['key']}")
    if isinstance(value, dict) and value.get("next_cursor"):
        print(f"\nmore: --cursor {value['next_cursor']}")


def _query(**params: Any) -> str:
    given = {name: value for name, value in params.items() if value is not None}
    return f"?{urllib.parse.urlencode(given)}" if given else ""


def _path_id(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def keys_command(args: argparse.Namespace, client: AdminClient) -> None:
    action = args.action
    if action == "create":
        body = {"name": args.name, **_grants(args)}
        if args.team:
            body["team_id"] = args.team
        if args.expires_at:
            body["expires_at"] = args.expires_at
        _show(args, client.call("POST", "/admin/keys", body), KEY_COLUMNS)
    elif action == "list":
        query = _query(name=args.name, team_id=args.team, limit=args.limit, cursor=args.cursor)
        _show(args, client.call("GET", f"/admin/keys{query}"), KEY_COLUMNS)
    elif action == "show":
        _show(args, client.call("GET", f"/admin/keys/{_path_id(args.id)}"), KEY_COLUMNS)
    elif action == "revoke":
        _show(args, client.call("DELETE", f"/admin/keys/{_path_id(args.id)}"), KEY_COLUMNS)
    elif action in ("block", "unblock"):
        body = {"blocked": action == "block"}
        _show(args, client.call("PATCH", f"/admin/keys/{_path_id(args.id)}", body), KEY_COLUMNS)
    elif action == "rotate":
        body = {"grace_seconds": args.grace}
        _show(args, client.call("POST", f"/admin/keys/{_path_id(args.id)}/rotate", body), KEY_COLUMNS)


def teams_command(args: argparse.Namespace, client: AdminClient) -> None:
    action = args.action
    if action == "create":
        body = {"name": args.name, **_grants(args)}
        if args.id:
            body["id"] = args.id
        if args.end_user_budget is not None:
            body["end_user_budget_usd"] = args.end_user_budget
        _show(args, client.call("POST", "/admin/teams", body), TEAM_COLUMNS)
    elif action == "list":
        query = _query(name=args.name, limit=args.limit, cursor=args.cursor)
        _show(args, client.call("GET", f"/admin/teams{query}"), TEAM_COLUMNS)
    elif action == "show":
        _show(args, client.call("GET", f"/admin/teams/{_path_id(args.id)}"), TEAM_COLUMNS)
    elif action == "delete":
        result = client.call("DELETE", f"/admin/teams/{_path_id(args.id)}")
        print(json.dumps(result) if args.json else f"team {args.id} deleted")


def _grant_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", action="append", help="allowed models or globs, comma-separated")
    parser.add_argument("--rpm", type=int, help="requests per minute")
    parser.add_argument("--tpm", type=int, help="tokens per minute")
    parser.add_argument("--max-parallel", type=int, help="requests in flight at once")
    parser.add_argument("--budget", type=float, help="budget in USD per --budget-period")
    parser.add_argument("--budget-period", choices=("none", "daily", "weekly", "monthly"))
    parser.add_argument("--max-hold", type=float, help="largest hold in USD one request may take")
    parser.add_argument("--metadata", help="a JSON object")


def _client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get("LLM_GATEWAY_URL", DEFAULT_URL), help="gateway URL")
    parser.add_argument("--master-key", default=os.environ.get("LLM_GATEWAY_MASTER_KEY"), help="master key")
    parser.add_argument("--json", action="store_true", help="print the API's JSON")


def _listing(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", help="part of the name")
    parser.add_argument("--limit", type=int, default=50, help="page size (at most 200)")
    parser.add_argument("--cursor", help="the next page (printed under a full page)")


def add_commands(commands: Any, config_help: str) -> None:
    """Register `keys`, `teams` and `db` on the top-level subparsers."""
    keys = commands.add_parser("keys", help="manage virtual keys on a running gateway").add_subparsers(
        dest="action", required=True
    )
    create = keys.add_parser("create", help="create a key (its secret is printed once)")
    create.add_argument("--name", required=True)
    create.add_argument("--team", help="team id")
    create.add_argument("--expires-at", help="ISO 8601 time (UTC unless it names a zone)")
    _grant_options(create)
    listing = keys.add_parser("list", help="list keys")
    _listing(listing)
    listing.add_argument("--team", help="team id")
    rotate = keys.add_parser("rotate", help="issue a new secret for a key")
    rotate.add_argument("id")
    rotate.add_argument("--grace", type=int, default=0, help="seconds the old secret keeps working")
    for name, text in (("show", "show a key"), ("revoke", "revoke a key"), ("block", ""), ("unblock", "")):
        keys.add_parser(name, help=text or f"{name} a key").add_argument("id")
    teams = commands.add_parser("teams", help="manage teams on a running gateway").add_subparsers(
        dest="action", required=True
    )
    team_create = teams.add_parser("create", help="create a team")
    team_create.add_argument("--name", required=True)
    team_create.add_argument("--id", help="team id (default: made up)")
    team_create.add_argument(
        "--end-user-budget", type=float, help="budget in USD each end user gets, per --budget-period"
    )
    _grant_options(team_create)
    _listing(teams.add_parser("list", help="list teams"))
    for name in ("show", "delete"):
        teams.add_parser(name, help=f"{name} a team").add_argument("id")
    for group, run in ((keys, keys_command), (teams, teams_command)):
        for sub in group.choices.values():
            _client_options(sub)
            sub.set_defaults(run=_with_client(run))
    db = commands.add_parser("db", help="the database").add_subparsers(dest="action", required=True)
    upgrade = db.add_parser("upgrade", help="apply the database migrations and exit")
    upgrade.add_argument("--config", default=os.environ.get("LLM_GATEWAY_CONFIG"), help=config_help)
    upgrade.set_defaults(run=db_upgrade)


def _with_client(
    run: Callable[[argparse.Namespace, AdminClient], None],
) -> Callable[[argparse.Namespace], None]:
    def command(args: argparse.Namespace) -> None:
        try:
            run(args, AdminClient(args.url, args.master_key))
        except json.JSONDecodeError as error:
            raise SystemExit(f"error: --metadata is not JSON ({error})") from None

    return command


def db_upgrade(args: argparse.Namespace) -> None:
    from llm_gateway.cli import load_or_exit
    from llm_gateway.core.secrets import mask_url
    from llm_gateway.store.db import Database

    config, _ = load_or_exit(args.config)
    url = config.database_url.get_secret_value()

    async def upgrade() -> None:
        database = Database(url)
        try:
            await database.migrate()
        finally:
            await database.aclose()

    asyncio.run(upgrade())
    print(f"database at {mask_url(url)} is up to date", file=sys.stdout)
