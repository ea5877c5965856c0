"""Templates: every value is escaped (key aliases, team names, model names, reasons, chart labels), and the
pages load nothing but the gateway's own style sheet, script and icon."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from switchboard_billing.client import UsageGroup
from switchboard_facade.ui import ranges
from switchboard_facade.ui.budget_bars import Bar, Standing
from switchboard_facade.ui.choices import Choices
from switchboard_facade.ui.names import Directory
from switchboard_facade.ui.render import templates
from switchboard_facade.ui.session import Session
from switchboard_facade.ui.usage_charts import usage_charts

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _session(is_admin: bool = True) -> Session:
    return Session("sbs_x", "master" if is_admin else "key", is_admin, is_admin, "", "key_x", HOSTILE,
                   "proxy_admin" if is_admin else "", 0)


def render(template: str, **context: object) -> str:
    return templates().get_template(template).render(session=_session(), path="/ui/x", error="", **context)


def assert_safe(html: str) -> None:
    assert HOSTILE not in html and ESCAPED in html
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert all(s.startswith(("/", "?", "#")) for s in sources), [s for s in sources if not s.startswith("/")]
    assert "<script>" not in html.replace('<script src="/ui/static/app.js" defer></script>', ""), "no inline script"
    assert " style=" not in html, "no inline style (the Content-Security-Policy forbids it)"


def test_usage_page_escapes_names_in_tables_charts_and_filters() -> None:
    rng = ranges.parse("24h", "", "")
    label = f"{datetime.fromtimestamp(rng.starts()[-1] / 1000, UTC):%Y-%m-%dT%H:00:00Z}"
    totals = [UsageGroup(group=label, requests=3, errors=1, cost_micros=2076, latency_p50_ms=12)]
    split = [UsageGroup(group=label, split=HOSTILE, requests=3, cost_micros=2076)]
    charts = usage_charts(rng, totals, split, "model", lambda v: v)
    row = {"id": HOSTILE, "name": HOSTILE, "requests": 3, "errors": 1, "tokens": 9, "cost_micros": 2076,
           "unpriced": 0, "p50": 12.0, "p95": 40.0, "ttft_p50": 0.0}
    bar = Bar("budget", "Budget per 30d", 5_000_000, 2_076, 0, 4_997_924, 0)
    html = render("usage.html", chosen={k: HOSTILE if k == "model" else "" for k in
                                        ("range", "from", "to", "key_id", "model", "team_id", "split")},
                  range=rng, presets=ranges.PRESETS, split="model", names=Directory(), export_query="",
                  log_limit=50, charts=charts, tables={"model": [row], "key": [row], "team": [row]},
                  rows=[{"request_id": "r1", "startTime": "2026-11-22T08:00:00.000Z", "key_name": HOSTILE,
                         "model": HOSTILE, "status": "success", "http_status": 200, "latency_ms": 12.0,
                         "ttft_ms": None, "total_tokens": 9, "cost_micros": 2076, "model_id": "m/0",
                         "jurisdiction": "us", "custody_path": HOSTILE, "error_code": None, "source": "http"},
                        {"request_id": "r2", "startTime": "2026-11-22T08:01:00.000Z", "key_name": "batch-job",
                         "model": "m", "status": "success", "http_status": 200, "latency_ms": 9.0, "ttft_ms": None,
                         "total_tokens": 9, "cost_micros": 2076, "model_id": "m/0", "jurisdiction": "us",
                         "custody_path": "grpc:batch-job>router", "error_code": None, "source": "grpc"}],
                  budgets=[{"scope": "key", "name": HOSTILE, "href": "/ui/keys/key_x",
                            "standing": Standing(2_076, 2_076, 0, [bar])}], overall=totals[0])
    assert_safe(html)
    assert "$0.0021" in html and 'title="$0.002076"' in html, "money to two digits below a cent, exact in the title"
    assert html.count('<figure class="chart"') == 6
    assert html.count(">gRPC</span>") == 1, "an internal service's gRPC call is marked in the request log"


def test_key_and_team_forms_escape_what_they_show() -> None:
    key = {"key_id": "key_x", "key_alias": HOSTILE, "name": HOSTILE, "last_four": "abcd", "team_id": "t",
           "team_name": HOSTILE, "models": [HOSTILE], "rpm_limit": None, "tpm_limit": 5, "max_parallel_requests": None,
           "max_budget": "5", "budget_duration": "30d", "max_daily_spend": "", "privacy_tier": None,
           "pii_policy": None, "provider_credentials": {"openai": "...abcd"}, "status": "active", "blocked": False,
           "expires": None, "created_at": None, "is_admin": False, "standing": None, "spent": 0}
    choices = Choices(models=["m"], teams=[("t", HOSTILE)], providers=["openai"])
    page = render("key.html", key=key, choices=choices, values={}, notice="")
    assert_safe(page)
    assert 'type="password" name="credential_secret"' in page and "...abcd" in page, "write-only, last four shown"
    assert page.count("data-confirm=") == 3, "block, regenerate and revoke ask first"
    team = {**key, "team_id": "t", "team_alias": HOSTILE, "key_count": 1}
    team_page = render("team.html", team=team, members=[key], choices=choices, values={}, notice="")
    assert_safe(team_page)
    assert 'action="/ui/teams/t/delete"' in team_page and "revokes its 1 key with it" in team_page


def test_models_page_escapes_reasons_and_names() -> None:
    deployment = {"deployment_id": HOSTILE, "provider": "openai", "upstream_model": HOSTILE, "jurisdiction": "us",
                  "privacy_tier": "standard", "state": "unavailable", "reason": HOSTILE, "cooldown_until": "",
                  "context_window": 128000, "max_output_tokens": 0, "input": "$2.50", "output": "$10.00",
                  "cached_input": "—", "tiered": False, "unpriced_reason": "", "price_source": "", "byok": False,
                  "byok_fee": "", "latency_ms": 0.0, "inflight": 0, "failures": 0, "weight": 1.0}
    model = {"name": HOSTILE, "state": "not_live", "why": HOSTILE, "deployments": [deployment], "fallbacks": [],
             "strategy": "weighted_random", "owned_by": "x"}
    html = render("models.html", models=[model], live=0)
    assert_safe(html)
    assert "No model is live" in html and "128k" in html
