"""``switchboard keys|teams|usage|doctor|import-litellm ...``: manage virtual keys and teams through the gateway's
admin API (``usage``: spend and tokens, :mod:`switchboard_facade.cli.usage`; ``doctor``: what to fix,
:mod:`switchboard_facade.cli.doctor`; ``import-litellm``: a LiteLLM config as the model catalog,
:mod:`switchboard_facade.cli.import_litellm`).

Talks HTTP to a running gateway with the master key or an admin key (see
:mod:`switchboard_facade.cli.connection` for where the URL and the key come from;
beside ``make run`` nothing needs exporting). Prints a table or detail view, or
the API's JSON with ``--json``. Exit status: 0 on success, 1 when the gateway
refused the request (its message is printed), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import httpx

from switchboard_facade.cli.connection import NO_CREDENTIAL, add_connection_options
from switchboard_facade.cli.output import KEY_COLUMNS, TEAM_COLUMNS, as_json, detail, table

#: option dest → admin API field, for options that set a field of a key or a team.
LIMIT_OPTIONS = {"rpm": "rpm_limit", "tpm": "tpm_limit", "max_parallel": "max_parallel_requests",
                 "max_budget": "max_budget", "budget_duration": "budget_duration",
                 "max_daily_spend": "max_daily_spend"}
KEY_OPTIONS = {"alias": "key_alias", "models": "models", "team": "team_id", "duration": "duration",
               "expires": "expires", "privacy_tier": "privacy_tier", "pii_policy": "pii_policy",
               "metadata": "metadata", "admin": "is_admin", "jurisdictions": "jurisdictions", **LIMIT_OPTIONS}
TEAM_OPTIONS = {"team_id": "team_id", "alias": "team_alias", "models": "models", "privacy_tier": "privacy_tier",
                "metadata": "metadata", "blocked": "blocked", "jurisdictions": "jurisdictions", **LIMIT_OPTIONS}


class CliError(Exception):
    """The gateway refused the request, or could not be reached."""


def _metadata(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"--metadata takes key=value, got {pair!r}")
        out[name] = value
    return out


def _add_limit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rpm", type=int, help="requests per minute")
    parser.add_argument("--tpm", type=int, help="tokens per minute")
    parser.add_argument("--max-parallel", type=int, help="requests in flight at once")
    parser.add_argument("--max-budget", help="budget in USD per budget window (e.g. 25 or 12.50)")
    parser.add_argument("--budget-duration", help="budget window: 1d, 7d, 30d, 1mo, ...")
    parser.add_argument("--max-daily-spend", help="spend cap per UTC day, USD")
    parser.add_argument("--models", type=lambda s: [m.strip() for m in s.split(",") if m.strip()],
                        help="comma-separated models, wildcards (anthropic/*) or access groups")
    parser.add_argument("--privacy-tier", help="privacy tier pinned to the key (or the team's default)")
    parser.add_argument("--jurisdictions", type=lambda s: [j.strip() for j in s.split(",") if j.strip()],
                        help="comma-separated jurisdictions requests may be served in (ca,eu; '*': any)")
    parser.add_argument("--metadata", action="append", default=None, metavar="KEY=VALUE", help="repeatable")


def _add_key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--alias", help="human name of the key")
    parser.add_argument("--team", help="team id the key belongs to")
    parser.add_argument("--duration", help="lifetime from now: 30s, 12h, 30d, 1mo, 1y")
    parser.add_argument("--expires", help="absolute expiry, ISO 8601 (e.g. 2027-01-31T00:00:00Z)")
    parser.add_argument("--pii-policy", choices=["off", "substitute", "mask", "block"])
    parser.add_argument("--admin", action="store_true", default=None, help="the key may manage keys and teams")
    _add_limit_options(parser)


def _add_team_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--alias", help="human name of the team")
    parser.add_argument("--blocked", type=lambda s: s.lower() in ("1", "true", "yes"), metavar="true|false")
    _add_limit_options(parser)


def _add_clear(parser: argparse.ArgumentParser, fields: dict[str, str]) -> None:
    parser.add_argument("--clear", action="append", default=[], choices=sorted(set(fields.values())),
                        metavar="FIELD", help="set a field back to none (no limit); repeatable")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchboard", description="Manage a Switchboard gateway: virtual keys, teams and usage.",
        epilog="Examples:\n  switchboard keys create --alias laptop --models demo --max-budget 5\n"
               "  switchboard teams create --id platform --rpm 600\n  switchboard usage --group-by day\n"
               "  switchboard doctor\n  switchboard import-litellm litellm-config.yaml -o config/switchboard.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_connection_options(parser)
    parser.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    groups = parser.add_subparsers(dest="group", required=True)

    keys = groups.add_parser("keys", help="virtual keys").add_subparsers(dest="command", required=True)
    _add_key_options(keys.add_parser("create", help="create a key (the key is printed once)"))
    keys.add_parser("list", help="list keys").add_argument("--team", help="only this team's keys")
    keys.add_parser("info", help="show a key").add_argument("key", nargs="?", default="",
                                                            help="key_id or sk-...; omitted: the caller's own key")
    update = keys.add_parser("update", help="change fields of a key")
    update.add_argument("key", help="key_id or sk-...")
    _add_key_options(update)
    _add_clear(update, KEY_OPTIONS)
    keys.add_parser("revoke", help="revoke keys for good").add_argument("keys", nargs="+", help="key_ids or sk-...")
    keys.add_parser("regenerate", help="new secret, same key").add_argument("key", help="key_id or sk-...")
    keys.add_parser("block", help="refuse a key until unblocked").add_argument("key", help="key_id or sk-...")
    keys.add_parser("unblock", help="accept a blocked key again").add_argument("key", help="key_id or sk-...")

    teams = groups.add_parser("teams", help="teams").add_subparsers(dest="command", required=True)
    create = teams.add_parser("create", help="create a team")
    create.add_argument("--id", dest="team_id", help="team id (generated when omitted)")
    _add_team_options(create)
    teams.add_parser("list", help="list teams")
    teams.add_parser("info", help="show a team and its keys").add_argument("team_id")
    tupdate = teams.add_parser("update", help="change fields of a team")
    tupdate.add_argument("team_id")
    _add_team_options(tupdate)
    _add_clear(tupdate, TEAM_OPTIONS)
    teams.add_parser("delete", help="delete teams that have no keys").add_argument("team_ids", nargs="+")
    from switchboard_facade.cli import audit, doctor, import_litellm, usage

    usage.add_parser(groups)
    audit.add_parser(groups)
    doctor.add_parser(groups)
    import_litellm.add_parser(groups)
    return parser


def _body(args: argparse.Namespace, fields: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for dest, field in fields.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        body[field] = _metadata(value) if dest == "metadata" else value
    for field in getattr(args, "clear", []):
        body[field] = [] if field == "models" else {} if field == "metadata" else None
    return body


class Client:
    def __init__(self, url: str, api_key: str) -> None:
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=30,
                                 headers={"Authorization": f"Bearer {api_key}"} if api_key else {})

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             params: dict[str, str] | None = None) -> Any:
        try:
            response = self.http.request(method, path, json=body, params=params)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach the gateway at {self.http.base_url}: {exc}") from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400:
            error = data.get("error", {}) if isinstance(data, dict) else {}
            message = error.get("message") or response.text
            raise CliError(f"{response.status_code}: {message}")
        return data


def run(args: argparse.Namespace, client: Client, out: TextIO, err: TextIO) -> None:
    command = (args.group, args.command)
    if command == ("keys", "create"):
        created = client.call("POST", "/key/generate", _body(args, KEY_OPTIONS))
        if args.json:
            as_json(created, out)
        else:
            out.write(created["key"] + "\n")
            err.write(f"Created {created['key_id']} ({created['key_name']}). Copy the key now: it is not shown "
                      "again.\n")
    elif command == ("keys", "list"):
        listed = client.call("GET", "/key/list", params={"team_id": args.team} if args.team else None)
        as_json(listed, out) if args.json else table(listed["keys"], KEY_COLUMNS, out)
    elif command == ("keys", "info"):
        info = client.call("GET", "/key/info", params={"key": args.key} if args.key else None)
        as_json(info, out) if args.json else detail(info["info"], out)
    elif command == ("keys", "update"):
        updated = client.call("POST", "/key/update", {"key": args.key, **_body(args, KEY_OPTIONS)})
        as_json(updated, out) if args.json else detail(updated, out)
    elif command == ("keys", "revoke"):
        deleted = client.call("POST", "/key/delete", {"keys": args.keys})
        as_json(deleted, out) if args.json else out.write("".join(f"revoked {k}\n" for k in deleted["deleted_keys"]))
    elif command == ("keys", "regenerate"):
        created = client.call("POST", "/key/regenerate", {"key": args.key})
        if args.json:
            as_json(created, out)
        else:
            out.write(created["key"] + "\n")
            err.write(f"New secret for {created['key_id']}; the old one no longer works. Copy it now.\n")
    elif command in (("keys", "block"), ("keys", "unblock")):
        info = client.call("POST", f"/key/{args.command}", {"key": args.key})
        as_json(info, out) if args.json else out.write(f"{info['key_id']} is {info['status']}\n")
    elif command == ("teams", "create"):
        team = client.call("POST", "/team/new", _body(args, TEAM_OPTIONS))
        as_json(team, out) if args.json else detail(team, out)
    elif command == ("teams", "list"):
        teams = client.call("GET", "/team/list")
        as_json(teams, out) if args.json else table(teams, TEAM_COLUMNS, out)
    elif command == ("teams", "info"):
        info = client.call("GET", "/team/info", params={"team_id": args.team_id})
        if args.json:
            as_json(info, out)
        else:
            detail(info["team_info"], out)
            out.write("\n")
            table(info["keys"], KEY_COLUMNS, out)
    elif command == ("teams", "update"):
        team = client.call("POST", "/team/update", {"team_id": args.team_id, **_body(args, TEAM_OPTIONS)})
        as_json(team, out) if args.json else detail(team.get("data") or team, out)  # LiteLLM's {"team_id", "data"}
    elif command == ("teams", "delete"):
        deleted = client.call("POST", "/team/delete", {"team_ids": args.team_ids})
        as_json(deleted, out) if args.json else out.write("".join(f"deleted {t}\n" for t in deleted["deleted_teams"]))


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.group in ("usage", "doctor"):
        return int(args.func(args, out))
    if args.group in ("import-litellm", "audit"):
        return int(args.func(args, out, err))
    if not args.api_key:
        err.write(f"error: {NO_CREDENTIAL}\n")
        return 2
    client = Client(args.url, args.api_key)
    try:
        run(args, client, out, err)
    except (CliError, argparse.ArgumentTypeError) as exc:
        err.write(f"error: {exc}\n")
        return 1
    finally:
        client.http.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
