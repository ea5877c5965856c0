"""``switchboard audit verify|list``: check the audit trail's hash chains, or list its rows.

It talks to the gateway like every other command (``GET /audit/verify``, ``GET /audit``), not to the databases:
each chain is checked by the service that keeps it (auth, billing), which alone reads its own tables, so the
command needs no database credentials and works the same on SQLite and PostgreSQL, on one replica or many. The
check recomputes every row's hash; a rewrite of the whole log by someone holding the database is caught by
comparing the head it prints (``head_seq``/``head_hash``) with one recorded earlier: ``--expect-head
auth:SEQ:HASH`` checks that the row ``SEQ`` still has that hash (docs/audit.md).

Exit status: 0 when every chain is intact, 1 when one is broken (the first broken row is named) or the gateway
refused, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

import httpx

from switchboard_facade.cli.connection import NO_CREDENTIAL, add_connection_options

EXAMPLES = """examples:
  switchboard audit verify
  switchboard audit verify --expect-head auth:1042:<the 64-hex-digit head hash printed earlier>
  switchboard audit list --actor key_abc --action key. --since 2026-11-01
  switchboard audit list --format csv > audit.csv"""

LIST_COLUMNS = ["time", "log", "seq", "actor", "action", "target_type", "target_id", "client_ip", "request_id"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "audit", help="the audit trail: verify its hash chains, list its rows", description=__doc__,
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="check the hash chains; name the first broken row")
    add_connection_options(verify)
    verify.add_argument("--expect-head", action="append", default=[], metavar="LOG:SEQ:HASH",
                        help="also check that row SEQ of LOG (auth or billing) has HASH (a head recorded earlier)")
    listing = commands.add_parser("list", help="rows, newest first")
    add_connection_options(listing)
    for name in ("actor", "action", "target_type", "target_id", "since", "until", "log"):
        listing.add_argument("--" + name.replace("_", "-"), dest=name, default="")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--format", choices=["table", "csv", "json"], default="table")
    parser.set_defaults(func=run)
    return parser


def _get(args: argparse.Namespace, path: str, params: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(args.url.rstrip("/") + path, params=params, timeout=300,
                     headers={"Authorization": f"Bearer {args.api_key}"})


def _refused(response: httpx.Response, err: TextIO) -> int:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text
    err.write(f"switchboard audit: {response.status_code}: {message}\n")
    return 1


def _expected(texts: list[str]) -> list[tuple[str, int, str]]:
    out = []
    for text in texts:
        parts = text.split(":")
        if len(parts) != 3 or parts[0] not in ("auth", "billing") or not parts[1].isdigit() or not parts[2]:
            raise ValueError(f"--expect-head takes LOG:SEQ:HASH (LOG auth or billing), got {text!r}")
        if len(parts[2]) != 64 or any(c not in "0123456789abcdef" for c in parts[2]):
            raise ValueError(f"--expect-head wants the whole head hash (64 hex digits, as `switchboard audit verify` "
                             f"prints it), got {parts[2]!r}")
        out.append((parts[0], int(parts[1]), parts[2]))
    return out


def verify(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        expected = _expected(args.expect_head)
    except ValueError as exc:
        err.write(f"switchboard audit: {exc}\n")
        return 2
    response = _get(args, "/audit/verify")
    if response.status_code != 200:
        return _refused(response, err)
    broken = False
    for check in response.json()["logs"]:
        if check["ok"]:
            out.write(f"{check['log']}: ok, {check['rows_checked']} rows, head {check['head_seq']} "
                      f"{check['head_hash']}\n")
        else:
            broken = True
            row = f"row {check['first_broken_seq']}" if check["first_broken_seq"] else "the chain"
            out.write(f"{check['log']}: BROKEN at {row}: {check['reason']} ({check['rows_checked']} rows "
                      "checked before it)\n")
    for log, seq, digest in expected:
        rows = _get(args, "/audit", {"log": log, "limit": "1", "before_seq": str(seq + 1)})
        if rows.status_code != 200:
            return _refused(rows, err)
        found = [r for r in rows.json()["data"] if r["seq"] == seq]
        if not found or found[0]["hash"] != digest:
            broken = True
            out.write(f"{log}: BROKEN at row {seq}: " + ("its hash is not the one recorded (the log was "
                                                        "rewritten)\n" if found else "the row is gone\n"))
    return 1 if broken else 0


def listing(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    params = {k: getattr(args, k) for k in ("actor", "action", "target_type", "target_id", "since", "until", "log")}
    params = {k: v for k, v in params.items() if v}
    params["limit"] = str(args.limit)
    if args.format == "csv":
        params["format"] = "csv"
    response = _get(args, "/audit", params)
    if response.status_code != 200:
        return _refused(response, err)
    if args.format != "table":
        out.write(response.text if response.text.endswith("\n") else response.text + "\n")
        return 0
    rows = [{**r, "actor": r["actor"]["user_id"] or r["actor"]["key_id"]} for r in response.json()["data"]]
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in LIST_COLUMNS] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(LIST_COLUMNS)]
    out.write("  ".join(c.ljust(w) for c, w in zip(LIST_COLUMNS, widths, strict=True)).rstrip() + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
    return 0


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    if not args.api_key:
        err.write(f"switchboard audit: {NO_CREDENTIAL}\n")
        return 2
    try:
        return verify(args, out, err) if args.command == "verify" else listing(args, out, err)
    except httpx.HTTPError as exc:
        err.write(f"switchboard audit: cannot reach {args.url}: {exc}\n")
        return 1
