"""The operator's alert webhooks: their configuration, the body each format sends, and the signature.

``SWITCHBOARD_ALERT_WEBHOOKS`` is a JSON array of webhooks, each
``{"name": "ops", "url": "https://...", "format": "json" | "slack" | "teams", "secret": "..."}``.
Every delivery carries these headers, whatever the format:

* ``X-Switchboard-Idempotency-Key`` (and ``Idempotency-Key``): the alert's key — a
  receiver that sees it twice (delivery is at least once) drops the second;
* ``X-Switchboard-Timestamp``: Unix seconds when this attempt was signed;
* ``X-Switchboard-Signature``: ``v1=`` + hex HMAC-SHA256, keyed by the webhook's
  secret, of ``"<timestamp>.<body>"`` (the body's exact bytes), when it has a secret.
  A receiver recomputes it, compares in constant time, and refuses old timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from switchboard_billing.alert_rules import REPORT, SOFT_BUDGET
from switchboard_billing.money import format_usd

FORMATS = ("json", "slack", "teams")
SIGNATURE_HEADER = "X-Switchboard-Signature"
TIMESTAMP_HEADER = "X-Switchboard-Timestamp"
IDEMPOTENCY_HEADER = "X-Switchboard-Idempotency-Key"


@dataclass(frozen=True, slots=True)
class Webhook:
    name: str
    url: str
    format: str = "json"
    secret: str = ""


def parse_webhooks(text: str, default_secret: str = "") -> tuple[Webhook, ...]:
    """The webhooks of ``SWITCHBOARD_ALERT_WEBHOOKS``; ValueError saying what is wrong and how it should look."""
    if not text.strip():
        return ()
    example = '[{"name": "ops", "url": "https://hooks.example/switchboard", "format": "json", "secret": "..."}]'
    try:
        items = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ValueError(f"SWITCHBOARD_ALERT_WEBHOOKS must be a JSON array like {example}") from None
    if not isinstance(items, list):
        raise ValueError(f"SWITCHBOARD_ALERT_WEBHOOKS must be a JSON array like {example}")
    out: dict[str, Webhook] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("url"), str) or not item["url"].startswith(
                ("http://", "https://")):
            raise ValueError(f"webhook {i} of SWITCHBOARD_ALERT_WEBHOOKS needs an http(s) \"url\" (like {example})")
        unknown = set(item) - {"name", "url", "format", "secret"}
        if unknown:
            raise ValueError(f"webhook {i} of SWITCHBOARD_ALERT_WEBHOOKS has unknown fields {sorted(unknown)}; "
                             "known: name, url, format, secret")
        name = str(item.get("name") or f"webhook-{i + 1}")[:100]
        fmt = str(item.get("format") or "json")
        if fmt not in FORMATS:
            raise ValueError(f"webhook {name!r}: format must be one of {', '.join(FORMATS)} (got {fmt!r})")
        if name in out:
            raise ValueError(f"two webhooks of SWITCHBOARD_ALERT_WEBHOOKS are named {name!r}; names must differ")
        out[name] = Webhook(name, item["url"], fmt, str(item.get("secret") or default_secret))
    return tuple(out.values())


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Whether ``signature`` is ours for this body and timestamp (what a receiver checks)."""
    if not timestamp.isdigit():
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


def _iso(ms: int) -> str | None:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z") if ms else None


def event_json(alert: Any) -> dict[str, Any]:
    """The generic JSON body: every fact of the alert (``alert`` is a budget_alerts row)."""
    body: dict[str, Any] = {
        "type": "switchboard.spend_report" if alert.kind == REPORT else "switchboard.budget_alert",
        "idempotency_key": alert.idempotency_key, "kind": alert.kind, "scope": alert.scope,
        "subject_id": alert.subject_id, "alias": alert.alias or None, "budget": alert.budget,
        "threshold_percent": alert.threshold_percent or None,
        "limit_usd": format_usd(alert.limit_micros) if alert.limit_micros else None,
        "spent_usd": format_usd(alert.spent_micros), "limit_micros": alert.limit_micros,
        "spent_micros": alert.spent_micros, "window_start": _iso(alert.window_start_ms),
        "window_end": _iso(alert.window_end_ms), "created_at": _iso(alert.created_at_ms), "message": alert.message,
    }
    if alert.details_json:
        body["details"] = orjson.loads(alert.details_json)
    return body


def _title(alert: Any) -> str:
    if alert.kind == REPORT:
        return f"Spend report: team {alert.alias or alert.subject_id}"
    if alert.kind == SOFT_BUDGET:
        return f"Soft budget passed: {alert.scope} {alert.alias or alert.subject_id}"
    return f"Budget {alert.threshold_percent}% reached: {alert.scope} {alert.alias or alert.subject_id}"


def _facts(alert: Any) -> list[tuple[str, str]]:
    facts = [("Subject", f"{alert.scope} {alert.subject_id}"), ("Spent", f"${format_usd(alert.spent_micros)}")]
    if alert.limit_micros:
        facts.append(("Limit", f"${format_usd(alert.limit_micros)} ({alert.budget})"))
    if alert.window_end_ms:
        facts.append(("Window", f"{_iso(alert.window_start_ms)} to {_iso(alert.window_end_ms)}"))
    return facts


def slack_json(alert: Any) -> dict[str, Any]:
    """A Slack incoming-webhook body: ``text`` (the notification) and Block Kit blocks."""
    return {
        "text": f"{_title(alert)}. {alert.message}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": _title(alert)[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": alert.message}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in _facts(alert)]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"idempotency key `{alert.idempotency_key}`"}]},
        ],
    }


def teams_json(alert: Any) -> dict[str, Any]:
    """A Microsoft Teams workflow webhook body: a message with one Adaptive Card."""
    return {
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": None,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": _title(alert), "weight": "Bolder", "size": "Medium", "wrap": True},
                    {"type": "TextBlock", "text": alert.message, "wrap": True},
                    {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in _facts(alert)]},
                ],
            },
        }],
    }


_BODIES = {"json": event_json, "slack": slack_json, "teams": teams_json}


def request_for(webhook: Webhook, alert: Any, timestamp: int) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one delivery attempt of ``alert`` to ``webhook``."""
    body = orjson.dumps(_BODIES[webhook.format](alert))
    headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: alert.idempotency_key,
               "Idempotency-Key": alert.idempotency_key, TIMESTAMP_HEADER: str(timestamp),
               "User-Agent": "switchboard-alerts/1"}
    if webhook.secret:
        headers[SIGNATURE_HEADER] = sign(webhook.secret, timestamp, body)
    return body, headers
