"""``switchboard usage``: spend and tokens from a running gateway's ``/usage`` (or ``/spend/logs``) API.

Standalone: ``python -m switchboard_facade.cli.usage ...``; as a subcommand of
the ``switchboard`` CLI, its ``main`` calls :func:`add_parser` on its subparsers.
The user's help is :data:`DESCRIPTION` and :data:`EXAMPLES`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import httpx

from switchboard_facade.cli.connection import NO_CREDENTIAL, add_connection_options

DESCRIPTION = """Spend and tokens recorded by the gateway: one total, or sums per day, model, key or
team, or the ledger's rows (--logs). A virtual key sees its own usage; the master
key or an admin key sees everything."""
EXAMPLES = """examples:
  switchboard usage --group-by day --from 2026-11-01
  switchboard usage --key key_abc --model gpt-4o-mini --format csv > usage.csv
  switchboard usage --logs --team platform --limit 50"""

COLUMNS = ["group", "requests", "successful_requests", "prompt_tokens", "completion_tokens", "cached_prompt_tokens",
           "spend", "savings", "unpriced_requests"]
LOG_COLUMNS = ["startTime", "request_id", "key_alias", "team_id", "model", "custom_llm_provider", "status",
               "prompt_tokens", "completion_tokens", "cost_micros", "latency_ms"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_options(parser)
    parser.add_argument("--key", dest="key_id", default="", metavar="KEY_ID", help="only this key id")
    parser.add_argument("--team", dest="team_id", default="", help="only this team id")
    parser.add_argument("--model", default="", help="only this public model")
    parser.add_argument("--from", dest="from_", default="", metavar="DATE",
                        help="start, ISO date or datetime (UTC), inclusive")
    parser.add_argument("--to", default="", metavar="DATE", help="end, ISO date or datetime (UTC), exclusive")
    parser.add_argument("--group-by", choices=["day", "model", "key", "team"], default=None,
                        help="sum per day, model, key or team (default: one total)")
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table",
                        help="a table (default), CSV or the API's JSON")
    parser.add_argument("--logs", action="store_true", help="list ledger rows (/spend/logs) instead of sums")
    parser.add_argument("--limit", type=int, default=100, help="rows with --logs (1-1000)")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Registers ``usage`` on a parent CLI's subparsers; the parsed namespace's ``func`` runs it."""
    parser: argparse.ArgumentParser = subparsers.add_parser("usage", help="spend and token usage",
                                                            description=DESCRIPTION, epilog=EXAMPLES,
                                                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def _params(args: argparse.Namespace) -> dict[str, str]:
    params = {"key_id": args.key_id, "team_id": args.team_id, "model": args.model, "from": args.from_, "to": args.to}
    if args.logs:
        params["limit"] = str(args.limit)
    elif args.group_by:
        params["group_by"] = args.group_by
    if args.format == "csv":
        params["format"] = "csv"
    return {k: v for k, v in params.items() if v}


def _table(rows: list[dict[str, Any]], columns: list[str], out: TextIO) -> None:
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if not args.api_key:
        sys.stderr.write(f"switchboard usage: {NO_CREDENTIAL}\n")
        return 2
    path = "/spend/logs" if args.logs else "/usage"
    try:
        response = httpx.get(args.url.rstrip("/") + path, params=_params(args),
                             headers={"Authorization": f"Bearer {args.api_key}"}, timeout=60)
    except httpx.HTTPError as exc:
        sys.stderr.write(f"switchboard usage: cannot reach {args.url}: {exc}\n")
        return 1
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text
        sys.stderr.write(f"switchboard usage: {response.status_code}: {message}\n")
        return 1
    if args.format in ("csv", "json"):
        out.write(response.text if response.text.endswith("\n") else response.text + "\n")
        return 0
    body = response.json()
    if args.logs:
        _table(body, LOG_COLUMNS, out)
    else:
        _table([*body["data"], {**body["total"], "group": "TOTAL"}] if args.group_by else [body["total"]],
               COLUMNS if args.group_by else COLUMNS[1:], out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="switchboard usage", description=DESCRIPTION, epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
