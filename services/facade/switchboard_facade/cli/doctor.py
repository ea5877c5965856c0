"""``switchboard doctor``: checks a gateway from the operator's seat and says what to fix.

In order: the gateway answers; auth, router and billing answer its readiness check;
the credential is accepted; which models are live and whether any deployment is
cooling down after provider failures (the router's own view of each provider's
reachability); and — when the catalog file is readable here — which of the
``${VARIABLES}`` it reads this shell leaves unset. Exit status 0 when nothing needs
fixing, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any, TextIO

import httpx

from switchboard_facade.cli.connection import NO_CREDENTIAL, add_connection_options

DESCRIPTION = """Checks a running gateway and says what to fix: is it up, do its services answer,
is the key accepted, which models are live, is a provider failing, and which
variables the model catalog reads are unset in this shell."""
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")


class Report:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.problems = 0

    def ok(self, text: str) -> None:
        self.out.write(f"  ok    {text}\n")

    def note(self, text: str) -> None:
        self.out.write(f"  note  {text}\n")

    def fix(self, text: str, how: str) -> None:
        self.problems += 1
        self.out.write(f"  FIX   {text}\n        → {how}\n")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser("doctor", help="check the gateway and say what to fix",
                                                            description=DESCRIPTION)
    add_connection_options(parser)
    parser.add_argument("--config", default=os.environ.get("SWITCHBOARD_CONFIG") or "config/switchboard.yaml",
                        help="the model catalog to check (env SWITCHBOARD_CONFIG; default config/switchboard.yaml)")
    parser.set_defaults(func=run)
    return parser


def _get(http: httpx.Client, path: str) -> httpx.Response | None:
    try:
        return http.get(path)
    except httpx.HTTPError:
        return None


def _services(http: httpx.Client, report: Report) -> None:
    ready = _get(http, "/health/readiness")
    services = (ready.json().get("services") or {}) if ready is not None else {}
    for name, state in services.items():
        if state == "ok":
            report.ok(f"{name} answers")
        else:
            report.fix(f"{name} does not answer the gateway ({state})",
                       f"start the {name} service, or check the facade's SWITCHBOARD_{name.upper()}_ADDRESS")


def _models(http: httpx.Client, report: Report) -> None:
    answer = _get(http, "/v1/models")
    if answer is None or answer.status_code == 401:
        report.fix("the gateway refuses the credential", f"{NO_CREDENTIAL}; a virtual key sees only its own models")
        return
    models = answer.json().get("data") or [] if answer.status_code == 200 else []
    if not models:
        report.fix("no model is live", "export a provider key (OPENAI_API_KEY=…, ANTHROPIC_API_KEY=…, …) for the "
                   "router and restart it, or add a deployment to the catalog")
        return
    providers: set[str] = set()
    for model in models:
        deployments = (model.get("switchboard") or {}).get("deployments") or []
        providers.update(d.get("provider") for d in deployments)
        cooling = [d["deployment_id"] for d in deployments if d.get("health") != "healthy"]
        if cooling:
            report.fix(f"{model['id']}: {', '.join(cooling)} cooling down after failed provider calls",
                       "the router's log says why (a wrong key, a provider outage, a rate limit)")
        else:
            report.ok(f"{model['id']} is live ({', '.join(sorted({str(d.get('provider')) for d in deployments}))})")
    if providers == {"demo"}:
        report.note("only the offline demo model answers: export a provider key (OPENAI_API_KEY=…, "
                    "ANTHROPIC_API_KEY=…, GEMINI_API_KEY=…) for the router and restart it to go live")


def _catalog(path: Path, report: Report) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        report.note(f"the catalog {path} is not readable here: its variables are not checked")
        return
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    unset = sorted({m.group(1) for m in _VARIABLE.finditer(code) if not m.group(2) and not os.environ.get(m.group(1))})
    if unset:
        report.note(f"{path} reads variables this shell does not set (their models stay out unless the router's "
                    f"environment has them): {', '.join(unset)}")
    else:
        report.ok(f"every variable {path} reads is set in this shell")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    report = Report(out or sys.stdout)
    report.out.write(f"Checking the gateway at {args.url}\n")
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    with httpx.Client(base_url=args.url.rstrip("/"), headers=headers, timeout=10) as http:
        alive = _get(http, "/health/liveness")
        if alive is None or alive.status_code != 200:
            report.fix(f"nothing answers at {args.url}", "start the gateway (`make run`), or pass --url / set "
                       "SWITCHBOARD_URL to where it runs")
        else:
            report.ok("the gateway answers")
            _services(http, report)
            if not args.api_key:
                report.fix("no credential to check the models with", NO_CREDENTIAL)
            else:
                _models(http, report)
    _catalog(Path(args.config), report)
    report.out.write("Nothing to fix.\n" if not report.problems else f"{report.problems} thing(s) to fix.\n")
    return 1 if report.problems else 0
